"""Is "every agent takes stop" a trap for learners that change one agent at a time?

In the COMA setting every method of Table 1 settles on the policy "always stop". This
script plays mixed teams against the scripted enemy: the first k agents follow the COMA
paper's heuristic (advance, then focus fire), the other n - k take ``stop``, for k = 0..n,
and the same with the other scripted modes. If one agent leaving ``stop`` on its own does
worse than the all-``stop`` team while all of them together do far better, then ``stop``
is a local optimum for any learner whose gradient measures one agent's deviation with the
others fixed (COMA's counterfactual advantage does exactly that).

    python benchmarks/coma_deviations.py [--maps 3m 5m] [--episodes 200] [--seeds 5] [--enemy nearest]
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs import make
from ctde.envs.micro.common import STOP
from ctde.envs.micro.heuristic import heuristic_actions


def mixed_team_returns(env, mode: str, episodes: int, seed: int):
    """``[n + 1, 2]``: win rate and mean return when the first k agents play ``mode``
    and the others ``stop``, for k = 0..n (one compiled program, the same episodes)."""
    n = env.num_agents

    def episode(key, k):
        _, state = env.reset(key)
        scripted = jnp.arange(n) < k

        def body(carry, key):
            state, done, won, ret = carry
            actions = heuristic_actions(env, state, key, mode)
            stop = jnp.where(env.avail_actions(state)[:, STOP], STOP, 0)
            actions = jnp.where(scripted, actions, stop).astype(jnp.int32)
            _, nxt, reward, terminated, truncated, info = env.step(key, state, actions)
            live = ~done
            state = jax.tree.map(lambda a, b: jnp.where(live, a, b), nxt, state)
            won = won | (live & (info["won"] > 0))
            ret = ret + jnp.where(live, reward[0], 0.0)
            return (state, done | terminated | truncated, won, ret), None

        init = (state, False, False, jnp.float32(0))
        (_, _, won, ret), _ = jax.lax.scan(body, init, jax.random.split(key, env.max_steps))
        return won, ret

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    run = jax.jit(jax.vmap(jax.vmap(episode, (0, None)), (None, 0)))
    won, ret = run(keys, jnp.arange(n + 1))  # [k, episodes]
    return np.stack([np.asarray(won).mean(1), np.asarray(ret).mean(1)], 1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", nargs="*", default=["3m", "5m", "5w", "2d_3z"])
    parser.add_argument("--modes", nargs="*", default=["coma", "focus"])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--enemy", default="nearest", help="the scripted enemy (enemy_policy)")
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__} "
          f"({jax.default_backend()}); setting coma, enemy {args.enemy}, {args.episodes} episodes "
          f"x {args.seeds} seeds per cell")
    print("k agents play the mode, the others `stop`: win rate (mean return), mean over seeds\n")
    start = time.time()
    for name in args.maps:
        env = make(name, setting="coma", enemy_policy=args.enemy)
        n = env.num_agents
        print(f"| {name} | " + " | ".join(f"k = {k}" for k in range(n + 1)) + " |")
        print("|---" * (n + 2) + "|")
        for mode in args.modes:
            cells = np.mean([mixed_team_returns(env, mode, args.episodes, s)
                             for s in range(args.seeds)], 0)
            print(f"| {mode} | " + " | ".join(f"{w:.2f} ({r:.1f})" for w, r in cells) + " |",
                  flush=True)
        print()
    print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
