"""Algorithm names -> modules (each with ``Config``, ``make_train`` and ``CAPABILITIES``)."""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

#: name -> (module path, one-line description)
ALGORITHMS: dict[str, tuple[str, str]] = {
    "mappo": ("ctde.algos.mappo", "PPO with a centralised value function (Yu et al. 2022)"),
    "maddpg": ("ctde.algos.maddpg", "deterministic actors, a centralised critic per agent; "
               "DDPG and per-team variants (Lowe et al. 2017)"),
}


#: Algorithms whose ``make_train`` takes ``batch_axis``: one seed's gradient batches can
#: be split over several devices (on a CPU with more cores than seeds, one run uses them all).
SPLITS_BATCHES = frozenset({"maddpg"})


def names() -> list[str]:
    return sorted(ALGORITHMS)


def get(name: str) -> ModuleType:
    """The algorithm module ``name``; a ValueError lists the valid names."""
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(name, ALGORITHMS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown algorithm {name!r}.{hint} Valid algorithms: {', '.join(names())}")
    return importlib.import_module(ALGORITHMS[name][0])
