"""Scenarios as data: which units fight, where they start, how long an episode lasts.

A scenario is a frozen ``Scenario``; the built-in ones are in ``SCENARIO_DATA`` and users
add their own from YAML with ``load_scenario(path)``::

    name: 4m_vs_3z              # optional, defaults to the file name
    allies: {marine: 4}         # unit type -> count, in agent order
    enemies: {zealot: 3}
    episode_limit: 100
    map_size: [32, 32]          # optional, cells (width, height)
    ally_center: [11, 16]       # optional, defaults to 5 cells left of the map centre
    enemy_center: [21, 16]      # optional, defaults to 5 cells right of the map centre
    jitter: 0.5                 # optional, uniform start noise per unit (cells)
"""

from __future__ import annotations

import dataclasses
import os

from ctde.envs.micro.units import unit_type

Team = tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Both teams, start formation and episode limit. Agents are the allies, in order."""

    name: str
    allies: Team
    enemies: Team
    episode_limit: int
    map_size: tuple[float, float] = (32.0, 32.0)
    ally_center: tuple[float, float] | None = None
    enemy_center: tuple[float, float] | None = None
    jitter: float = 0.5

    def __post_init__(self):
        for side in ("allies", "enemies"):
            team = getattr(self, side)
            if not team:
                raise ValueError(f"scenario {self.name!r}: {side} must list at least one unit")
            for name, count in team:
                unit_type(name)  # raises on an unknown type
                if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                    raise ValueError(
                        f"scenario {self.name!r}: {side} count of {name!r} must be a "
                        f"positive integer, got {count!r}"
                    )
            if not any(unit_type(name).is_combat for name, _ in team):
                raise ValueError(f"scenario {self.name!r}: {side} need at least one unit "
                                 "that can attack (medivacs alone cannot fight)")
        if not isinstance(self.episode_limit, int) or self.episode_limit < 1:
            raise ValueError(
                f"scenario {self.name!r}: episode_limit must be a positive integer, "
                f"got {self.episode_limit!r}"
            )
        if len(self.map_size) != 2 or min(self.map_size) <= 0:
            raise ValueError(f"scenario {self.name!r}: map_size must be two positive numbers")
        if self.jitter < 0:
            raise ValueError(f"scenario {self.name!r}: jitter must be >= 0")

    @property
    def ally_types(self) -> tuple[str, ...]:
        return tuple(name for name, count in self.allies for _ in range(count))

    @property
    def enemy_types(self) -> tuple[str, ...]:
        return tuple(name for name, count in self.enemies for _ in range(count))

    @property
    def centers(self) -> tuple[tuple[float, float], tuple[float, float]]:
        w, h = self.map_size
        ally = self.ally_center or (w / 2 - 5.0, h / 2)
        enemy = self.enemy_center or (w / 2 + 5.0, h / 2)
        return tuple(map(float, ally)), tuple(map(float, enemy))


def _s(name, allies, enemies, limit, **kw) -> Scenario:
    return Scenario(name, tuple(allies.items()), tuple(enemies.items()), limit, **kw)


# COMA's StarCraft scenarios (3m, 5m, 5w, 2d_3z) and the SMAC maps used by LICA and MAPPO.
# SMAC's episode limits; the COMA maps take the limit of the nearest SMAC map.
SCENARIO_DATA: dict[str, Scenario] = {
    s.name: s
    for s in (
        _s("3m", {"marine": 3}, {"marine": 3}, 60),
        _s("5m", {"marine": 5}, {"marine": 5}, 70),
        _s("8m", {"marine": 8}, {"marine": 8}, 120),
        _s("5m_vs_6m", {"marine": 5}, {"marine": 6}, 70),
        _s("10m_vs_11m", {"marine": 10}, {"marine": 11}, 150),
        _s("5w", {"wraith": 5}, {"wraith": 5}, 70),
        _s("2d_3z", {"dragoon": 2, "zealot": 3}, {"dragoon": 2, "zealot": 3}, 120),
        _s("2s3z", {"stalker": 2, "zealot": 3}, {"stalker": 2, "zealot": 3}, 120),
        _s("3s5z", {"stalker": 3, "zealot": 5}, {"stalker": 3, "zealot": 5}, 150),
        _s("1c3s5z", {"colossus": 1, "stalker": 3, "zealot": 5},
           {"colossus": 1, "stalker": 3, "zealot": 5}, 180),
        _s("MMM", {"marauder": 2, "marine": 7, "medivac": 1},
           {"marauder": 2, "marine": 7, "medivac": 1}, 150),
        _s("3s_vs_5z", {"stalker": 3}, {"zealot": 5}, 250),
    )
}

_KEYS = {"name", "allies", "enemies", "episode_limit", "map_size", "ally_center",
         "enemy_center", "jitter"}


def _team(data, side: str, where: str) -> Team:
    """A team from ``{type: count}`` or ``[[type, count], ...]``."""
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list) and all(isinstance(x, (list, tuple)) and len(x) == 2
                                        for x in data):
        items = [tuple(x) for x in data]
    else:
        raise ValueError(
            f"{where}: {side} must be a mapping of unit type to count, e.g. {{marine: 3}}"
        )
    return tuple((str(name), count) for name, count in items)


def _pair(value, key: str, where: str):
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) for v in value)):
        raise ValueError(f"{where}: {key} must be a list of two numbers, got {value!r}")
    return tuple(float(v) for v in value)


def scenario_from_dict(data: dict, default_name: str = "custom", where: str = "scenario") \
        -> Scenario:
    """Validate a scenario description (the YAML layout above) and build it."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a scenario must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; valid keys: {sorted(_KEYS)}")
    missing = [k for k in ("allies", "enemies", "episode_limit") if k not in data]
    if missing:
        raise ValueError(f"{where}: missing required keys {missing}")
    kwargs = {}
    for key in ("ally_center", "enemy_center"):
        if key in data:
            kwargs[key] = _pair(data[key], key, where)
    if "map_size" in data:
        kwargs["map_size"] = _pair(data["map_size"], "map_size", where)
    if "jitter" in data:
        if not isinstance(data["jitter"], (int, float)):
            raise ValueError(f"{where}: jitter must be a number")
        kwargs["jitter"] = float(data["jitter"])
    try:
        return Scenario(
            name=str(data.get("name", default_name)),
            allies=_team(data["allies"], "allies", where),
            enemies=_team(data["enemies"], "enemies", where),
            episode_limit=data["episode_limit"],
            **kwargs,
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read a scenario from a YAML file; ValueError with the reason if it is malformed."""
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scenario file not found: {path}")
    with open(path) as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from None
    name = os.path.splitext(os.path.basename(path))[0]
    return scenario_from_dict(data, default_name=name, where=path)


def get_scenario(scenario: str | os.PathLike | Scenario) -> Scenario:
    """A built-in scenario by name, a YAML file path, or a ``Scenario`` as is."""
    if isinstance(scenario, Scenario):
        return scenario
    text = os.fspath(scenario)
    if text in SCENARIO_DATA:
        return SCENARIO_DATA[text]
    if text.endswith((".yaml", ".yml")) or os.path.sep in text:
        return load_scenario(text)
    import difflib

    close = difflib.get_close_matches(text, SCENARIO_DATA, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown micro scenario {text!r}.{hint} Built-in: {', '.join(SCENARIO_DATA)}; "
        "or give the path of a .yaml file"
    )
