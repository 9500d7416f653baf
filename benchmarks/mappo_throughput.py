"""MAPPO training throughput on simple_spread (env-steps/s including learning).

Each configuration runs in its own process (the host device count must be set before
JAX starts). Compile time is reported separately from the steady-state rate.

    .venv/bin/python benchmarks/mappo_throughput.py [--steps 2000000] [--seeds 1 4]
"""

from __future__ import annotations

import argparse
import json

from _common import machine, matmul_flops, run_child, train_here

from ctde.cli import host_devices


def child(steps: int, seeds: int, devices: int, env: str, config: dict) -> None:
    trainer, _, summary, total = train_here(devices, algo="mappo", env=env, steps=steps,
                                            seeds=seeds, log_every=steps // 10, config=config)
    rows = summary["last_rows"]
    import jax

    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    flops_per_step = matmul_flops(trainer.update, state) / trainer.steps_per_update
    print(json.dumps({
        "seeds": seeds,
        "devices": devices,
        "env_steps_per_seed": summary["env_steps"],
        "compile_s": summary["compile_s"],
        "train_s": summary["wall_s"],
        "total_s": total,
        "env_steps_per_s": summary["env_steps"] * seeds / summary["wall_s"],
        # one env step's share of an update's matrix products (rollout and learning)
        "matmul_flops_per_env_step": flops_per_step,
        "matmul_gflops_per_s": flops_per_step * summary["env_steps"] * seeds / summary["wall_s"] / 1e9,
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
    for seeds in args.seeds:
        for devices in sorted({1, host_devices(seeds)}):
            r = run_child(__file__, "--env", args.env, "--set", *args.set,
                          "--child", str(int(args.steps)), str(seeds), str(devices))
            print(f"| {seeds} | {devices} | {r['compile_s']:.1f} | {r['train_s']:.1f} | "
                  f"{r['env_steps_per_s']:,.0f} | {r['final_return_mean']:.2f} |", flush=True)

if __name__ == "__main__":
    main()
