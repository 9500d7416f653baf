"""Win rates of random and scripted allies against the built-in scripted enemy.

``python -m ctde.envs.micro.evaluate [--scenarios 3m 5m] [--episodes 200] [--enemy nearest]``
prints the markdown table quoted in docs/micro.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde.envs.micro.heuristic import MODES, heuristic_actions


def evaluate(env, allies: str = "random", episodes: int = 200, seed: int = 0) -> dict:
    """Win/loss rates and mean return of ``allies`` against the env's scripted enemy.

    ``allies``: "random" (uniform over available actions) or a scripted mode. Runs
    ``episodes`` episodes in one jitted, vmapped scan; returns host floats.
    """
    def act(key, state):
        if allies == "random":
            return env.sample_actions(key, state)
        return heuristic_actions(env, state, key, allies)

    def episode(key):
        key, k_reset = jax.random.split(key)
        _, state = env.reset(k_reset)

        def body(carry, _):
            state, key, done, won, lost, ret, length = carry
            key, k_act, k_step = jax.random.split(key, 3)
            _, nxt, reward, terminated, truncated, info = env.step(k_step, state, act(k_act, state))
            live = ~done
            state = jax.tree.map(lambda a, b: jnp.where(live, a, b), nxt, state)
            won = won | (live & (info["won"] > 0))
            lost = lost | (live & (info["lost"] > 0))
            ret = ret + jnp.where(live, reward[0], 0.0)
            length = length + live
            return (state, key, done | terminated | truncated, won, lost, ret, length), None

        init = (state, key, False, False, False, jnp.float32(0), jnp.int32(0))
        (_, _, _, won, lost, ret, length), _ = jax.lax.scan(body, init, None, env.max_steps)
        return won, lost, ret, length

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    won, lost, ret, length = jax.jit(jax.vmap(episode))(keys)
    return {"win_rate": float(jnp.mean(won)), "loss_rate": float(jnp.mean(lost)),
            "return_mean": float(jnp.mean(ret)), "length_mean": float(jnp.mean(length))}


def main(argv=None) -> None:
    """Print a markdown table of scripted/random allies vs the built-in enemy."""
    import argparse
    import time

    from ctde.envs import make
    from ctde.envs.micro.scenarios import SCENARIO_DATA

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIO_DATA))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--enemy", default="nearest", choices=MODES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    allies = ("random", "nearest", "focus")
    print(f"Allies vs the scripted enemy ({args.enemy}), {args.episodes} episodes each: "
          "win rate (mean return)\n")
    print("| scenario | " + " | ".join(allies) + " |")
    print("|---" * (len(allies) + 1) + "|")
    start = time.time()
    for name in args.scenarios:
        env = make(name, enemy_policy=args.enemy)
        cells = []
        for who in allies:
            r = evaluate(env, who, args.episodes, args.seed)
            cells.append(f"{r['win_rate']:.2f} ({r['return_mean']:.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
