"""Summaries of the episodes that finished inside a batch of collected steps.

Algorithms return these *sums* from ``update``; the runner adds them up over a segment
and divides by the episode count, so averages are exact however episodes fall across
updates.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def episode_sums(info: dict, teams: np.ndarray, team_names, metric_names) -> dict:
    """Sums over finished episodes in ``info`` (leaves ``[T, B, ...]`` from EpisodeStats).

    Returns ``episodes`` (count), ``return`` (sum of per-agent-mean returns), one
    ``return_<team>`` per team when there are several, and one entry per task metric.
    """
    done = info["episode_done"].astype(jnp.float32)  # [T, B]
    returns = info["episode"]["return"]  # [T, B, N]
    sums = {"episodes": done.sum(), "return": (returns.mean(-1) * done).sum()}
    teams = np.asarray(teams)
    if teams.max() > 0:
        for k, team in enumerate(team_names):
            members = returns[..., teams == k].mean(-1)
            sums[f"return_{team}"] = (members * done).sum()
    for name in metric_names:
        sums[name] = (info["episode"][name] * done).sum()
    return sums
