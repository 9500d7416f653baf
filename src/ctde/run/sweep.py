"""Sweeps: a grid file -> trials -> ordinary run folders, run locally or on Ray.

A grid file names algorithms, environments, seeds, a step budget and settings to vary::

    algos: [mappo, maddpg]
    envs: [simple_spread, simple_speaker_listener]
    seeds: 5                               # seeds per trial, trained side by side
    steps: 2e6
    set: {num_epochs: [5, 10]}             # algorithm settings; a list is a grid axis
    env: {local_ratio: [0.5, 1.0]}         # env parameters; a list is a grid axis
    per_algo: {maddpg: {batch_size: 1024}} # settings of one algorithm (lists are axes too)
    per_env: {simple_spread: {N: 3}}       # env parameters of one env
    variants: {base: {}, no_vn: {value_norm: none}}  # named changes, one trial set each
    base: ../mappo_simple_spread.yaml      # a run config whose settings every trial starts from

A setting applies to the algorithms (env parameter: to the envs) that have it, and is
an error when none has it. A tuple-valued setting (``hidden``) is an axis only as a list
of lists. Every trial is an ordinary run folder ``OUT/<algo>-<env>[-<axis>=<value>...]``
made by ``ctde.run.runner.train``, so ``ctde eval``, ``render`` and ``plot`` read it.

Nothing is lost or counted twice: each trial's worker resumes from the run's own
checkpoint, a finished trial leaves ``done.json`` and is never re-run, and the driver
can be killed and the same command re-run. Every trial is validated before any runs,
and one that has trained already must have the settings the grid gives it now.

The local backend runs each trial in a child process (one after another, or N at once);
the Ray backend runs each as a Ray task (``max_calls=1``: a fresh worker per trial, so
JAX's device count is set before it is imported). Retries are the driver's, the same
for both: a trial whose worker died is run again, resuming, up to ``max_failures`` times.
Trials share JAX's persistent compilation cache (``OUT/.jax_cache/<host>``).
This module does not import JAX until a grid is validated.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import fcntl
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import typing
from collections import deque

import yaml

from ctde.run.spec import RUN_FIELDS, SAVED_ONLY, load_yaml, spec_from_dict

GRID_FIELDS = ("algos", "envs", "seeds", "seed", "steps", "log_every", "eval_episodes",
               "checkpoint_every", "set", "env", "per_algo", "per_env", "variants", "base")
DONE = "done.json"  # written by a trial's worker once its run is finished
TRIAL = "trial.yaml"  # the trial's RunSpec, written by the driver before it runs
WORKER = "worker.json"  # pid and host of the worker process running the trial now
FAILED_EXIT = 1


@dataclasses.dataclass(frozen=True)
class Trial:
    name: str  # folder name under the sweep's output folder
    spec: dict  # a RunSpec as a mapping (``spec_from_dict`` reads it)
    labels: dict  # axis name -> value: what tells this trial from its neighbours

    @property
    def algo(self) -> str:
        return self.spec["algo"]

    @property
    def env(self) -> str:
        return self.spec["env"]


# --------------------------------------------------------------------------- grid files


def load_grid(path: str) -> dict:
    grid = load_yaml(path)
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: a grid file must hold a YAML mapping")
    if grid.get("base"):  # relative to the grid file
        grid = dict(grid, base=os.path.join(os.path.dirname(os.path.abspath(path)), grid["base"]))
    return grid


def _names(grid: dict, key: str, base: dict) -> list[str]:
    value = grid.get(key, base.get(key[:-1]))
    if value is None:
        example = "mappo" if key == "algos" else "identity"
        raise ValueError(f"the grid names no {key} (e.g. {key}: [{example}])")
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{key} must be a name or a list of names, got {value!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{key} lists a name twice: {values}")
    return values


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, got {value!r}")
    return value


def _is_tuple_field(annotation) -> bool:
    return typing.get_origin(annotation) is tuple


def _axis(value, annotation) -> list | None:
    """The values of a grid axis, or None when ``value`` is one setting."""
    if not isinstance(value, list):
        return None
    if _is_tuple_field(annotation) and not all(isinstance(v, list) for v in value):
        return None  # hidden: [64, 64] is one setting; [[64], [64, 64]] an axis
    if not value:
        raise ValueError("an empty list")
    return value


def expand(grid: dict) -> list[Trial]:
    """The trials of a grid, in a fixed order; a ValueError names any bad field."""
    from ctde import algos, envs
    from ctde.run.spec import config_fields

    unknown = sorted(set(grid) - set(GRID_FIELDS))
    if unknown:
        raise ValueError(f"unknown grid field {', '.join(map(repr, unknown))}. "
                         f"Valid fields: {', '.join(GRID_FIELDS)}")
    base = {}
    if grid.get("base"):
        base = load_yaml(grid["base"])
        if not isinstance(base, dict):
            raise ValueError(f"base: {grid['base']} must hold a YAML mapping")
        for key in SAVED_ONLY:
            base.pop(key, None)
    algo_names = _names(grid, "algos", base)
    env_names = _names(grid, "envs", base)
    for name in algo_names:
        algos.get(name)  # unknown names: one line listing the valid ones
    fields = {a: config_fields(algos.get(a).Config) for a in algo_names}
    params = {}
    for name in env_names:
        envs.make(name)
        params[name] = envs.parameters(name)
    settings = _mapping(grid.get("set"), "set")
    env_settings = _mapping(grid.get("env"), "env")
    per_algo = _mapping(grid.get("per_algo"), "per_algo")
    per_env = _mapping(grid.get("per_env"), "per_env")
    variants = _mapping(grid.get("variants"), "variants") or {None: {}}
    for where, given, known in (("per_algo", per_algo, algo_names), ("per_env", per_env, env_names)):
        for key, value in given.items():
            if key not in known:
                raise ValueError(f"{where}.{key}: {key!r} is not in the grid ({', '.join(known)})")
            _mapping(value, f"{where}.{key}")
    for name, changes in variants.items():
        for key in _mapping(changes, f"variants.{name}"):
            if key.startswith("env."):
                if not any(key[4:] in params[e] for e in env_names):
                    raise ValueError(f"variants.{name}.{key}: no env in the grid has parameter {key[4:]!r}")
            elif not all(key in fields[a] for a in algo_names):
                missing = [a for a in algo_names if key not in fields[a]]
                raise ValueError(f"variants.{name}.{key}: {', '.join(missing)} has no setting {key!r}")
    for key in settings:
        if not any(key in fields[a] for a in algo_names):
            raise ValueError(f"set.{key}: no algorithm in the grid ({', '.join(algo_names)}) has "
                             f"this setting")
    for key in env_settings:
        if not any(key in params[e] for e in env_names):
            raise ValueError(f"env.{key}: no env in the grid ({', '.join(env_names)}) has this parameter")

    run = {k: base[k] for k in RUN_FIELDS if k in base}
    run.update({k: grid[k] for k in RUN_FIELDS if k in grid})
    trials: list[Trial] = []
    # Task by task (every algorithm on one env before the next env): a sweep stopped part
    # way leaves whole rows of its table, each comparable across algorithms.
    for env, algo in itertools.product(env_names, algo_names):
        config = dict(base.get("config") or {}) if base.get("algo", algo) == algo else {}
        env_params = dict(base.get("env_params") or {}) if base.get("env", env) == env else {}
        axes: list[tuple[str, str, list]] = []  # (kind, name, values)
        for kind, source, where, applies in (
            ("config", settings, "set", lambda k, a=algo: k in fields[a]),
            ("config", _mapping(per_algo.get(algo), ""), f"per_algo.{algo}", lambda k: True),
            ("env", env_settings, "env", lambda k, e=env: k in params[e]),
            ("env", _mapping(per_env.get(env), ""), f"per_env.{env}", lambda k: True),
        ):
            for key, value in source.items():
                if not applies(key):
                    continue
                annotation = fields[algo].get(key) if kind == "config" else None
                try:
                    values = _axis(value, annotation)
                except ValueError as e:
                    raise ValueError(f"{where}.{key}: {e}") from None
                target = config if kind == "config" else env_params
                axes = [a for a in axes if (a[0], a[1]) != (kind, key)]  # later ones win
                if values is None:
                    target[key] = value
                else:
                    target.pop(key, None)
                    axes.append((kind, key, values))
        for point in itertools.product(*(values for _, _, values in axes)):
            for variant, changes in variants.items():
                trial_config, trial_env = dict(config), dict(env_params)
                labels = {}
                for (kind, key, _), value in zip(axes, point, strict=True):
                    (trial_config if kind == "config" else trial_env)[key] = value
                    labels[key if kind == "config" else f"env.{key}"] = value
                for key, value in (changes or {}).items():
                    if key.startswith("env."):
                        if key[4:] in params[env]:
                            trial_env[key[4:]] = value
                    else:
                        trial_config[key] = value
                if variant is not None:
                    labels["variant"] = variant
                spec = {"algo": algo, "env": env, "env_params": trial_env,
                        "config": trial_config, **copy.deepcopy(run)}
                trials.append(Trial(_trial_name(algo, env, labels), spec, labels))
    names = [t.name for t in trials]
    for i, trial in enumerate(trials):  # distinct folders even when names sanitise alike
        if names.count(trial.name) > 1:
            trials[i] = dataclasses.replace(trial, name=f"{trial.name}-{names[:i].count(trial.name)}")
    return trials


def _trial_name(algo: str, env: str, labels: dict) -> str:
    parts = [algo, env]
    for key, value in labels.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(text if key == "variant" else f"{key}={text}")
    return re.sub(r"[^A-Za-z0-9._=+,-]", "_", "-".join(parts)).replace(",", "+")


def validate_trials(trials: list[Trial]) -> list[dict]:
    """Build every trial's env and Config (and its plan) before anything runs: a
    ValueError names the trial and the field. Returns each trial's plan facts."""
    from ctde.run.runner import resolve

    facts = []
    for trial in trials:
        try:
            spec = spec_from_dict(trial.spec)
            _, _, plan = resolve(spec)
        except ValueError as e:
            raise ValueError(f"trial {trial.name}: {e}") from None
        total = getattr(plan, "total_steps", plan.segments * plan.steps_per_segment)
        facts.append({"total_steps": total, "seeds": spec.seeds})
    return facts


# --------------------------------------------------------------------------- one trial


def trial_state(out: str) -> str:
    """"done", "resume" (a checkpoint to carry on from) or "new"."""
    if os.path.exists(os.path.join(out, DONE)):
        return "done"
    checkpoints = os.path.join(out, "checkpoints")
    if os.path.isdir(checkpoints) and any(n.endswith(".msgpack") for n in os.listdir(checkpoints)):
        return "resume"
    return "new"


def run_trial(out: str, node: str | None = None) -> dict:
    """Run (or carry on) the trial in folder ``out``: its ``trial.yaml`` says what.
    Called in the worker process; JAX's flags must be set before this imports it.
    ``node``: the Ray node running it, kept in ``worker.json`` and ``done.json``."""
    started = time.time()
    os.makedirs(out, exist_ok=True)
    lock = open(os.path.join(out, ".lock"), "w")  # noqa: SIM115 (held until the process ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise RuntimeError(f"{out} is being run by another process") from None
    with open(os.path.join(out, WORKER), "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   **({"node": node} if node else {})}, f)
    state = trial_state(out)
    if state == "done":
        return _read_json(os.path.join(out, DONE))
    _compilation_cache(os.path.join(os.path.dirname(os.path.abspath(out)), ".jax_cache"))
    from ctde.run import checkpoint
    from ctde.run.runner import train

    spec = spec_from_dict(load_yaml(os.path.join(out, TRIAL)))
    summary = train(spec, out, resume=state == "resume", progress=False)
    if not summary["finished"]:
        raise RuntimeError(f"{out}: the run stopped before its budget")
    done = {k: summary[k] for k in ("env_steps", "wall_s", "compile_s", "devices")}
    done.update(host=socket.gethostname(), **({"node": node} if node else {}),
                started=round(started, 3), finished=round(time.time(), 3))
    checkpoint.atomic_write(os.path.join(out, DONE), json.dumps(done, indent=1))
    return done


def _compilation_cache(directory: str) -> None:
    """JAX's persistent compilation cache, shared by the sweep's trials on this host
    (unless one is configured already): a retried or resumed trial, and trials whose
    programs are the same, skip compiling. One folder per host: XLA:CPU compiles for
    the host's own instruction set."""
    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR") and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.join(directory, socket.gethostname()))


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def jax_env(devices: int, share_gpu: bool) -> dict:
    """Environment variables for a worker: the host device count (read when JAX is
    imported) and no GPU memory preallocation when trials share a GPU."""
    env = {}
    flags = os.environ.get("XLA_FLAGS", "")
    if devices > 1 and "xla_force_host_platform_device_count" not in flags:
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    if share_gpu:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def trial_devices(trial: Trial, cores: int) -> int:
    from ctde.cli import host_devices

    return host_devices(int(trial.spec.get("seeds", 1)), trial.algo, cores=cores)


# --------------------------------------------------------------------------- backends


class LocalBackend:
    """Each trial in a child process of this machine, ``parallel`` at once. A child
    dies with the driver (Linux: PR_SET_PDEATHSIG), so a re-run never meets an orphan
    (and a worker's run lock would refuse a second one)."""

    def __init__(self, parallel: int = 1, cores: int | None = None):
        self.parallel = max(1, parallel)
        self.cores = cores or max(1, (os.cpu_count() or 1) // self.parallel)
        self.running: dict[str, tuple[Trial, subprocess.Popen]] = {}

    def describe(self) -> str:
        return f"local, {self.parallel} at once, {self.cores} cores each"

    def has_room(self) -> bool:
        return len(self.running) < self.parallel

    def submit(self, trial: Trial, out: str) -> None:
        env = dict(os.environ, **jax_env(trial_devices(trial, self.cores), self.parallel > 1))
        log = open(os.path.join(out, "trial.log"), "a")  # noqa: SIM115 (the child holds it)
        proc = subprocess.Popen([sys.executable, "-m", "ctde.run.sweep", out, str(os.getpid())],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.running[trial.name] = (trial, proc)

    def wait(self, timeout: float) -> list[tuple[Trial, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            finished = []
            for name, (trial, proc) in list(self.running.items()):
                code = proc.poll()
                if code is not None:
                    del self.running[name]
                    finished.append((trial, None if code == 0 else _exit_reason(code)))
            if finished or time.monotonic() >= deadline:
                return finished
            time.sleep(0.05)

    def close(self) -> None:
        for _, proc in self.running.values():
            proc.terminate()
        for _, proc in self.running.values():
            proc.wait()
        self.running.clear()


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"worker killed by {signal.Signals(-code).name}"
    return f"worker exited with status {code}"


def _die_with(parent: int) -> bool:
    """Ask the kernel to kill this process when its parent dies (Linux PR_SET_PDEATHSIG),
    set in the child itself (no fork-time hook in a driver that runs JAX's threads).
    False if the parent is gone already."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: a killed driver may leave a child running
        pass
    return os.getppid() == parent


def _ray_trial(out: str) -> dict:
    """A Ray task: one trial in a fresh worker process (its env vars came with the task)."""
    import ray

    return run_trial(out, node=ray.get_runtime_context().get_node_id())


class RayBackend:
    """Each trial a Ray task on a running cluster (``address``) or on a local one this
    driver starts. Per-trial resources: ``cpus`` cores (that many host devices for
    JAX) and ``gpus`` GPUs (a fraction shares one: no memory preallocation)."""

    def __init__(self, address: str | None = None, cpus: int = 1, gpus: float = 0.0):
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs Ray: pip install 'ctde[ray]'") from None

        self.ray = ray
        self.cpus, self.gpus = max(1, int(cpus)), float(gpus)
        self.started_here = False
        if not ray.is_initialized():
            # no address: a new local cluster, even where `ray start` left one running
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self.started_here = True
        self.task = ray.remote(max_calls=1)(_ray_trial)  # a fresh worker per trial
        self.running: dict = {}  # object ref -> trial

    def describe(self) -> str:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        total = self.ray.cluster_resources()
        gpus = f", {total.get('GPU', 0):g} GPUs" if total.get("GPU") else ""
        return (f"Ray, {len(nodes)} node(s), {total.get('CPU', 0):g} CPUs{gpus}; "
                f"{self.cpus} CPU(s){f', {self.gpus:g} GPU' if self.gpus else ''} per trial")

    def has_room(self) -> bool:
        return True  # Ray queues tasks until their resources are free

    def submit(self, trial: Trial, out: str) -> None:
        devices = trial_devices(trial, self.cpus)
        env_vars = jax_env(devices, 0 < self.gpus < 1)
        ref = self.task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0,
                                runtime_env={"env_vars": env_vars}).remote(out)
        self.running[ref] = trial

    def wait(self, timeout: float) -> list[tuple[Trial, str | None]]:
        if not self.running:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=timeout)
        finished = []
        for ref in ready:
            trial = self.running.pop(ref)
            try:
                self.ray.get(ref)
                finished.append((trial, None))
            except Exception as e:  # a dead worker or node, or an error in the trial
                finished.append((trial, str(e).strip().splitlines()[-1][:200]))
        return finished

    def close(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()
        if self.started_here:
            self.ray.shutdown()


# --------------------------------------------------------------------------- the driver


def prepare(grid: dict, out: str) -> tuple[list[Trial], list[dict]]:
    """Expand and validate the grid, check ``out`` against it, write each trial's spec."""
    trials = expand(grid)
    facts = validate_trials(trials)
    for trial in trials:
        path = os.path.join(out, trial.name, TRIAL)
        if os.path.exists(path) and load_yaml(path) != _plain(trial.spec):
            raise ValueError(f"{os.path.join(out, trial.name)} holds a trial of a different grid: "
                             f"pick another --out")
        if trial_state(os.path.join(out, trial.name)) != "new":
            _check_trained_settings(trial, os.path.join(out, trial.name))
    os.makedirs(out, exist_ok=True)
    from ctde.run.checkpoint import atomic_write

    atomic_write(os.path.join(out, "sweep.yaml"), yaml.safe_dump(
        _sweep_record(os.path.join(out, "sweep.yaml"), grid, trials), sort_keys=False))
    for trial in trials:
        atomic_write(os.path.join(out, trial.name, TRIAL), yaml.safe_dump(_plain(trial.spec),
                                                                         sort_keys=False))
    return trials, facts


def _sweep_record(path: str, grid: dict, trials: list[Trial]) -> dict:
    """``sweep.yaml``: every grid run into the folder and every trial's labels, those of
    earlier grids kept, so a grid run a slice at a time still reports as one."""
    before = load_yaml(path) if os.path.exists(path) else {}
    grids = before.get("grids") or ([before["grid"]] if "grid" in before else [])  # older: one
    plain = _plain(grid)
    if plain not in grids:
        grids.append(plain)
    labels = {**(before.get("labels") or {}), **{t.name: _plain(t.labels) for t in trials}}
    return {"grids": grids, "labels": labels}


def _check_trained_settings(trial: Trial, folder: str) -> None:
    """A trial that has trained counts as done, or resumes, only with the settings the
    grid gives it now: a release that changes a setting's default (a run's config.yaml
    keeps every setting it was trained with) must not leave a sweep of mixed learners."""
    from ctde.run.runner import resolve
    from ctde.run.spec import changed_env_settings, changed_settings, read_spec

    spec = spec_from_dict(trial.spec)
    _, then, _ = resolve(read_spec(folder))
    _, now, _ = resolve(spec)
    changed = changed_settings(then, now) + changed_env_settings(folder, spec)
    if changed:
        raise ValueError(f"{folder} was trained with {'; '.join(changed)}: pick another --out "
                         f"to run the grid with this release's settings")


def _plain(data):
    return yaml.safe_load(yaml.safe_dump(data))


def run_sweep(grid: dict, out: str, backend, max_failures: int = 2, progress: bool = True,
              log=print, prepared=None) -> dict:
    """Run every unfinished trial of ``grid`` under ``out`` (``prepared``: what
    ``prepare`` returned, if it ran already). Returns {name: state} with state "done"
    or "failed: <reason>"."""
    out = os.path.abspath(out)
    trials, facts = prepared or prepare(grid, out)
    total = {t.name: f for t, f in zip(trials, facts, strict=True)}
    states = {t.name: trial_state(os.path.join(out, t.name)) for t in trials}
    skipped = sum(s == "done" for s in states.values())
    log(f"sweep: {len(trials)} trials -> {out} ({skipped} already done); {backend.describe()}")
    failures = {t.name: 0 for t in trials}
    pending = deque(t for t in trials if states[t.name] != "done")
    started: dict[str, float] = {}
    table = _Table(trials, total, out, progress)
    try:
        while pending or any(s.startswith("running") for s in states.values()):
            while pending and backend.has_room():
                trial = pending.popleft()
                states[trial.name] = "running" + (f" (retry {failures[trial.name]})"
                                                  if failures[trial.name] else "")
                started[trial.name] = time.monotonic()
                backend.submit(trial, os.path.join(out, trial.name))
            for trial, error in backend.wait(1.0):
                trial_dir = os.path.join(out, trial.name)
                if error is None and trial_state(trial_dir) == "done":
                    states[trial.name] = "done"
                    log(f"done    {trial.name} ({time.monotonic() - started[trial.name]:.1f} s)")
                    continue
                failures[trial.name] += 1
                reason = error or "the worker ended without finishing"
                if failures[trial.name] > max_failures:
                    states[trial.name] = f"failed: {reason}"
                    log(f"failed  {trial.name}: {reason} (gave up after {max_failures} retries; "
                        f"see {os.path.join(trial_dir, 'trial.log')})")
                else:
                    states[trial.name] = "pending"
                    log(f"retry   {trial.name} from its last checkpoint: {reason}")
                    pending.appendleft(trial)
            table.update(states)
    finally:
        backend.close()
        table.close(states)
    failed = [n for n, s in states.items() if s != "done"]
    log(f"sweep: {len(trials) - len(failed)} of {len(trials)} trials done"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    return states


class _Table:
    """A live rich table of the trials: state, steps, steps/s, ETA, latest return."""

    def __init__(self, trials: list[Trial], total: dict, out: str, enabled: bool):
        self.trials, self.total, self.out = trials, total, out
        self.live = None
        if enabled:
            from rich.console import Console
            from rich.live import Live

            console = Console()
            if console.is_terminal:
                self.live = Live(console=console, auto_refresh=False)  # no thread: children fork
                self.live.start()

    def update(self, states: dict) -> None:
        if self.live is not None:
            self.live.update(status_table(self.trials, self.total, self.out, states), refresh=True)

    def close(self, states: dict) -> None:
        if self.live is not None:
            self.update(states)
            self.live.stop()


def status_table(trials: list[Trial], facts: dict, out: str, states: dict):
    """A rich Table: each trial's state, env steps (from its metrics.csv), steps/s, ETA
    and latest return_mean. ``facts``: name -> {"total_steps", "seeds"}."""
    from rich.table import Table

    table = Table(title="ctde sweep", title_justify="left")
    for column in ("trial", "state", "env steps", "steps/s", "ETA", "return_mean"):
        table.add_column(column, justify="left" if column in ("trial", "state") else "right")
    for trial in trials:
        total, seeds = facts[trial.name]["total_steps"], facts[trial.name]["seeds"]
        row = last_row(os.path.join(out, trial.name, "metrics.csv"))
        steps = int(float(row["env_steps"])) if row else 0
        sps = float(row.get("steps_per_s") or 0) if row else 0.0  # all seeds together
        state = states[trial.name]
        if state == "done":
            steps = total
        eta = (total - steps) * seeds / sps if sps > 0 and state.startswith("running") else None
        table.add_row(trial.name, state, f"{steps:,}/{total:,}", f"{sps:,.0f}" if sps else "",
                      _duration(eta), (row.get("return_mean") or "") if row else "")
    return table


def last_row(path: str) -> dict | None:
    """The last row of a metrics.csv (None if there is none yet)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (FileNotFoundError, csv.Error):
        return None
    return rows[-1] if rows else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, s = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{s:02d}"


# --------------------------------------------------------------------------- the CLI


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a grid of trials (locally or on Ray)",
                              description="Each trial is an ordinary run folder under --out; "
                              "re-run the same command to carry on a killed sweep.")
    p.add_argument("grid", metavar="GRID.yaml")
    p.add_argument("--out", required=True, help="sweep folder (one run folder per trial)")
    p.add_argument("--parallel", type=int, default=1, help="local trials at once (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the trials as Ray tasks: on the cluster at ADDRESS ('auto': the "
                   "one started on this machine), or on a local one started for the sweep")
    p.add_argument("--cpus-per-trial", dest="cpus", type=int, default=None,
                   help="cores per trial (Ray default 1; local: cores / --parallel)")
    p.add_argument("--gpus-per-trial", dest="gpus", type=float, default=0.0,
                   help="GPUs per Ray trial (a fraction shares a GPU)")
    p.add_argument("--max-failures", dest="max_failures", type=int, default=2,
                   help="retries of a trial whose worker died (default 2)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args, extra) -> int:
    if args.parallel < 1 or args.max_failures < 0 or (args.cpus is not None and args.cpus < 1):
        raise ValueError("--parallel and --cpus-per-trial must be >= 1, --max-failures >= 0")
    if args.ray is not None and args.parallel != 1:
        raise ValueError("--parallel is for local runs: Ray runs as many trials at once as "
                         "--cpus-per-trial and --gpus-per-trial allow")
    grid = load_grid(args.grid)
    _driver_on_cpu()
    prepared = prepare(grid, args.out)  # a bad grid fails here, before a cluster is started
    if args.ray is not None:
        backend = RayBackend(args.ray, cpus=args.cpus or 1, gpus=args.gpus)
    else:
        backend = LocalBackend(args.parallel, args.cpus)
    try:
        states = run_sweep(grid, args.out, backend, args.max_failures, not args.no_progress,
                           prepared=prepared)
    except KeyboardInterrupt:
        print("\ninterrupted; carry on with the same command (finished trials are kept)",
              file=sys.stderr)
        return 130
    return 0 if all(s == "done" for s in states.values()) else FAILED_EXIT


def _driver_on_cpu() -> None:
    """Keep the driver's JAX (it builds each trial's env to validate it) on the CPU. On a
    GPU machine JAX's first array takes 75 % of the GPU's memory for its pool, which the
    trials then cannot have. A config setting, not an environment variable: the trials'
    processes keep their accelerators."""
    import jax

    jax.config.update("jax_platforms", "cpu")


def _worker_main(argv: list[str]) -> int:
    """``python -m ctde.run.sweep TRIAL_DIR DRIVER_PID``: the local backend's child process."""
    out, parent = argv
    if not _die_with(int(parent)):
        return 1
    try:
        run_trial(out)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
