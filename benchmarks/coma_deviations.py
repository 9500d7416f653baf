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
import numpy as np

from ctde.envs import make
from ctde.envs.micro.evaluate import evaluate


def mixed_team_returns(env, mode: str, episodes: int, seed: int):
    """``[n + 1, 2]``: win rate and mean return when the first k agents play ``mode``
    and the others ``stop``, for k = 0..n (one compiled program, the same episodes)."""
    n = env.num_agents
    teams = [(mode,) * k + ("stop",) * (n - k) for k in range(n + 1)]
    result = evaluate(env, teams, episodes, seed)
    return np.array([[result[t]["win_rate"], result[t]["return_mean"]] for t in teams])


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
