"""StarCraft-style micromanagement simulator (no game binary needed).

``make("3m")`` and the other built-in scenario names, or ``make("micro",
scenario="path/to/scenario.yaml")`` for a scenario of your own; every ``MicroConfig``
option is a keyword parameter of each factory (``make("3m", full_observability=True)``),
``setting`` among them: ``make("3m", setting="coma")`` is the COMA paper's Brood War
setting (``ctde.envs.micro.settings``).
"""

from __future__ import annotations

import dataclasses
import inspect

from ctde.envs.micro.env import MicroConfig, MicroEnv, MicroState
from ctde.envs.micro.heuristic import heuristic_actions, scripted_actions
from ctde.envs.micro.scenarios import (
    SCENARIO_DATA,
    Scenario,
    get_scenario,
    load_scenario,
    scenario_from_dict,
)
from ctde.envs.micro.settings import SETTINGS, Setting, get_setting
from ctde.envs.micro.units import BW_UNITS, UNITS, UnitType, unit_type

_OPTIONS = [
    inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
    for f in dataclasses.fields(MicroConfig)
]


def _factory(name: str):
    def factory(**options) -> MicroEnv:
        return MicroEnv(name, MicroConfig(**options))

    factory.__signature__ = inspect.Signature(_OPTIONS)
    factory.__name__ = f"make_{name}"
    factory.__doc__ = f"The {name!r} micro scenario; options as in MicroConfig."
    return factory


def make_micro(scenario: str | Scenario = "3m", **options) -> MicroEnv:
    """Any scenario: a built-in name, a YAML file path or a ``Scenario``."""
    return MicroEnv(get_scenario(scenario), MicroConfig(**options))


make_micro.__signature__ = inspect.Signature(
    [inspect.Parameter("scenario", inspect.Parameter.KEYWORD_ONLY, default="3m"), *_OPTIONS]
)

SCENARIOS: dict = {"micro": make_micro, **{name: _factory(name) for name in SCENARIO_DATA}}

__all__ = [
    "BW_UNITS",
    "SCENARIOS",
    "SCENARIO_DATA",
    "SETTINGS",
    "UNITS",
    "MicroConfig",
    "MicroEnv",
    "MicroState",
    "Scenario",
    "Setting",
    "UnitType",
    "get_scenario",
    "get_setting",
    "heuristic_actions",
    "load_scenario",
    "make_micro",
    "scenario_from_dict",
    "scripted_actions",
    "unit_type",
]
