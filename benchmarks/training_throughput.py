"""Training throughput of several algorithms on the same envs, in one run (env-steps/s
including learning; compile time apart), so the ratios hold on any machine.

Each (env, algorithm) runs in its own process with the same seeds and host devices.

    .venv/bin/python benchmarks/training_throughput.py --algos mappo coma --envs 3m 2d_3z \
        [--env-param setting=coma] [--set coma.num_envs=32] [--steps 300000] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json

from _common import fmt, machine, run_child, train_here

from ctde.cli import host_devices


def child(algo: str, env: str, steps: int, seeds: int, devices: int, env_params: dict,
          config: dict) -> None:
    _, plan, summary, total = train_here(devices, algo=algo, env=env, steps=steps, seeds=seeds,
                                         log_every=steps // 5, env_params=env_params, config=config)
    print(json.dumps({
        "compile_s": summary["compile_s"],
        "train_s": summary["wall_s"],
        "env_steps_per_s": summary["env_steps"] * seeds / summary["wall_s"],
        "steps_per_update": plan.steps_per_update,
    }))


def parse_pairs(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"expected NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        out[name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algos", nargs="+", default=["mappo", "coma"])
    parser.add_argument("--envs", nargs="+", default=["3m", "2d_3z"])
    parser.add_argument("--env-param", nargs="*", default=[], metavar="PARAM=VALUE")
    parser.add_argument("--set", nargs="*", default=[], metavar="ALGO.FIELD=VALUE",
                        help="an algorithm's setting, e.g. mappo.critic_input=FP")
    parser.add_argument("--steps", type=float, default=3e5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("ALGO", "ENV"))
    args = parser.parse_args()
    env_params = {k: __import__("yaml").safe_load(v) for k, v in parse_pairs(args.env_param).items()}
    settings = parse_pairs(args.set)
    devices = host_devices(args.seeds)

    def config_of(algo):
        return {k.split(".", 1)[1]: v for k, v in settings.items() if k.split(".", 1)[0] == algo}

    if args.child:
        algo, env = args.child
        child(algo, env, int(args.steps), args.seeds, devices, env_params, config_of(algo))
        return

    print(f"machine: {machine()}")
    print(f"{int(args.steps):,} env steps per seed, {args.seeds} seeds on {devices} host devices, "
          f"env params {env_params or 'default'}, settings {settings or 'default'}\n")
    print("| env | algorithm | steps per update | compile s | train s | env-steps/s | vs first |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for env in args.envs:
        first = None
        for algo in args.algos:
            r = run_child(__file__, "--child", algo, env, "--steps", str(args.steps), "--seeds",
                          str(args.seeds), "--env-param", *args.env_param, "--set", *args.set)
            rate = r["env_steps_per_s"]
            first = first or rate
            print(f"| {env} | {algo} | {r['steps_per_update']:,} | {r['compile_s']:.1f} | "
                  f"{r['train_s']:.1f} | {fmt(rate)} | {rate / first:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
