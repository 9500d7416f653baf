"""Ray's overhead per sweep trial against the same trial run by ``ctde train``.

The same run (MAPPO on simple_spread, default settings) three ways, one after another,
each in a fresh folder with a cold compilation cache:

1. ``ctde train`` in a child process: wall time from start to exit;
2. ``ctde sweep`` of that one trial with the local backend (a child process per trial);
3. the same one-trial sweep on Ray: a local cluster (its start is timed apart: a sweep
   pays it once, not per trial), the trial a Ray task with as many CPUs as ``ctde train``
   used cores.

Two measures of the per-trial overhead. The direct one, robust to a busy machine: the
trial's wall time seen by the driver (submit to result) minus the time the worker spent
in the trial itself (``done.json``: from entering ``run_trial`` to writing it; JAX's
import, compilation and training are inside, as in ``ctde train``): what the backend
adds (scheduling, starting a worker, Ray's and ctde's imports), as a share of
``ctde train``'s wall time. And the plain difference of wall times, which on a shared
machine is as noisy as its load. Usage:

    python benchmarks/sweep_overhead.py [--steps 1e6] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml
from _common import machine


def ctde(*args: str) -> float:
    """Wall seconds of ``ctde ARGS`` in a fresh interpreter."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ctde.cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    steps, seeds = int(args.steps), args.seeds
    cores = os.cpu_count() or 1
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        grid = os.path.join(tmp, "grid.yaml")
        with open(grid, "w") as f:
            yaml.safe_dump({"algos": "mappo", "envs": "simple_spread", "seeds": seeds, "steps": steps}, f)
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # every run compiles from cold

        train_s = ctde("train", "mappo", "simple_spread", "--steps", str(steps), "--seeds", str(seeds),
                       "--out", os.path.join(tmp, "train"), "--no-progress")
        local_s = ctde("sweep", grid, "--out", os.path.join(tmp, "local"), "--no-progress")

        import ray

        from ctde.run import sweep

        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        cluster_s = time.perf_counter() - t0
        out = os.path.join(tmp, "ray")
        trials, facts = sweep.prepare(sweep.load_grid(grid), out)
        backend = sweep.RayBackend(cpus=cores)
        t0 = time.perf_counter()
        sweep.run_sweep(sweep.load_grid(grid), out, backend, progress=False, log=lambda _: None,
                        prepared=(trials, facts))
        ray_s = time.perf_counter() - t0
        ray.shutdown()
        done = {name: json.load(open(os.path.join(tmp, name, trials[0].name, "done.json")))
                for name in ("local", "ray")}
        train_row = sweep.last_row(os.path.join(tmp, "train", "metrics.csv"))

    print(f"\nMAPPO on simple_spread, {steps:,} env steps x {seeds} seeds, {cores} cores per trial\n")
    print("| how | trial wall time | in the worker's trial | training | compile | backend overhead "
          "(share of ctde train) | wall time - ctde train's |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| `ctde train` (child process) | {train_s:.1f} s | | {float(train_row['wall_s']):.1f} s "
          "| | | |")
    for name, seconds in (("`ctde sweep`, local backend", local_s), ("`ctde sweep --ray`, Ray task", ray_s)):
        d = done["local" if "local" in name else "ray"]
        inside = d["finished"] - d["started"]
        print(f"| {name} | {seconds:.1f} s | {inside:.1f} s | {d['wall_s']:.1f} s | "
              f"{d['compile_s']:.1f} s | {seconds - inside:.1f} s ({(seconds - inside) / train_s:.1%}) | "
              f"{seconds - train_s:+.1f} s ({(seconds - train_s) / train_s:+.1%}) |")
    print(f"\nRay local cluster start (once per sweep, not per trial): {cluster_s:.1f} s")
    print("(the local sweep's wall time is the whole `ctde sweep` command: it includes its "
          "driver's start, grid validation and JAX import)")


if __name__ == "__main__":
    main()
