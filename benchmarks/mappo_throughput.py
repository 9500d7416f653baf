"""MAPPO training throughput on simple_spread (env-steps/s including learning).

Each configuration runs in its own process (the host device count must be set before
JAX starts). Compile time is reported separately from the steady-state rate.

    .venv/bin/python benchmarks/mappo_throughput.py [--steps 2000000] [--seeds 1 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import machine


def child(steps: int, seeds: int, devices: int, env: str, config: dict) -> None:
    if devices > 1:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import tempfile

    from ctde.run.runner import train
    from ctde.run.spec import RunSpec

    spec = RunSpec(algo="mappo", env=env, steps=steps, seeds=seeds, log_every=steps // 10,
                   eval_episodes=0, config=config)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = train(spec, out, progress=False)
        total = time.perf_counter() - t0
    rows = summary["last_rows"]
    print(json.dumps({
        "seeds": seeds,
        "devices": devices,
        "env_steps_per_seed": summary["env_steps"],
        "compile_s": summary["compile_s"],
        "train_s": summary["wall_s"],
        "total_s": total,
        "env_steps_per_s": summary["env_steps"] * seeds / summary["wall_s"],
        "final_return_mean": sum(float(r["return_mean"]) for r in rows) / len(rows),
    }))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=float, default=2e6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--env", default="simple_spread")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="MAPPO settings other than the defaults, e.g. critic_heads=true")
    parser.add_argument("--child", nargs=3, type=int, metavar=("STEPS", "SEEDS", "DEVICES"))
    args = parser.parse_args()
    config = dict(item.split("=", 1) for item in args.set)
    if args.child:
        child(*args.child, env=args.env, config=config)
        return

    print(f"machine: {machine()}")
    settings = ", ".join(args.set) or "default config"
    print(f"MAPPO ({settings}) on {args.env}, {int(args.steps):,} env steps per seed\n")
    print("| seeds | host devices | compile s | train s | env-steps/s (all seeds) | final return_mean |")
    print("|---|---|---|---|---|---|")
    cores = os.cpu_count() or 1
    for seeds in args.seeds:
        layouts = {1, max(d for d in range(1, min(seeds, cores) + 1) if seeds % d == 0)}
        for devices in sorted(layouts):
            out = subprocess.run(
                [sys.executable, __file__, "--env", args.env, "--set", *args.set,
                 "--child", str(int(args.steps)), str(seeds), str(devices)],
                capture_output=True, text=True, check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {seeds} | {devices} | {r['compile_s']:.1f} | {r['train_s']:.1f} | "
                  f"{r['env_steps_per_s']:,.0f} | {r['final_return_mean']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
