"""Rule sets of the micro simulator: which game the battle follows, as data.

A ``Setting`` is chosen by the env parameter ``setting`` and fixes, at construction, the
unit table, the clock, what an agent observes, which attack orders it may give and what
they do, and the reward. The step function reads only the arrays built from it; nothing
in it asks which setting it runs.

- ``smac``: the StarCraft Multi-Agent Challenge (Samvelyan et al., 2019), the default.
- ``coma``: the decentralised StarCraft micromanagement of COMA (Foerster et al., 2018,
  "Counterfactual Multi-Agent Policy Gradients", Sec. 5): Brood War units, a local field
  of view as wide as the ranged units' weapon range, attack orders never masked (one on a
  dead or out-of-range enemy does nothing), and the paper's damage-based reward.

The enemy is a scripted built-in AI in both and keeps SMAC's order rules (attack orders
for living targets, walking into weapon range). Its default script is the setting's:
``attack_move`` in ``smac`` (SC2's automatic targeting, the AI SMAC plays against) and
``nearest`` in ``coma`` (Brood War's AI targets by other rules, which we do not model).
docs/micro.md describes both settings feature by feature.
"""

from __future__ import annotations

import dataclasses

from ctde.envs.micro.units import (
    BW_FRAMES_PER_SECOND,
    BW_UNITS,
    LOOPS_PER_SECOND,
    UNITS,
    UnitType,
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One rule set. Options of ``MicroConfig`` left at ``None`` take these defaults."""

    name: str
    units: dict[str, UnitType]
    maps: tuple[str, ...] | None  # the scenarios it is defined for; None: any
    frames_per_second: float  # game clock: SC2 loops at "Faster", BW frames at "Fastest"
    step_mul: int  # default frames per env step
    # Field of view: a unit is seen while its distance is below ``sight_range``; None:
    # the longest weapon range among the allies' ranged units (range >= 1 cell). The
    # distance is taken edge to edge (``fov_edge``, as weapon ranges are) or centre to
    # centre (SMAC).
    sight_range: float | None
    fov_edge: bool
    # Feature columns, in order, per observation block and per global-state row.
    obs_enemy: tuple[str, ...]
    obs_ally: tuple[str, ...]
    obs_own: tuple[str, ...]
    obs_move: bool  # the four move-availability bits lead the observation
    state_ally: tuple[str, ...]
    state_enemy: tuple[str, ...]
    state_xy_scale: float  # x, y relative to the map centre, divided by this x map size
    # The agents' attack orders: masked by range and death (SMAC) or always available,
    # carried out only on a living target already in weapon range, without chasing (COMA).
    mask_attacks: bool
    chase: bool
    # Reward coefficients (see MicroEnv._reward).
    reward_only_positive: bool
    reward_scale: bool
    ally_death_penalty: bool  # own deaths cost reward_death_value x reward_negative_scale
    win_health: float  # on a win, plus this x the allies' remaining health (not shields)
    damage_floor: float  # per unit and step, health+shield lost is clipped below this
    state_last_action: bool
    enemy_policy: str  # scripted enemy: nearest, focus, attack_move, stop [smac: attack_move]

    def check_scenario(self, name: str) -> None:
        if self.maps is not None and name not in self.maps:
            raise ValueError(
                f"setting {self.name!r} is defined for the maps {', '.join(self.maps)}, "
                f"not {name!r}"
            )


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "smac", UNITS, maps=None, frames_per_second=LOOPS_PER_SECOND, step_mul=8,
            sight_range=9.0, fov_edge=False,
            obs_enemy=("attackable", "distance", "dx", "dy", "health", "shield", "type"),
            obs_ally=("visible", "distance", "dx", "dy", "health", "shield", "type",
                      "last_action"),
            obs_own=("health", "shield", "type"), obs_move=True,
            state_ally=("health", "cooldown", "x", "y", "shield", "type"),
            state_enemy=("health", "x", "y", "shield", "type"), state_xy_scale=1.0,
            mask_attacks=True, chase=True,
            reward_only_positive=True, reward_scale=True, ally_death_penalty=True,
            win_health=0.0, damage_floor=float("-inf"), state_last_action=True,
            enemy_policy="attack_move",
        ),
        # The paper: local observations hold "distance, relative x, relative y, unit type
        # and shield" of each unit in view (not health, not the agent's own health); the
        # global state holds the same for all units, without distance, positions relative
        # to the map centre, "also health points and cooldown for all agents" (allies).
        # Reward: damage dealt minus half the damage taken, +10 per kill, 200 + the team's
        # remaining health on a win; unnormalised. Frame skip 7 (appendix B).
        Setting(
            "coma", BW_UNITS, maps=("3m", "5m", "5w", "2d_3z"),
            frames_per_second=BW_FRAMES_PER_SECOND, step_mul=7, sight_range=None,
            fov_edge=True,
            obs_enemy=("distance", "dx", "dy", "shield", "type"),
            obs_ally=("distance", "dx", "dy", "shield", "type", "last_action"),
            obs_own=("shield", "type"), obs_move=False,
            state_ally=("health", "cooldown", "x", "y", "shield", "type"),
            state_enemy=("x", "y", "shield", "type"), state_xy_scale=0.5,
            mask_attacks=False, chase=False,
            reward_only_positive=False, reward_scale=False, ally_death_penalty=False,
            win_health=1.0, damage_floor=0.0, state_last_action=False,
            enemy_policy="nearest",
        ),
    )
}


def get_setting(name: str) -> Setting:
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}: use one of {', '.join(SETTINGS)}")
    return SETTINGS[name]
