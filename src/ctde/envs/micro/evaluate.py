"""Win rates of random and scripted allies against the built-in scripted enemy.

``python -m ctde.envs.micro.evaluate [--scenarios 3m 5m] [--episodes 200] [--enemy nearest]
[--setting coma] [--seeds 5]`` prints the markdown tables quoted in docs/micro.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde.envs.micro.common import NOOP, STOP, uniform
from ctde.envs.micro.env import ENEMY_POLICIES
from ctde.envs.micro.heuristic import heuristic_actions

# Ally policies: attack_move needs attack orders beyond the shoot range, which the agents'
# rules do not give, so it plays the enemy only. "stop" holds position (and fires at what
# enters weapon range), the no-op once dead.
TABLE_POLICIES = ("random", "nearest", "focus", "coma")  # docs/micro.md's columns
POLICIES = (*TABLE_POLICIES, "stop")


def evaluate(env, allies=TABLE_POLICIES, episodes: int = 200, seed: int = 0) -> dict:
    """Win/loss rates and mean return of ally teams against the env's scripted enemy.

    ``allies``: one team or a sequence of them. A team is a policy name for every agent
    ("random": uniform over available actions; "stop"; or a scripted mode) or a tuple of
    one name per agent (a mixed team). All teams and episodes run in one jitted, vmapped
    scan (one compile); the same episode seeds serve every team. Returns
    ``{team: {"win_rate", "loss_rate", "return_mean", "length_mean"}}`` (host floats),
    or that inner dict when ``allies`` is a single name.
    """
    single = isinstance(allies, str)
    teams = (allies,) if single else tuple(allies)
    players = [(t,) * env.num_agents if isinstance(t, str) else tuple(t) for t in teams]
    for team, agents in zip(teams, players, strict=True):
        if len(agents) != env.num_agents:
            raise ValueError(f"team {team} names {len(agents)} policies for {env.num_agents} agents")
        for name in agents:
            if name not in POLICIES:
                raise ValueError(f"unknown ally policy {name!r}: use one of {POLICIES}")
    base = sorted(set(sum(players, ())))
    plays = jnp.array([[base.index(name) for name in agents] for agents in players])  # [teams, N]

    def act(key, state, which):
        options = []  # [len(base), N]: every base policy's actions, then each agent's pick
        for name in base:
            if name == "random":
                draw = uniform(key, (env.num_agents, env.n_actions), salt=3)
                options.append(jnp.argmax(jnp.where(env.avail_actions(state), draw, -1.0), 1))
            elif name == "stop":
                options.append(jnp.where(env.avail_actions(state)[:, STOP], STOP, NOOP))
            else:
                options.append(heuristic_actions(env, state, key, name))
        return jnp.stack(options)[plays[which], jnp.arange(env.num_agents)].astype(jnp.int32)

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
    won, lost, ret, length = run(keys, jnp.arange(len(teams)))  # [teams, episodes]
    out = {
        team: {"win_rate": float(jnp.mean(won[i])), "loss_rate": float(jnp.mean(lost[i])),
               "return_mean": float(jnp.mean(ret[i])),
               "length_mean": float(jnp.mean(length[i]))}
        for i, team in enumerate(teams)
    }
    return out[teams[0]] if single else out


def win_rate_ci(rates) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval over seeds' win rates."""
    import numpy as np

    try:
        from scipy import stats  # comes with the "report" extra (rliable, arch)
    except ImportError:
        raise ImportError("intervals over seeds need scipy: pip install 'ctde[report]'") from None
    rates = np.asarray(rates, np.float64)
    if len(rates) < 2:
        return float(rates.mean()), float("nan")
    half = stats.t.ppf(0.975, len(rates) - 1) * rates.std(ddof=1) / np.sqrt(len(rates))
    return float(rates.mean()), float(half)


def main(argv=None) -> None:
    """Print a markdown table of scripted/random allies vs the built-in enemy."""
    import argparse
    import time

    from ctde.envs import make
    from ctde.envs.micro.scenarios import SCENARIO_DATA
    from ctde.envs.micro.settings import SETTINGS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--scenarios", nargs="*", default=None,
                        help="default: every map the setting is defined for")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--enemy", default=None, choices=ENEMY_POLICIES,
                        help="the scripted enemy (default: the setting's)")
    parser.add_argument("--setting", default="smac", choices=tuple(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="episode seeds seed..seed+K-1; K > 1 adds a 95%% interval")
    args = parser.parse_args(argv)
    scenarios = args.scenarios or list(SETTINGS[args.setting].maps or SCENARIO_DATA)
    seeds = range(args.seed, args.seed + args.seeds)
    per_seed = f" x {args.seeds} seeds" if args.seeds > 1 else ""
    enemy = args.enemy or SETTINGS[args.setting].enemy_policy
    print(f"Allies vs the scripted enemy ({enemy}), setting {args.setting}, "
          f"{args.episodes} episodes{per_seed}: win rate "
          f"{'+- 95% CI over seeds ' if args.seeds > 1 else ''}(mean return); "
          "last column: how often the random team loses\n")
    print("| scenario | " + " | ".join(f"{p} allies" for p in TABLE_POLICIES) + " | random loses |")
    print("|---" * (len(TABLE_POLICIES) + 2) + "|")
    start = time.time()
    for name in scenarios:
        env = make(name, enemy_policy=args.enemy, setting=args.setting)
        runs = [evaluate(env, TABLE_POLICIES, args.episodes, seed) for seed in seeds]
        cells = []
        for policy in TABLE_POLICIES:
            mean, half = win_rate_ci([r[policy]["win_rate"] for r in runs])
            ret = sum(r[policy]["return_mean"] for r in runs) / len(runs)
            ci = f" +- {half:.2f}" if args.seeds > 1 else ""
            cells.append(f"{mean:.2f}{ci} ({ret:.1f})")
        lost = sum(r["random"]["loss_rate"] for r in runs) / len(runs)
        cells.append(f"{lost:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
