"""The contract between an algorithm and the runner."""

from __future__ import annotations

from typing import Any, NamedTuple


class Trainer(NamedTuple):
    """What the runner needs: pure ``init``/``update``/``act`` and the sizes it logs by."""

    config: Any  # the algorithm's frozen Config
    env: Any  # the training env (EpisodeStats over AutoReset)
    init: Any  # key -> LearnerState
    update: Any  # LearnerState -> (LearnerState, metrics)
    act: Any  # (params, obs, carry, key, deterministic, avail) -> (actions, carry)
    init_carry: Any  # batch_shape -> actor carry (None: feed-forward actors)
    steps_per_update: int
