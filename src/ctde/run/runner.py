"""The outer loop. It knows nothing of any one algorithm: it calls the Trainer's
``init``, ``update`` and ``act`` only.

A run is split into segments of K updates; one segment is a single jitted call
(``lax.scan`` over K updates, ``vmap`` over seeds, seeds spread over the host's
devices). Between segments the runner logs ``metrics.csv`` and TensorBoard events,
evaluates the deterministic policy, checks that every loss and parameter is finite,
and writes an atomic checkpoint (after the first segment, then at most every
``checkpoint_every`` seconds, after the last, and on SIGINT/SIGTERM once the segment in
flight is done), so a stopped run resumes from its last checkpoint with ``resume``,
redoing what came after. The run folder is locked (``flock``) for the life of a run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import io
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from ctde import __version__, algos
from ctde.algos.common.episodes import episode_sums
from ctde.run import checkpoint
from ctde.run.spec import (
    FILE_PARAMS,
    RunSpec,
    changed_env_settings,
    changed_settings,
    env_settings,
    read_spec,
    validate,
)

#: Metric names in ``info`` that get a friendlier column name.
COLUMN_NAMES = {"won": "win_rate"}
TIMING_COLUMNS = ("wall_s", "steps_per_s")


@dataclasses.dataclass(frozen=True)
class Plan:
    updates_per_segment: int
    segments: int
    steps_per_update: int
    total_updates: int  # the budget rounded up to one whole update; the last segment may be short

    @property
    def steps_per_segment(self) -> int:
        return self.updates_per_segment * self.steps_per_update

    @property
    def total_steps(self) -> int:
        return self.total_updates * self.steps_per_update

    def updates_in(self, segment: int) -> int:
        """Updates in segment ``segment`` (0-based)."""
        return min(self.updates_per_segment, self.total_updates - segment * self.updates_per_segment)


def make_plan(spec: RunSpec, steps_per_update: int) -> Plan:
    """Segments of whole updates: the budget is rounded up to one whole update (it is
    overshot by less than ``steps_per_update``); the last segment takes what is left."""
    updates = max(1, math.ceil(spec.steps / steps_per_update))
    log_every = spec.log_every or spec.steps / 50
    per_segment = int(min(updates, max(1, round(log_every / steps_per_update))))
    return Plan(per_segment, math.ceil(updates / per_segment), steps_per_update, updates)


def resolve(spec: RunSpec):
    """(env, config, plan): the algorithm Config a run of ``spec`` trains with, its
    update count filled in where the learning rates anneal over it."""
    env, config = validate(spec)
    plan = make_plan(spec, config.steps_per_update)
    if getattr(config, "anneal_lr", False):
        config = dataclasses.replace(config, total_updates=plan.total_updates)
    return env, config, plan


def build(spec: RunSpec, batch_axis: str | None = None):
    """(trainer, plan) for ``spec``; raises ValueError on any invalid setting.
    ``batch_axis``: the mesh axis over which each seed's batches are split, if any."""
    env, config, plan = resolve(spec)
    module = algos.get(spec.algo)
    if batch_axis is None:
        return module.make_train(config, env), plan
    return module.make_train(config, env, batch_axis=batch_axis), plan


def seed_keys(spec: RunSpec):
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(spec.seed, spec.seed + spec.seeds))


def seed_sharding(seeds: int, split_batches: bool = False):
    """Spread the seed axis over the host's devices when it divides evenly: a mesh
    ("seed", "batch") whose "seed" axis splits the seeds. With ``split_batches`` (an
    algorithm that can, on CPU) and more devices than seeds, the devices left over
    share seeds: each seed runs on ``devices // seeds`` devices along "batch", which
    hold the same state and split its gradient batches. None: one device does all."""
    devices = jax.devices()
    count = len(devices)
    split_batches = split_batches and jax.default_backend() == "cpu"
    if count < 2:
        return None
    if seeds % count == 0:
        shape = (count, 1)
    elif split_batches and count % seeds == 0:
        shape = (seeds, count // seeds)
    else:
        return None
    mesh = jax.sharding.Mesh(np.array(devices).reshape(shape), ("seed", "batch"))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))


def batch_axis_of(sharding) -> str | None:
    """"batch" when ``sharding`` splits each seed's batches over devices, else None."""
    return "batch" if sharding is not None and sharding.mesh.shape["batch"] > 1 else None


def make_segment(trainer, plan: Plan, sharding=None, updates: int | None = None) -> Callable:
    """One jitted call: K updates of every seed (K = ``updates``, default the plan's).
    Returns (state, metrics [seeds, K, ...]).
    With a ``sharding`` every input and output leaf is split along its seed axis (each
    device runs its own seeds), so the state comes back laid out exactly as the next call
    expects it.

    On CPU a device runs its seeds one after another (``lax.map``): each seed's matrix
    products stay 2-D, which XLA's CPU backend runs faster than the batched products of
    ``vmap`` (MAPPO on simple_spread, 4 seeds: 1.4x), and a seed's numbers do not depend
    on how many seeds share the device. Accelerators ``vmap`` the seeds."""

    length = updates or plan.updates_per_segment

    def one_seed(state):
        return jax.lax.scan(lambda s, _: trainer.update(s), state, None, length)

    if jax.default_backend() != "cpu":
        all_seeds = jax.vmap(one_seed)
    else:
        def all_seeds(state):
            return jax.lax.map(one_seed, state)

        if sharding is not None:
            all_seeds = _shard_seeds(all_seeds, sharding)
    if sharding is None:
        return jax.jit(all_seeds, donate_argnums=0)
    return jax.jit(all_seeds, donate_argnums=0, in_shardings=(sharding,), out_shardings=sharding)


def _shard_seeds(fn: Callable, sharding) -> Callable:
    """``fn`` over the seed axis, each device on its own seeds (``shard_map``), with the
    zero-size leaves of its input and output (a feed-forward network's empty hidden
    state) kept out of the mapped call and made again on each side: XLA's CPU compiler
    in jaxlib 0.11 crashes (SIGSEGV) on a ``shard_map`` whose operands mix empty and
    non-empty arrays."""
    shards = sharding.mesh.shape["seed"]

    def call(state):
        data, rebuild_input = _data_leaves(state)
        output = {}  # the output's layout, known once ``fn`` is traced on a device's seeds

        def on_device(data):
            data, output["rebuild"] = _data_leaves(fn(rebuild_input(data, lambda n: n // shards)))
            return data

        data = jax.shard_map(on_device, mesh=sharding.mesh, in_specs=sharding.spec,
                             out_specs=sharding.spec, check_vma=False)(data)
        return output["rebuild"](data, lambda n: n * shards)

    return call


def _data_leaves(tree):
    """The leaves of ``tree`` that hold data, and ``rebuild(data, seeds)``: ``tree`` again
    from them, its empty leaves zeros whose seed axis (the first) is ``seeds(size)``."""
    leaves, treedef = jax.tree.flatten(tree)
    empty = {i: jax.ShapeDtypeStruct(x.shape, x.dtype) for i, x in enumerate(leaves) if x.size == 0}

    def zeros(like, seeds):
        return jnp.zeros((seeds(like.shape[0]), *like.shape[1:]), like.dtype)

    def rebuild(data, seeds):
        data = iter(data)
        return treedef.unflatten([zeros(empty[i], seeds) if i in empty else next(data)
                                  for i in range(len(leaves))])

    return [x for x in leaves if x.size], rebuild


def make_evaluate(trainer, episodes: int) -> Callable:
    """Jitted deterministic evaluation: ``episodes`` envs per seed, first episode each.
    ``(params [seeds], keys [seeds]) -> episode sums [seeds]``."""
    env = trainer.env

    def one_seed(params, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))
        carry = trainer.init_carry((episodes,))
        finished = jnp.zeros(episodes, bool)

        def step(c, key):
            obs, state, carry, finished = c
            k_act, k_env = jax.random.split(key)
            avail = jax.vmap(env.avail_actions)(state)
            actions, carry = trainer.act(params, obs, carry, k_act, True, avail)
            obs, state, _, _, _, info = jax.vmap(env.step)(
                jax.random.split(k_env, episodes), state, actions
            )
            first = info["episode_done"] & ~finished
            out = {"episode_done": first, "episode": info["episode"]}
            return (obs, state, carry, finished | info["episode_done"]), out

        keys = jax.random.split(k_run, env.max_steps)
        _, info = jax.lax.scan(step, (obs, state, carry, finished), keys)
        return episode_sums(info, env.teams, env.team_names, env.metrics)

    return jax.jit(jax.vmap(one_seed))


def summarise(sums: dict, prefix: str = "") -> dict:
    """Episode sums (over any axes but the first, the seed) -> per-seed averages."""
    episodes = np.asarray(sums["episodes"]).reshape(len(sums["episodes"]), -1).sum(1)
    out = {}
    for name, value in sums.items():
        if name == "episodes":
            continue
        total = np.asarray(value).reshape(len(value), -1).sum(1)
        mean = np.where(episodes > 0, total / np.maximum(episodes, 1), np.nan)
        column = COLUMN_NAMES.get(name, name)
        out[prefix + ("return_mean" + column[len("return"):] if column.startswith("return")
                      else column)] = mean
    out[prefix + "episodes"] = episodes
    return out


class MetricsLog:
    """``metrics.csv``: one row per seed per logging point, rewritten atomically. Each row
    is formatted once, when it is appended, so a run's many points cost linear time."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self._text: list[dict] = []  # the rows as written

    def load(self, up_to_steps: int) -> None:
        """Keep the rows logged up to a checkpoint (later ones are redone on resume)."""
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if float(r["env_steps"]) <= up_to_steps]
            self._text = list(self.rows)

    def append(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        self._text.extend({k: _fmt(v) for k, v in row.items()} for row in rows)
        columns = list(dict.fromkeys(k for row in self._text for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._text)
        checkpoint.atomic_write(self.path, buffer.getvalue())


def _fmt(v):
    if isinstance(v, float | np.floating):
        return "" if np.isnan(v) else f"{float(v):.6g}"
    return v


def self_contained(out: str, spec: RunSpec) -> RunSpec:
    """Copy each file an env parameter names into ``out/files/`` and point the spec at the
    copy (relative to the run folder), so the run folder alone repeats and loads the run."""
    params = dict(spec.env_params)
    for name in FILE_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and os.path.isfile(value):
            with open(value, "rb") as f:
                # the same base name: a scenario's default name is its file's
                copy = os.path.join("files", os.path.basename(value))
                checkpoint.atomic_write(os.path.join(out, copy), f.read())
            params[name] = copy
    return dataclasses.replace(spec, env_params=params)


def write_config(out: str, spec: RunSpec, trainer) -> None:
    data = self_contained(out, spec).to_dict()
    data["config"] = {k: _yaml_value(v) for k, v in dataclasses.asdict(trainer.config).items()}
    data["env_settings"] = env_settings(spec)
    data["versions"] = {"ctde": __version__, "jax": jax.__version__}
    checkpoint.atomic_write(os.path.join(out, "config.yaml"), yaml.safe_dump(data, sort_keys=False))


def _yaml_value(v):
    return list(v) if isinstance(v, tuple) else v


def initial_state(trainer, spec: RunSpec):
    """Every seed's initial state, built by one jitted program (op by op, a micro map's
    init takes seconds of small compilations). Seeds go one after another (``lax.map``),
    not ``vmap``: a batched orthogonal initialiser (a batched QR) inside jit can deadlock
    XLA's CPU thread pool (jaxlib 0.10), as ``maddpg.init_per_agent`` notes."""
    return jax.jit(lambda keys: jax.lax.map(trainer.init, keys))(seed_keys(spec))


def load_learner(run_dir: str, which: str | None = None):
    """(spec, trainer, plan, learner state [seeds], counters) of a saved run, from its
    newest checkpoint or the one ``which`` names (env steps or a file)."""
    spec = read_spec(run_dir)
    trainer, plan = build(spec)
    target = jax.eval_shape(lambda: initial_state(trainer, spec))
    target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
    state, counters = checkpoint.load(os.path.join(run_dir, "checkpoints"), target, which)
    return spec, trainer, plan, state, counters


class Diverged(RuntimeError):
    """A loss or parameter became NaN or infinite; nothing of the bad state was saved."""


@contextlib.contextmanager
def run_lock(out: str):
    """Hold an exclusive OS lock on the run folder (``flock`` on the folder itself): the
    kernel drops it when the process ends, however it ends, so no lock goes stale."""
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(f"{out} is in use by another ctde run (one run per folder at a time): "
                         "wait for it to end or pick another --out") from None
    try:
        yield
    finally:
        os.close(fd)


class _StopSignal:
    """SIGINT/SIGTERM ask the loop to stop after the segment in flight (then it saves a
    checkpoint); a second signal stops at once, as an ordinary Ctrl-C does. A signal
    ignored when the run starts (SIGINT in a script's background job) stays ignored, so a
    Ctrl-C meant for the script does not stop the run."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print("\nstopping after the segment in flight (interrupt again to stop at once)",
              file=sys.stderr, flush=True)


def _finite_check(params):
    """Jitted: per leaf of ``params`` [seeds, ...], whether each seed's values are all finite."""
    return jax.jit(lambda p: jax.tree.map(lambda x: jnp.isfinite(x).reshape(x.shape[0], -1).all(1), p))


def _first_non_finite(losses: dict, finite_params, seeds: list[int]) -> str | None:
    """'seed S: QUANTITY is VALUE' for the first non-finite loss or parameter, else None."""
    for i, seed in enumerate(seeds):
        for name in sorted(losses):
            value = float(np.asarray(losses[name])[i])
            if not np.isfinite(value):
                return f"seed {seed}: loss {name} is {value}"
        for path, ok in jax.tree_util.tree_flatten_with_path(finite_params)[0]:
            if not bool(np.asarray(ok)[i]):
                name = jax.tree_util.keystr(path, simple=True, separator="/")
                return f"seed {seed}: parameter {name} has a non-finite value"
    return None


def _fresh_folder(out: str) -> None:
    """What a run that never saved a checkpoint left (its metrics, its events) is removed:
    a new run in the folder starts clean."""
    for name in ("metrics.csv", "curve.png"):
        path = os.path.join(out, name)
        if os.path.exists(path):
            os.unlink(path)
    shutil.rmtree(os.path.join(out, "tb"), ignore_errors=True)


def train(
    spec: RunSpec,
    out: str,
    resume: bool = False,
    progress: bool = True,
    stop_after_segments: int | None = None,
    log: Callable[[str], None] = print,
    which: str | None = None,
) -> dict:
    """Train ``spec`` into run folder ``out`` (or carry on the run there if ``resume``,
    from its newest checkpoint or the one ``which`` names; newer ones are dropped).

    Returns a summary: final per-seed metrics, timings and whether the run finished or
    was stopped by a signal (``interrupted``: its number). ``stop_after_segments`` ends
    the call early (as if killed) after that many segments of this call. Raises
    ``Diverged`` on a non-finite loss or parameter, ValueError on invalid input or a
    folder another run holds.
    """
    sharding = seed_sharding(spec.seeds, spec.algo in algos.SPLITS_BATCHES)
    # every error surfaces here, before anything is written
    trainer, plan = build(spec, batch_axis_of(sharding))
    if not resume:
        os.makedirs(out, exist_ok=True)
    with run_lock(out), _StopSignal() as stop:
        return _train_locked(spec, out, resume, progress, stop_after_segments, log, which,
                             sharding, trainer, plan, stop)


def _train_locked(spec, out, resume, progress, stop_after_segments, log, which, sharding,
                  trainer, plan, stop) -> dict:
    ckpt_dir = os.path.join(out, "checkpoints")
    metrics = MetricsLog(os.path.join(out, "metrics.csv"))
    if resume:
        _, saved, _, state, counters = load_learner(out, which)
        changed = changed_settings(saved.config, trainer.config) + changed_env_settings(out, spec)
        if changed:
            raise ValueError(f"{out} was trained with {'; '.join(changed)}: a run carries on "
                             f"with its own settings (ctde train --resume {out})")
        for steps, path in checkpoint.paths(ckpt_dir):
            if steps > counters["env_steps"]:  # a resume from an older checkpoint: the
                os.unlink(path)                # later ones belong to the abandoned branch
        metrics.load(counters["env_steps"])
        saved = counters["env_steps"]
    else:
        if checkpoint.latest(ckpt_dir):
            raise ValueError(f"{out} already holds a run: resume it with --resume or pick another --out")
        _fresh_folder(out)
        write_config(out, spec, trainer)
        state = initial_state(trainer, spec)
        counters = {"segment": 0, "env_steps": 0, "wall_s": 0.0, "compile_s": 0.0}
        saved = None  # env steps of the newest checkpoint

    if sharding is not None:
        state = jax.device_put(state, sharding)
    t0 = time.perf_counter()
    segment = make_segment(trainer, plan, sharding).lower(state).compile()
    compile_s = time.perf_counter() - t0
    if not resume:
        counters["compile_s"] = compile_s
    short = plan.updates_in(plan.segments - 1)
    last_segment = None  # compiled when reached: the last segment when it is shorter
    evaluate = make_evaluate(trainer, spec.eval_episodes) if spec.eval_episodes else None
    finite = _finite_check(state.params)
    seeds = list(range(spec.seed, spec.seed + spec.seeds))
    writer = _tensorboard(out, metrics.rows if resume else [])
    bar = _Progress(plan.total_steps, counters["env_steps"], progress, log)
    eval_base = jax.random.PRNGKey(spec.seed + 10_000)
    done_here = 0
    saved_at = None if not resume else time.perf_counter()
    try:
        while counters["segment"] < plan.segments and stop.signum is None:
            if stop_after_segments is not None and done_here >= stop_after_segments:
                break
            updates = plan.updates_in(counters["segment"])
            run_segment = segment
            if updates != plan.updates_per_segment:
                if last_segment is None:
                    t0 = time.perf_counter()
                    last_segment = make_segment(trainer, plan, sharding, short).lower(state).compile()
                    compile_s += time.perf_counter() - t0
                run_segment = last_segment
            t0 = time.perf_counter()
            state, seg_metrics = run_segment(state)
            jax.block_until_ready(state)
            elapsed = time.perf_counter() - t0
            steps = updates * plan.steps_per_update
            counters["segment"] += 1
            counters["env_steps"] += steps
            counters["wall_s"] += elapsed
            done_here += 1
            losses = {k: np.asarray(v).mean(axis=1) for k, v in seg_metrics["losses"].items()}
            bad = _first_non_finite(losses, jax.device_get(finite(state.params)), seeds)
            if bad is not None:  # the bad state is neither logged nor saved
                kept = (f"the last good checkpoint, after {saved:,} env steps, is kept" if saved
                        is not None else "no checkpoint was written")
                raise Diverged(f"training diverged at env step {counters['env_steps']:,}, {bad}; {kept}")
            row = summarise(seg_metrics["episode_sums"])
            row.update(losses)
            if evaluate is not None:
                # the key of a point depends on the point only: a resumed run evaluates alike
                k = jax.random.fold_in(eval_base, counters["segment"])
                sums = evaluate(state.params, jax.random.split(k, spec.seeds))
                row.update(summarise(jax.device_get(sums), prefix="eval_"))
            rows = _rows(spec, counters, elapsed / steps, row)
            metrics.append(rows)
            # A large state (a replay buffer) takes seconds to write: save it at most every
            # checkpoint_every seconds, and always the first and the last point.
            finished = counters["segment"] >= plan.segments
            if (saved_at is None or finished or stop.signum is not None
                    or time.perf_counter() - saved_at >= spec.checkpoint_every):
                checkpoint.save(ckpt_dir, state, counters, spec.keep_checkpoints)
                saved, saved_at = counters["env_steps"], time.perf_counter()
            _log_tensorboard(writer, rows, counters["env_steps"])
            bar.advance(steps, rows)
        if stop.signum is not None and done_here and saved != counters["env_steps"]:
            # the signal came after this point's save decision: save what was done
            checkpoint.save(ckpt_dir, state, counters, spec.keep_checkpoints)
            saved = counters["env_steps"]
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    last = metrics.rows[-spec.seeds:] if metrics.rows else []
    return {
        "finished": counters["segment"] >= plan.segments,
        "interrupted": stop.signum,
        "checkpoint": saved,  # env steps of the newest checkpoint, None if there is none
        "env_steps": counters["env_steps"],
        "planned_steps": plan.total_steps,
        "wall_s": counters["wall_s"],
        "compile_s": compile_s,
        "devices": 1 if sharding is None else sharding.mesh.size,
        "devices_per_seed": 1 if sharding is None else sharding.mesh.shape["batch"],
        "last_rows": last,
        "state": state,
    }


def _rows(spec: RunSpec, counters: dict, seconds_per_step: float, row: dict) -> list[dict]:
    rows = []
    for i in range(spec.seeds):
        r = {
            "seed": spec.seed + i,
            "env_steps": counters["env_steps"],
            "wall_s": round(counters["wall_s"], 3),
            "steps_per_s": round(spec.seeds / max(seconds_per_step, 1e-12), 1),
        }
        r.update({k: float(np.asarray(v)[i]) for k, v in row.items()})
        rows.append(r)
    return rows


def _tensorboard(out: str, rows: list[dict]):
    """A TensorBoard writer for ``out/tb``. The events are a view of ``metrics.csv``: a
    resumed run rewrites them from the rows it kept, so the points it redoes after the
    checkpoint are not there twice."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # optional at run time
        return None
    shutil.rmtree(os.path.join(out, "tb"), ignore_errors=True)
    writer = SummaryWriter(os.path.join(out, "tb"))
    by_step: dict[int, list[dict]] = {}
    for row in rows:
        by_step.setdefault(int(float(row["env_steps"])), []).append(row)
    for step, at in sorted(by_step.items()):
        _log_tensorboard(writer, at, step)
    return writer


def _value(v) -> float:
    return float("nan") if v is None or v == "" else float(v)


def _log_tensorboard(writer, rows: list[dict], step: int) -> None:
    if writer is None:
        return
    for key in rows[0]:
        if key in ("seed", "env_steps"):
            continue
        values = [_value(r.get(key)) for r in rows]
        values = [v for v in values if v == v]  # drop NaN
        if values:
            writer.add_scalar(key, float(np.mean(values)), step)
    writer.flush()


class _Progress:
    """Progress of a run: on a terminal a rich bar (steps, elapsed, ETA, steps/s, return);
    elsewhere (a log file, a cluster job) one line per logging point."""

    def __init__(self, total: int, completed: int, enabled: bool, log: Callable[[str], None] = print):
        self.progress = None
        self.lines = enabled and not sys.stdout.isatty()
        self.total, self.completed, self.start_steps = total, completed, completed
        self.log = log
        self.t0 = time.perf_counter()
        if not enabled or self.lines:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        # A narrow terminal shortens the info column, never the step count.
        width = 2 * len(str(total)) + 1
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=width)),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, info="")
        self.progress.start()

    def advance(self, steps: int, rows: list[dict]) -> None:
        self.completed += steps
        returns = [r.get("return_mean", np.nan) for r in rows]
        ret = np.nan if np.isnan(returns).all() else np.nanmean(returns)  # no episode ended
        sps = rows[0]["steps_per_s"]
        if self.lines:
            elapsed = time.perf_counter() - self.t0
            rate = (self.completed - self.start_steps) / max(elapsed, 1e-9)
            eta = (self.total - self.completed) / max(rate, 1e-9)
            self.log(f"  {self.completed:,}/{self.total:,} steps  return_mean {ret:.3f}  "
                     f"{sps:,.0f} env-steps/s  ETA {_duration(eta)}")
            sys.stdout.flush()
        elif self.progress is not None:
            self.progress.update(self.task, advance=steps, info=f"{sps:,.0f} steps/s  return {ret:.2f}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def evaluate_run(run_dir: str, episodes: int = 100, seed: int = 0, which: str | None = None) -> dict:
    """Deterministic evaluation of a saved run (its newest checkpoint, or ``which``):
    per-seed averages over ``episodes``."""
    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    spec, trainer, _, state, counters = load_learner(run_dir, which)
    evaluate = make_evaluate(trainer, episodes)
    keys = jax.random.split(jax.random.PRNGKey(seed), spec.seeds)
    result = summarise(jax.device_get(evaluate(state.params, keys)))
    result["env_steps"] = counters["env_steps"]
    result["seeds"] = list(range(spec.seed, spec.seed + spec.seeds))
    return result


def rollout_states(run_dir: str, seed_index: int = 0, episodes: int = 1, key_seed: int = 0,
                   deterministic: bool = True, which: str | None = None):
    """Environment states of ``episodes`` consecutive episodes played by a saved run's
    policy (seed ``seed_index``; its newest checkpoint or ``which``), for rendering.
    Returns (env, list of states)."""
    spec, trainer, _, state, _ = load_learner(run_dir, which)
    check_renderable(trainer.env)
    if not 0 <= seed_index < spec.seeds:
        raise ValueError(f"seed index {seed_index} out of range: the run has {spec.seeds} seeds")
    params = jax.tree.map(lambda x: x[seed_index], state.params)
    return trainer.env, play(trainer, params, episodes, jax.random.PRNGKey(key_seed), deterministic)


def check_renderable(env) -> None:
    """ValueError unless ``env`` draws frames from saved states (a PettingZoo env behind
    the bridge lives on the host: a past state of it cannot be drawn again)."""
    from ctde.envs.core import MultiAgentEnv
    from ctde.envs.external import PettingZooEnv

    raw = env.unwrapped
    if isinstance(raw, PettingZooEnv):
        raise ValueError(f"{raw.name} cannot be rendered: an env behind the PettingZoo bridge runs "
                         "on the host, so its saved states cannot be drawn again")
    if type(raw).render is MultiAgentEnv.render:
        raise ValueError(f"{raw.name} cannot be rendered: it has no render()")


def play(trainer, params, episodes: int, key, deterministic: bool = True) -> list:
    """Host loop over jitted steps: the raw (unwrapped) env states of ``episodes``
    episodes, the last state of each episode included."""
    env = trainer.env
    step = jax.jit(env.step)
    act = jax.jit(trainer.act, static_argnums=4)
    key, k = jax.random.split(key)
    obs, state = env.reset(k)
    carry = trainer.init_carry()
    states = [state.env_state]
    finished = 0
    while finished < episodes:
        key, k_act, k_env = jax.random.split(key, 3)
        actions, carry = act(params, obs, carry, k_act, deterministic, env.avail_actions(state))
        obs, state, _, _, _, info = step(k_env, state, actions)
        states.append(info["final_state"])
        if bool(info["episode_done"]):
            finished += 1
            carry = trainer.init_carry()  # a new episode: recurrent actors start afresh
            if finished < episodes:
                states.append(state.env_state)
    return states
