"""``make(name, **params)`` and ``names()``: the catalogue of environments.

Each environment family exposes a ``SCENARIOS`` dict mapping a registry name to a
factory ``f(**params) -> MultiAgentEnv``; the registry only merges them.
"""

from __future__ import annotations

import difflib
import inspect

from ctde.envs.core import MultiAgentEnv


def _catalogue() -> dict:
    from ctde.envs.debug import SCENARIOS as debug
    from ctde.envs.micro import SCENARIOS as micro
    from ctde.envs.mpe import SCENARIOS as mpe

    return {**mpe, **micro, **debug}


def names() -> list[str]:
    """All registered environment names, sorted."""
    return sorted(_catalogue())


def make(name: str, **params) -> MultiAgentEnv:
    """Build environment ``name`` with scenario parameters ``params``.

    ``pettingzoo:<module>[:<callable>]`` wraps an external PettingZoo ParallelEnv
    (see ``ctde.envs.external``). Raises ValueError naming the valid choices for an
    unknown name or parameter.
    """
    from ctde.envs import external

    if name.startswith(external.PREFIX):
        return external.make_external(name, **params)
    catalogue = _catalogue()
    if name not in catalogue:
        close = difflib.get_close_matches(name, catalogue, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown env {name!r}.{hint} Valid envs: {', '.join(sorted(catalogue))} "
            f"(or {external.PREFIX}<module> for a PettingZoo ParallelEnv)"
        )
    factory = catalogue[name]
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(
                f"env {name!r} has no parameter {', '.join(map(repr, unknown))}. "
                f"Valid parameters: {', '.join(accepted) or '(none)'}"
            )
    return factory(**params)


def parameters(name: str) -> dict:
    """The scenario parameters of ``name`` and their defaults."""
    factory = _catalogue()[name]
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def settings(name: str, params: dict) -> dict:
    """Every option of environment ``name`` built with ``params``, as it runs: the
    factory's defaults, ``params`` over them, and what the env derives from them
    (``MultiAgentEnv.resolved_options``: a micro rule set's defaults). A run folder keeps
    it, so a release whose defaults differ is told apart from the one that trained it."""
    from ctde.envs import external

    if name.startswith(external.PREFIX):
        return dict(params)
    return {**parameters(name), **params, **make(name, **params).resolved_options()}
