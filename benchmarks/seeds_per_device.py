"""How many seeds of one run a single device trains at once: env-steps/s and peak device
memory for K seeds side by side in one compiled program (the layout ``ctde train --seeds K``
has on one GPU), each K in a fresh process, compile time apart.

The run is a config file's (``--config``), with the env, seeds and steps set here. On a GPU
the seeds share its one device; on a CPU ``--host-devices`` splits them over cores as the CLI
would. Peak memory is the device allocator's high-water mark (GPUs report it; CPUs do not).

    python benchmarks/seeds_per_device.py --config configs/mappo_2s3z.yaml --env 3s5z \
        --seeds 1 16 128 --steps 1e5
    python benchmarks/seeds_per_device.py --config configs/coma_3m.yaml --seeds 6 120 --steps 1e5
"""

from __future__ import annotations

import argparse
import json
import subprocess

from _common import fmt, machine, run_child, train_here


def child(config: str, env: str | None, steps: int, seeds: int, devices: int) -> None:
    from ctde.run.spec import load_yaml

    data = load_yaml(config)
    spec = {k: v for k, v in data.items() if k not in ("steps", "seeds", "log_every", "eval_episodes")}
    if env:
        spec["env"] = env
    spec["config"] = spec.get("config") or {}
    spec["env_params"] = spec.get("env_params") or {}
    _, _, summary, _ = train_here(devices, steps=steps, seeds=seeds, log_every=steps // 5, **spec)
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    print(json.dumps({
        "compile_s": summary["compile_s"],
        "train_s": summary["wall_s"],
        "env_steps_per_s": summary["env_steps"] * seeds / summary["wall_s"],
        "peak_bytes": stats.get("peak_bytes_in_use"),
    }))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, help="a run config file (configs/*.yaml)")
    parser.add_argument("--env", help="another env than the config's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--steps", type=float, default=1e5, help="env steps per seed")
    parser.add_argument("--host-devices", type=int, default=1,
                        help="CPU only: cores the seeds are split over (a GPU run ignores it)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per seed count")
    parser.add_argument("--child", nargs=3, type=int, metavar=("STEPS", "SEEDS", "DEVICES"))
    args = parser.parse_args()
    if args.child:
        child(args.config, args.env, *args.child)
        return

    print(f"machine: {machine()}")
    print(f"{args.config}{' on ' + args.env if args.env else ''}, "
          f"{int(args.steps):,} env steps per seed\n")
    print("| seeds | compile s | train s | env-steps/s (all seeds) | per seed | peak memory |")
    print("|---:|---:|---:|---:|---:|---:|")
    first = None
    for seeds in args.seeds:
        try:
            r = run_child(__file__, "--config", args.config, *(["--env", args.env] if args.env else []),
                          "--child", str(int(args.steps)), str(seeds), str(args.host_devices),
                          timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"| {seeds} | over the {args.timeout:.0f} s limit | | | | |", flush=True)
            break
        except subprocess.CalledProcessError as e:
            tail = (e.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"| {seeds} | failed: {tail} | | | | |", flush=True)
            break
        rate = r["env_steps_per_s"]
        first = first or rate
        peak = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**30:.2f} GiB"
        print(f"| {seeds} | {r['compile_s']:.1f} | {r['train_s']:.1f} | {fmt(rate)} "
              f"({rate / first:.1f}x the first) | {fmt(rate / seeds)} | {peak} |",
              flush=True)


if __name__ == "__main__":
    main()
