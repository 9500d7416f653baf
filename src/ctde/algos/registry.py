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
    "coma": ("ctde.algos.coma", "GRU actors, a centralised Q critic, the counterfactual baseline "
             "(Foerster et al. 2018)"),
    "central_qv": ("ctde.algos.coma", "COMA's baseline: centralised Q and V, advantage Q - V"),
    "central_v": ("ctde.algos.coma", "COMA's baseline: centralised V, advantage the TD error"),
    "iac_q": ("ctde.algos.coma", "COMA's baseline: independent actor-critic, Q of own history"),
    "iac_v": ("ctde.algos.coma", "COMA's baseline: independent actor-critic, V of own history"),
    "lica": ("ctde.algos.lica", "GRU actors, a hypernetwork mixing critic of all policies, adaptive "
             "entropy (Zhou et al. 2020)"),
}


#: Algorithms whose ``make_train`` takes ``batch_axis``: one seed's gradient batches can
#: be split over several devices (on a CPU with more cores than seeds, one run uses them all).
SPLITS_BATCHES = frozenset({"maddpg"})


def names() -> list[str]:
    return sorted(ALGORITHMS)


def preset(name: str) -> dict:
    """The settings that make ``name`` from its module (``iac_q`` is COMA's machinery with
    ``critic="iac_q"``): the module's ``PRESETS[name]``, or none."""
    return dict(getattr(get(name), "PRESETS", {}).get(name, {}))


def supporting(capability: str) -> list[str]:
    """The algorithms whose ``CAPABILITIES`` grant ``capability``."""
    return [name for name in names() if getattr(get(name), "CAPABILITIES", {}).get(capability, True)]


def check_env(name: str, env) -> None:
    """Refuse an env the algorithm cannot train on, before any work: one line naming the
    algorithms that can."""
    capabilities = getattr(get(name), "CAPABILITIES", {})
    kind = "discrete_actions" if env.discrete else "continuous_actions"
    if not capabilities.get(kind, True):
        raise ValueError(f"{name} does not support {kind.replace('_', ' ')} ({env.name}); "
                         f"algorithms that do: {', '.join(supporting(kind))}")
    if capabilities.get("cooperative_only") and env.num_teams > 1:
        teams = ", ".join(env.team_names)
        raise ValueError(f"{name} needs a cooperative env with one team ({env.name} has teams "
                         f"{teams}); algorithms for competitive envs: "
                         f"{', '.join(supporting('competitive'))}")


def get(name: str) -> ModuleType:
    """The algorithm module ``name``; a ValueError lists the valid names."""
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(name, ALGORITHMS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown algorithm {name!r}.{hint} Valid algorithms: {', '.join(names())}")
    return importlib.import_module(ALGORITHMS[name][0])
