"""The outer loop. It knows nothing of any one algorithm: it calls the Trainer's
``init``, ``update`` and ``act`` only.

A run is split into segments of K updates; one segment is a single jitted call
(``lax.scan`` over K updates, ``vmap`` over seeds, seeds spread over the host's
devices). Between segments the runner logs ``metrics.csv`` and TensorBoard events,
evaluates the deterministic policy, and writes an atomic checkpoint (after the first
segment, then at most every ``checkpoint_every`` seconds, and after the last), so a
killed run resumes from its last checkpoint with ``resume``, redoing what came after.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from ctde import __version__, algos
from ctde.algos.common.episodes import episode_sums
from ctde.run import checkpoint
from ctde.run.spec import RunSpec, read_spec, validate

#: Metric names in ``info`` that get a friendlier column name.
COLUMN_NAMES = {"won": "win_rate"}
TIMING_COLUMNS = ("wall_s", "steps_per_s")


@dataclasses.dataclass(frozen=True)
class Plan:
    updates_per_segment: int
    segments: int
    steps_per_update: int

    @property
    def total_updates(self) -> int:
        return self.updates_per_segment * self.segments

    @property
    def steps_per_segment(self) -> int:
        return self.updates_per_segment * self.steps_per_update


def make_plan(spec: RunSpec, steps_per_update: int) -> Plan:
    """Segments of whole updates; the budget is rounded up to whole segments."""
    updates = max(1, math.ceil(spec.steps / steps_per_update))
    log_every = spec.log_every or spec.steps / 50
    per_segment = int(min(updates, max(1, round(log_every / steps_per_update))))
    return Plan(per_segment, math.ceil(updates / per_segment), steps_per_update)


def build(spec: RunSpec, batch_axis: str | None = None):
    """(trainer, plan) for ``spec``; raises ValueError on any invalid setting.
    ``batch_axis``: the mesh axis over which each seed's batches are split, if any."""
    env, config = validate(spec)
    module = algos.get(spec.algo)
    steps_per_update = config.steps_per_update
    plan = make_plan(spec, steps_per_update)
    if getattr(config, "anneal_lr", False):
        config = dataclasses.replace(config, total_updates=plan.total_updates)
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


def make_segment(trainer, plan: Plan, sharding=None) -> Callable:
    """One jitted call: K updates of every seed. Returns (state, metrics [seeds, K, ...]).
    With a ``sharding`` every input and output leaf is split along its seed axis (each
    device runs its own seeds), so the state comes back laid out exactly as the next call
    expects it.

    On CPU a device runs its seeds one after another (``lax.map``): each seed's matrix
    products stay 2-D, which XLA's CPU backend runs faster than the batched products of
    ``vmap`` (MAPPO on simple_spread, 4 seeds: 1.4x), and a seed's numbers do not depend
    on how many seeds share the device. Accelerators ``vmap`` the seeds."""

    def one_seed(state):
        return jax.lax.scan(lambda s, _: trainer.update(s), state, None, plan.updates_per_segment)

    if jax.default_backend() != "cpu":
        all_seeds = jax.vmap(one_seed)
    else:
        def all_seeds(state):
            return jax.lax.map(one_seed, state)

        if sharding is not None:
            spec = sharding.spec
            all_seeds = jax.shard_map(all_seeds, mesh=sharding.mesh, in_specs=spec, out_specs=spec,
                                      check_vma=False)
    if sharding is None:
        return jax.jit(all_seeds, donate_argnums=0)
    return jax.jit(all_seeds, donate_argnums=0, in_shardings=(sharding,), out_shardings=sharding)


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
    """``metrics.csv``: one row per seed per logging point, rewritten atomically."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []

    def load(self, up_to_steps: int) -> None:
        """Keep the rows logged up to a checkpoint (later ones are redone on resume)."""
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if float(r["env_steps"]) <= up_to_steps]

    def append(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        checkpoint.atomic_write(self.path, buffer.getvalue())


def _fmt(v):
    if isinstance(v, float | np.floating):
        return "" if np.isnan(v) else f"{float(v):.6g}"
    return v


def write_config(out: str, spec: RunSpec, trainer) -> None:
    data = spec.to_dict()
    data["config"] = {k: _yaml_value(v) for k, v in dataclasses.asdict(trainer.config).items()}
    data["versions"] = {"ctde": __version__, "jax": jax.__version__}
    checkpoint.atomic_write(os.path.join(out, "config.yaml"), yaml.safe_dump(data, sort_keys=False))


def _yaml_value(v):
    return list(v) if isinstance(v, tuple) else v


def initial_state(trainer, spec: RunSpec):
    return jax.vmap(trainer.init)(seed_keys(spec))


def load_learner(run_dir: str):
    """(spec, trainer, plan, learner state [seeds], counters) of a saved run."""
    spec = read_spec(run_dir)
    trainer, plan = build(spec)
    target = jax.eval_shape(lambda: initial_state(trainer, spec))
    target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
    state, counters = checkpoint.load(os.path.join(run_dir, "checkpoints"), target)
    return spec, trainer, plan, state, counters


def train(
    spec: RunSpec,
    out: str,
    resume: bool = False,
    progress: bool = True,
    stop_after_segments: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train ``spec`` into run folder ``out`` (or carry on the run there if ``resume``).

    Returns a summary: final per-seed metrics and timings. ``stop_after_segments`` ends
    the call early (as if killed) after that many segments of this call.
    """
    sharding = seed_sharding(spec.seeds, spec.algo in algos.SPLITS_BATCHES)
    # every error surfaces here, before anything is written
    trainer, plan = build(spec, batch_axis_of(sharding))
    ckpt_dir = os.path.join(out, "checkpoints")
    metrics = MetricsLog(os.path.join(out, "metrics.csv"))
    if resume:
        _, _, _, state, counters = load_learner(out)
        metrics.load(counters["env_steps"])
    else:
        if os.path.exists(os.path.join(ckpt_dir, checkpoint.CHECKPOINT)):
            raise ValueError(f"{out} already holds a run: resume it with --resume or pick another --out")
        os.makedirs(out, exist_ok=True)
        write_config(out, spec, trainer)
        state = initial_state(trainer, spec)
        counters = {"segment": 0, "env_steps": 0, "wall_s": 0.0, "compile_s": 0.0}

    if sharding is not None:
        state = jax.device_put(state, sharding)
    t0 = time.perf_counter()
    segment = make_segment(trainer, plan, sharding).lower(state).compile()
    if counters["segment"] == 0:
        counters["compile_s"] = time.perf_counter() - t0
    evaluate = make_evaluate(trainer, spec.eval_episodes) if spec.eval_episodes else None
    writer = _tensorboard(out)
    bar = _Progress(plan.segments * plan.steps_per_segment, counters["env_steps"], progress)
    eval_key = jax.random.PRNGKey(spec.seed + 10_000)
    done_here = 0
    saved_at = None if not resume else time.perf_counter()  # a resumed run has a checkpoint
    try:
        while counters["segment"] < plan.segments:
            if stop_after_segments is not None and done_here >= stop_after_segments:
                break
            t0 = time.perf_counter()
            state, seg_metrics = segment(state)
            jax.block_until_ready(state)
            elapsed = time.perf_counter() - t0
            counters["segment"] += 1
            counters["env_steps"] += plan.steps_per_segment
            counters["wall_s"] += elapsed
            done_here += 1
            row = summarise(seg_metrics["episode_sums"])
            row.update({k: np.asarray(v).mean(axis=1) for k, v in seg_metrics["losses"].items()})
            if evaluate is not None:
                eval_key, k = jax.random.split(eval_key)
                sums = evaluate(state.params, jax.random.split(k, spec.seeds))
                row.update(summarise(jax.device_get(sums), prefix="eval_"))
            rows = _rows(spec, counters, elapsed / plan.steps_per_segment, row)
            metrics.append(rows)
            # A large state (a replay buffer) takes seconds to write: save it at most every
            # checkpoint_every seconds, and always the first and the last point.
            finished = counters["segment"] >= plan.segments
            if saved_at is None or finished or time.perf_counter() - saved_at >= spec.checkpoint_every:
                checkpoint.save(ckpt_dir, state, counters)
                saved_at = time.perf_counter()
            _log_tensorboard(writer, rows, counters["env_steps"])
            bar.advance(plan.steps_per_segment, rows)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    last = metrics.rows[-spec.seeds:] if metrics.rows else []
    return {
        "finished": counters["segment"] >= plan.segments,
        "env_steps": counters["env_steps"],
        "wall_s": counters["wall_s"],
        "compile_s": counters["compile_s"],
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


def _tensorboard(out: str):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:  # optional at run time
        return None
    return SummaryWriter(os.path.join(out, "tb"))


def _log_tensorboard(writer, rows: list[dict], step: int) -> None:
    if writer is None:
        return
    for key in rows[0]:
        if key in ("seed", "env_steps"):
            continue
        values = [float(r[key]) for r in rows if r[key] == r[key]]  # drop NaN
        if values:
            writer.add_scalar(key, float(np.mean(values)), step)
    writer.flush()


class _Progress:
    """A rich progress bar: steps, steps/s and the latest mean return."""

    def __init__(self, total: int, completed: int, enabled: bool):
        self.progress = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, info="")
        self.progress.start()

    def advance(self, steps: int, rows: list[dict]) -> None:
        if self.progress is None:
            return
        ret = np.nanmean([r.get("return_mean", np.nan) for r in rows])
        sps = rows[0]["steps_per_s"]
        self.progress.update(
            self.task, advance=steps, info=f"{sps:,.0f} steps/s  return {ret:.2f}"
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def evaluate_run(run_dir: str, episodes: int = 100, seed: int = 0) -> dict:
    """Deterministic evaluation of a saved run: per-seed averages over ``episodes``."""
    spec, trainer, _, state, counters = load_learner(run_dir)
    evaluate = make_evaluate(trainer, episodes)
    keys = jax.random.split(jax.random.PRNGKey(seed), spec.seeds)
    result = summarise(jax.device_get(evaluate(state.params, keys)))
    result["env_steps"] = counters["env_steps"]
    result["seeds"] = list(range(spec.seed, spec.seed + spec.seeds))
    return result


def rollout_states(run_dir: str, seed_index: int = 0, episodes: int = 1, key_seed: int = 0,
                   deterministic: bool = True):
    """Environment states of ``episodes`` consecutive episodes played by a saved run's
    policy (seed ``seed_index``), for rendering. Returns (env, list of states)."""
    spec, trainer, _, state, _ = load_learner(run_dir)
    if not 0 <= seed_index < spec.seeds:
        raise ValueError(f"seed index {seed_index} out of range: the run has {spec.seeds} seeds")
    params = jax.tree.map(lambda x: x[seed_index], state.params)
    return trainer.env, play(trainer, params, episodes, jax.random.PRNGKey(key_seed), deterministic)


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
