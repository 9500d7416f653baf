"""Micro (StarCraft-style) environment throughput: env-steps per second.

One env-step is one step of one battle: all agents act, the scripted enemy acts and
``step_mul`` game loops are simulated. Ours: ``jit(scan(vmap(step)))`` with auto-reset
and uniformly random *available* actions for the allies; compile time is measured
separately. JaxMARL's SMAX (``HeuristicEnemySMAX``, the same protocol: random available
actions, heuristic enemy, auto-reset) runs too when a separate interpreter with
``jaxmarl`` is given (``--jaxmarl-python`` or ``$JAXMARL_PYTHON``); it is skipped
otherwise. Prints the machine and a markdown table.

    python benchmarks/micro_throughput.py
    python benchmarks/micro_throughput.py --scenarios 3m --batches 1 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import fmt, machine

from ctde.envs import AutoReset, make


def random_rollout(env, batch: int, steps: int):
    """``f(key) -> checksum``: reset ``batch`` envs, then ``steps`` auto-resetting steps
    of random available actions, all in one jit; rewards and observations feed a
    checksum so nothing is optimised away."""
    wrapped = AutoReset(env)
    step = jax.vmap(wrapped.step)
    sample = jax.vmap(env.sample_actions)

    def body(carry, key):
        state, total = carry
        k_act, k_step = jax.random.split(key)
        actions = sample(jax.random.split(k_act, batch), state)
        obs, state, reward, _, _, _ = step(jax.random.split(k_step, batch), state, actions)
        return (state, total + jnp.sum(reward) + jnp.sum(obs[:, :, 0])), None

    def rollout(key):
        _, state = jax.vmap(wrapped.reset)(jax.random.split(key, batch))
        (_, total), _ = jax.lax.scan(body, (state, jnp.float32(0)),
                                     jax.random.split(key, steps))
        return total

    return jax.jit(rollout)


def measure_ours(name: str, batch: int, target_steps: int, repeats: int):
    env = make(name)
    steps = max(20, target_steps // batch)
    run = random_rollout(env, batch, steps)
    t0 = time.perf_counter()
    run(jax.random.key(0)).block_until_ready()
    first = time.perf_counter() - t0
    best = np.inf
    for rep in range(repeats):  # best of several: the machine is shared
        t0 = time.perf_counter()
        run(jax.random.key(rep + 1)).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return batch * steps / best, first - best


SMAX_SNIPPET = r"""
import json, sys, time
import jax, jax.numpy as jnp
from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
name, batch, steps, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
env = HeuristicEnemySMAX(scenario=map_name_to_scenario(name))
agents = env.agents
def rollout(key):
    obs, state = jax.vmap(env.reset)(jax.random.split(key, batch))
    def body(carry, key):
        state, total = carry
        k_act, k_step = jax.random.split(key)
        avail = jax.vmap(env.get_avail_actions)(state)
        logits = jnp.stack([jnp.where(avail[a], 0.0, -jnp.inf) for a in agents], 1)
        acts = jax.random.categorical(k_act, logits).astype(jnp.int32)
        acts = {a: acts[:, i] for i, a in enumerate(agents)}
        obs, state, rew, dones, info = jax.vmap(env.step)(
            jax.random.split(k_step, batch), state, acts)
        total = total + sum(jnp.sum(rew[a]) + jnp.sum(obs[a][:, 0]) for a in agents)
        return (state, total), None
    (state, total), _ = jax.lax.scan(body, (state, jnp.float32(0)), jax.random.split(key, steps))
    return total
run = jax.jit(rollout)
t0 = time.perf_counter(); run(jax.random.key(0)).block_until_ready()
first = time.perf_counter() - t0
best = 1e9
for rep in range(repeats):
    t0 = time.perf_counter(); run(jax.random.key(rep + 1)).block_until_ready()
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"rate": batch * steps / best, "compile": first - best, "jax": jax.__version__}))
"""


def measure_smax(python: str, name: str, batch: int, target_steps: int, repeats: int):
    """SMAX's rate in its own interpreter (JaxMARL pins its own jax); None on failure."""
    steps = max(20, target_steps // batch)
    cmd = [python, "-c", SMAX_SNIPPET, name, str(batch), str(steps), str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as err:
        print(f"  smax {name} x{batch}: skipped ({type(err).__name__})", file=sys.stderr)
        return None




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["3m", "2s3z", "3s5z"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 256, 2048])
    parser.add_argument("--steps", type=int, default=200_000,
                        help="env-steps per timed run (at least 20 scan steps)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jaxmarl-python", default=os.environ.get("JAXMARL_PYTHON"),
                        help="interpreter with jaxmarl installed (SMAX skipped when absent)")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    jm = args.jaxmarl_python if args.jaxmarl_python and os.path.exists(
        args.jaxmarl_python) else None
    rows = []
    for name in args.scenarios:
        ours, compile_s, smax = {}, {}, {}
        for b in args.batches:
            ours[b], compile_s[b] = measure_ours(name, b, args.steps, args.repeats)
            print(f"  {name} x{b}: {fmt(ours[b])} env-steps/s (compile {compile_s[b]:.1f} s)",
                  file=sys.stderr, flush=True)
            if jm:
                res = measure_smax(jm, name, b, args.steps, args.repeats)
                smax[b] = res and res["rate"]
                print(f"  SMAX {name} x{b}: {fmt(smax[b])}", file=sys.stderr, flush=True)
        rows.append((name, ours, compile_s, smax))

    batches = args.batches
    head = ["scenario"] + [f"ours x{b}" for b in batches] + ["compile s"]
    if jm:
        head += [f"SMAX x{b}" for b in batches] + [f"ours/SMAX x{b}" for b in batches]
    print("\nenv-steps/s (one step of one battle, random available actions, auto-reset)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for name, ours, compile_s, smax in rows:
        cells = [name] + [fmt(ours[b]) for b in batches] + [f"{max(compile_s.values()):.1f}"]
        if jm:
            cells += [fmt(smax.get(b)) for b in batches]
            cells += [f"{ours[b] / smax[b]:.1f}x" if smax.get(b) else "-" for b in batches]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
