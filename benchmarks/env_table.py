"""Print the markdown table of the MPE environments used in docs/environments.md.

Sizes, agents, teams and metrics are read from the envs themselves (default
parameters); only the one-line reward summaries are written here.

    python benchmarks/env_table.py
"""

from __future__ import annotations

from collections import Counter

from ctde.envs import make
from ctde.envs.mpe import SCENARIOS

REWARDS = {
    "simple": "-dist² to the landmark",
    "simple_adversary": "adversary: -dist(adv, goal); good (shared): -min good dist + adv dist",
    "simple_crypto": "Eve: -‖eve - goal‖²; Alice & Bob: ‖eve - goal‖² - ‖bob - goal‖²",
    "simple_push": "good: -dist(goal); adversary: good dist - own dist",
    "simple_reference": "0.5 · mean + 0.5 · own (-dist of partner to wanted landmark)",
    "simple_speaker_listener": "shared: -dist²(listener, goal)",
    "simple_spread": "0.5 · (-Σ min dist to landmarks) + 0.5 · (-collisions)",
    "simple_tag": "predators: +10 per touch (shared); prey: -10 per touch - bound",
    "simple_world_comm": "predators: +5 per touch (shared) - 0.1 nearest prey; "
                         "prey: -5 per touch - 2 bound + 2 food - 0.05 food dist",
}


def compact(values) -> str:
    """``(16, 16, 16, 14)`` -> ``16×3, 14``."""
    counts = Counter(values)
    return ", ".join(f"{v}×{counts[v]}" if counts[v] > 1 else str(v)
                     for v in dict.fromkeys(values))


def table() -> str:
    rows = ["| env | agents | teams | obs sizes | discrete actions | continuous dims | "
            "state | steps | reward | metrics (reduction) |",
            "|---|---|---|---|---|---|---:|---:|---|---|"]
    for name in sorted(SCENARIOS):
        env = make(name)
        cont = make(name, continuous_actions=True)
        teams = ", ".join(f"{t}: {int((env.teams == i).sum())}"
                          for i, t in enumerate(env.team_names))
        agents = ", ".join(sorted(set(a.rsplit("_", 1)[0] for a in env.agent_names),
                                  key=[a.rsplit("_", 1)[0] for a in env.agent_names].index))
        metrics = ", ".join(f"`{m}` ({r})" for m, r in env.metrics.items())
        rows.append(
            f"| `{name}` | {env.num_agents} ({agents}) | {teams} | {compact(env.obs_sizes)} "
            f"| {compact(env.action_sizes)} | {compact(cont.action_sizes)} | {env.state_dim} "
            f"| {env.max_steps} "
            f"| {REWARDS[name]} | {metrics} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
