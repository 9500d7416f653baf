"""Recurrent MAPPO training throughput on simple_spread, against feed-forward MAPPO and
JaxMARL's recurrent MAPPO, all in one run (env-steps/s including learning).

Ours: whole runs through the runner, each in its own process (mappo_throughput.py's child):
the default config, feed-forward and ``recurrent=True`` (the encoder widths and a GRU of 64),
on the layout ``ctde train --seeds K`` uses. JaxMARL: a re-creation of its recurrent MAPPO
loop (``_jaxmarl_mappo_rnn.py``) in an interpreter with ``jaxmarl`` installed
(``--jaxmarl-python`` or ``$JAXMARL_PYTHON``; skipped without one), with our sizes: 64 envs,
25-step rollouts, 5 epochs of 4 minibatches, 64-wide layers and GRU. The configurations run
in turn, ``--rounds`` times, so that each round's ratios compare runs under the same load.
Beside the rates: the matrix-product FLOPs of one update per env step (counted from the
traced program, ``_common.matmul_flops``) and the rate at which each run did them, which
tells whether the recurrent run is slower per unit of work or does more work.

    .venv/bin/python benchmarks/recurrent_throughput.py [--steps 2e5] [--seeds 4] [--rounds 2]
        [--parts] [--jaxmarl-python jaxmarl-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess

from _common import fmt, machine, run_child

from ctde.cli import host_devices

HERE = os.path.dirname(os.path.abspath(__file__))


def ours(steps: int, seeds: int, devices: int, recurrent: bool) -> dict:
    settings = ["recurrent=true"] if recurrent else []
    return run_child(os.path.join(HERE, "mappo_throughput.py"), "--env", "simple_spread",
                     "--set", *settings, "--child", str(steps), str(seeds), str(devices))


def jaxmarl(python: str, steps: int, seeds: int) -> dict:
    out = subprocess.run([python, os.path.join(HERE, "_jaxmarl_mappo_rnn.py"), str(seeds),
                          str(steps), "64", "25", "5", "4", "64", "64"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def parts(repeats: int = 5) -> None:
    """One minibatch's actor gradient at MAPPO's default shapes (sequences of 25 steps,
    16 envs x 3 agents, 21 inputs): feed-forward, the GRU stepped one step at a time with
    flax's cell (the previous implementation), and ``networks.unroll``; with the
    multiply-adds per agent-step that each network's layers need."""
    import time

    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from ctde.algos.common import networks

    steps, envs, n, d, actions = 25, 16, 3, 21, 5
    key = jax.random.PRNGKey(0)
    xs = jax.random.normal(key, (steps, envs, n, d))
    firsts = jnp.zeros((steps, envs, n), bool).at[0].set(True)
    h0 = jnp.zeros((envs, n, 64))

    class FlaxStepped(nn.Module):  # MLP encoder, flax's GRUCell, logits; one step per call
        @nn.compact
        def __call__(self, h, x, first):
            x = networks.MLP((64, 64), "relu", True)(x)
            h, y = nn.GRUCell(64)(jnp.where(first[..., None], 0.0, h), x)
            return h, networks.dense(actions, gain=0.01)(y)

    ff = networks.CategoricalPolicy(actions, (64, 64), "relu", True)
    rec = networks.RecurrentCategoricalPolicy(actions, (64, 64), 64, "relu", True)
    stepped = FlaxStepped()

    def loss(logits):
        return jax.nn.log_softmax(logits)[..., 0].sum()

    cases = {
        "feed-forward": (ff.init(key, xs), lambda p: loss(ff.apply(p, xs))),
        "GRU, flax cell stepped": (
            stepped.init(key, h0, xs[0], firsts[0]),
            lambda p: loss(networks.unroll_reference(stepped, p, h0, xs, firsts)[1])),
        "GRU, networks.unroll": (
            rec.init(key, h0, xs[0], firsts[0]),
            lambda p: loss(networks.unroll(rec, p, h0, xs, firsts)[1])),
    }
    macs = {"feed-forward": d * 64 + 64 * 64 + 64 * actions}
    macs["GRU, flax cell stepped"] = macs["GRU, networks.unroll"] = macs["feed-forward"] + 2 * 64 * 192
    compiled = {name: (jax.jit(jax.grad(fn)).lower(p).compile(), p) for name, (p, fn) in cases.items()}
    best = {name: float("inf") for name in compiled}
    for _ in range(repeats):  # in turn, so that every case sees the same load
        for name, (fn, p) in compiled.items():
            jax.block_until_ready(fn(p))
            t0 = time.perf_counter()
            for _ in range(20):
                out = fn(p)
            jax.block_until_ready(out)
            best[name] = min(best[name], (time.perf_counter() - t0) / 20)
    print("| actor gradient, one minibatch | ms | time / feed-forward | multiply-adds per agent-step |")
    print("|---|---:|---:|---:|")
    for name, t in best.items():
        print(f"| {name} | {t * 1e3:.2f} | {t / best['feed-forward']:.2f}x | {macs[name]:,} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=float, default=2e5, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--devices", type=int, default=0,
                        help="host devices for ours (default: what ctde train uses for --seeds)")
    parser.add_argument("--parts", action="store_true",
                        help="first time one actor gradient of each network (in this process)")
    parser.add_argument("--jaxmarl-python", default=os.environ.get("JAXMARL_PYTHON"),
                        help="interpreter with jaxmarl installed (skipped when absent)")
    args = parser.parse_args()
    steps, seeds, devices = int(args.steps), args.seeds, args.devices or host_devices(args.seeds)
    jm = args.jaxmarl_python if args.jaxmarl_python and os.path.exists(args.jaxmarl_python) else None

    print(f"machine: {machine()}")
    if args.parts:
        parts()
    print(f"MAPPO on simple_spread, {steps:,} env steps per seed, {seeds} seeds; ours on "
          f"{devices} host device(s), JaxMARL's seeds on one device (one after another on"
          f" a CPU, side by side on an accelerator)\n")
    head = ["round", "feed-forward", "recurrent", "recurrent / feed-forward",
            "matmul FLOP per env step, ff / rec", "matmul GFLOP/s, ff / rec"]
    head += ["JaxMARL recurrent", "recurrent / JaxMARL"] if jm else []
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    compiles = {}
    for rnd in range(1, args.rounds + 1):
        ff = ours(steps, seeds, devices, recurrent=False)
        rec = ours(steps, seeds, devices, recurrent=True)
        compiles.update(ours=(ff["compile_s"], rec["compile_s"]))
        cells = [str(rnd), fmt(ff["env_steps_per_s"]), fmt(rec["env_steps_per_s"]),
                 f"{rec['env_steps_per_s'] / ff['env_steps_per_s']:.2f}x",
                 f"{fmt(ff['matmul_flops_per_env_step'])} / {fmt(rec['matmul_flops_per_env_step'])} "
                 f"({rec['matmul_flops_per_env_step'] / ff['matmul_flops_per_env_step']:.1f}x)",
                 f"{ff['matmul_gflops_per_s']:.1f} / {rec['matmul_gflops_per_s']:.1f}"]
        if jm:
            other = jaxmarl(jm, steps, seeds)
            compiles["jaxmarl"] = other["compile_s"]
            cells += [f"{fmt(other['env_steps_per_s'])} ({fmt(other['matmul_flops_per_env_step'])} "
                      f"FLOP/step, {other['matmul_gflops_per_s']:.1f} GFLOP/s)",
                      f"{rec['env_steps_per_s'] / other['env_steps_per_s']:.1f}x"]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\ncompile s (last round): feed-forward {compiles['ours'][0]:.1f}, recurrent "
          f"{compiles['ours'][1]:.1f}" + (f", JaxMARL {compiles['jaxmarl']:.1f}" if jm else ""))
    print(f"final return_mean (last round): feed-forward {ff['final_return_mean']:.2f}, "
          f"recurrent {rec['final_return_mean']:.2f}")


if __name__ == "__main__":
    main()
