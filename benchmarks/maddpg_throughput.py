"""MADDPG training throughput on simple_tag at the paper's settings: batch 1024, one
gradient step (every agent's critic and actor) per 100 env steps, a 1e6 replay buffer.

Each configuration runs the real runner (``ctde train``) in its own process (the host
device count must be set before JAX starts), without evaluation. ``train s`` is the time
inside the compiled segments (what the runner logs as steps_per_s); ``total s`` adds
compilation and the between-segment work, mostly writing the checkpoint, which holds the
replay buffer.

    .venv/bin/python benchmarks/maddpg_throughput.py [--steps 1000000] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import json

from _common import machine, run_child, train_here

from ctde.cli import host_devices


def child(steps: int, seeds: int, devices: int, env: str, config: dict) -> None:
    trainer, plan, summary, total = train_here(devices, algo="maddpg", env=env, steps=steps,
                                               seeds=seeds, log_every=steps // 4, config=config)
    updates = plan.total_updates * trainer.config.gradient_steps
    rows = summary["last_rows"]
    print(json.dumps({
        "env_steps_per_seed": summary["env_steps"],
        "compile_s": summary["compile_s"],
        "train_s": summary["wall_s"],
        "total_s": total,
        "env_steps_per_s": summary["env_steps"] * seeds / summary["wall_s"],
        "updates_per_s": updates * seeds / summary["wall_s"],
        "touches": sum(float(r["touches"]) for r in rows) / len(rows),
    }))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--env", default="simple_tag")
    parser.add_argument("--config", default="{}", help="JSON of Config overrides")
    parser.add_argument("--child", nargs=3, type=int, metavar=("STEPS", "SEEDS", "DEVICES"))
    args = parser.parse_args()
    config = json.loads(args.config)
    if args.child:
        child(*args.child, env=args.env, config=config)
        return

    from ctde.algos import maddpg

    c = maddpg.Config(**config)
    print(f"machine: {machine()}")
    print(f"MADDPG on {args.env}, {int(args.steps):,} env steps per seed: {c.num_envs} envs x "
          f"{c.rollout_steps} steps per iteration, batch {c.batch_size}, a gradient step per "
          f"{c.update_every} env steps, buffer {c.buffer_size:,}\n")
    print("| seeds | host devices | compile s | train s | total s | env-steps/s (all seeds) "
          "| updates/s (all seeds) | 1 M env steps take |")
    print("|---|---|---|---|---|---|---|---|")
    layouts = [(seeds, devices) for seeds in args.seeds
               for devices in sorted({host_devices(seeds), host_devices(seeds, "maddpg")})]
    for seeds, devices in layouts:  # more devices than seeds: a seed's batches are split
        r = run_child(__file__, "--env", args.env, "--config", args.config,
                      "--child", str(int(args.steps)), str(seeds), str(devices))
        print(f"| {seeds} | {devices} | {r['compile_s']:.1f} | {r['train_s']:.1f} | "
              f"{r['total_s']:.1f} | {r['env_steps_per_s']:,.0f} | {r['updates_per_s']:,.1f} | "
              f"{1e6 / r['env_steps_per_s']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
