"""Win rates of random and scripted allies against the built-in scripted enemy.

``python -m ctde.envs.micro.evaluate [--scenarios 3m 5m] [--episodes 200] [--enemy nearest]``
prints the markdown table quoted in docs/micro.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde.envs.micro.env import uniform
from ctde.envs.micro.heuristic import MODES, heuristic_actions

POLICIES = ("random",) + tuple(m for m in MODES if m != "stop")


def evaluate(env, allies=POLICIES, episodes: int = 200, seed: int = 0) -> dict:
    """Win/loss rates and mean return of ally policies against the env's scripted enemy.

    ``allies``: one policy or a sequence of them, each "random" (uniform over available
    actions) or a scripted mode. All policies and episodes run in one jitted, vmapped
    scan (one compile); the same episode seeds serve every policy. Returns
    ``{policy: {"win_rate", "loss_rate", "return_mean", "length_mean"}}`` (host floats),
    or that inner dict when ``allies`` is a single string.
    """
    single = isinstance(allies, str)
    names = (allies,) if single else tuple(allies)
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown ally policy {name!r}: use one of {POLICIES}")

    def act(key, state, which):
        options = []
        for name in names:
            if name == "random":
                draw = uniform(key, (env.num_agents, env.n_actions), salt=3)
                options.append(jnp.argmax(jnp.where(env.avail_actions(state), draw, -1.0), 1))
            else:
                options.append(heuristic_actions(env, state, key, name))
        return jnp.stack(options)[which].astype(jnp.int32)

    def episode(key, which):
        _, state = env.reset(key)

        def body(carry, key):
            state, done, won, lost, ret, length = carry
            _, nxt, reward, terminated, truncated, info = env.step(
                key, state, act(key, state, which))
            live = ~done
            state = jax.tree.map(lambda a, b: jnp.where(live, a, b), nxt, state)
            won = won | (live & (info["won"] > 0))
            lost = lost | (live & (info["lost"] > 0))
            ret = ret + jnp.where(live, reward[0], 0.0)
            length = length + live
            return (state, done | terminated | truncated, won, lost, ret, length), None

        init = (state, False, False, False, jnp.float32(0), jnp.int32(0))
        keys = jax.random.split(key, env.max_steps)
        (_, _, won, lost, ret, length), _ = jax.lax.scan(body, init, keys)
        return won, lost, ret, length

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    run = jax.jit(jax.vmap(jax.vmap(episode, (0, None)), (None, 0)))
    won, lost, ret, length = run(keys, jnp.arange(len(names)))  # [policies, episodes]
    out = {
        name: {"win_rate": float(jnp.mean(won[i])), "loss_rate": float(jnp.mean(lost[i])),
               "return_mean": float(jnp.mean(ret[i])),
               "length_mean": float(jnp.mean(length[i]))}
        for i, name in enumerate(names)
    }
    return out[names[0]] if single else out


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
    print(f"Allies vs the scripted enemy ({args.enemy}), {args.episodes} episodes each: "
          "win rate (mean return); last column: how often the random team loses\n")
    print("| scenario | " + " | ".join(f"{p} allies" for p in POLICIES) + " | random loses |")
    print("|---" * (len(POLICIES) + 2) + "|")
    start = time.time()
    for name in args.scenarios:
        results = evaluate(make(name, enemy_policy=args.enemy), POLICIES, args.episodes,
                           args.seed)
        cells = [f"{r['win_rate']:.2f} ({r['return_mean']:.1f})" for r in results.values()]
        cells.append(f"{results['random']['loss_rate']:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
