"""The unit table: every unit type is one frozen row of parameters.

Two tables, one per rule set (``ctde.envs.micro.settings``):

- ``UNITS`` (setting ``smac``): StarCraft II (Legacy of the Void) where the type exists
  there and StarCraft: Brood War for the two COMA units that StarCraft II dropped (wraith,
  dragoon), under SC2's damage rules;
- ``BW_UNITS`` (setting ``coma``): the four Brood War units of the COMA paper's maps
  (marine, zealot, dragoon, wraith) under Brood War's damage rules.

All times are real seconds (SC2 at "Faster", 22.4 game loops per second, what Liquipedia
lists; Brood War at "Fastest", 23.81 frames per second), distances are map cells (Brood
War: 32 pixels per cell). docs/micro.md gives the source of every value.
"""

from __future__ import annotations

import dataclasses
import difflib

#: Attributes that bonus damage and healing rules refer to.
ATTRIBUTES: tuple[str, ...] = ("light", "armored", "biological", "mechanical", "massive")

#: Game loops per real second at the "Faster" speed; SMAC's step_mul counts these.
LOOPS_PER_SECOND = 22.4
#: Brood War frames per real second at "Fastest" (42 ms a frame, Liquipedia "Game Speed").
BW_FRAMES_PER_SECOND = 23.81


@dataclasses.dataclass(frozen=True)
class UnitType:
    """One unit type. ``damage``/``bonus`` are per hit; an attack lands ``hits`` hits."""

    name: str
    game: str  # "sc2" or "bw": where the numbers come from
    health: float
    shield: float
    armour: float  # subtracted from every hit that reaches health (not shields)
    damage: float  # per hit; 0 for units without a weapon
    hits: int  # hits per attack (zealot and colossus strike twice)
    bonus: float  # extra damage per hit against units with attribute ``bonus_vs``
    bonus_vs: str | None
    range: float  # weapon range, edge to edge as in SC2
    cooldown: float  # seconds between attacks
    speed: float  # cells per second
    sight: float
    radius: float
    air: bool
    targets_ground: bool
    targets_air: bool
    attributes: tuple[str, ...]
    collides: bool = True  # ground units push each other apart; air units never do
    # Each attack's cooldown is lengthened by a uniform random delay in this interval (s).
    cooldown_delay: tuple[float, float] = (0.0, 0.0)
    shield_regen: float = 0.0  # shield points per second, once regeneration starts
    shield_delay: float = 0.0  # seconds without damage before shields regenerate
    heal_rate: float = 0.0  # health per second given to one target (medivac)
    heal_range: float = 0.0
    heal_cost: float = 0.0  # energy per health point healed
    energy: float = 0.0  # at spawn
    energy_max: float = 0.0
    energy_regen: float = 0.0  # per second
    # Brood War size rule: what reaches health (after armour) is multiplied by ``scale``
    # against units with attribute ``scale_vs`` (explosive: 0.5 against small units);
    # shields take the full damage.
    scale: float = 1.0
    scale_vs: str | None = None

    @property
    def is_healer(self) -> bool:
        return self.heal_rate > 0

    @property
    def is_combat(self) -> bool:
        """Can it deal damage? A side with no combat unit left has lost (as in SMAC)."""
        return self.damage > 0


# "Faster" runs 1.4 game seconds per real second. SC2 adds a random delay of -0.0625 to
# +0.125 game seconds to every attack; Brood War -1 to +2 frames.
_SC2_DELAY = (-0.0625 / 1.4, 0.125 / 1.4)
_BW_FPS = BW_FRAMES_PER_SECOND
_BW_DELAY = (-1 / _BW_FPS, 2 / _BW_FPS)
# Protoss plasma shields in SC2: regenerate 2 points per game second after 10 game seconds
# without damage. Brood War shields regenerate 7/256 points every frame, with no delay.
_SC2_SHIELD = dict(shield_regen=2.0 * 1.4, shield_delay=10.0 / 1.4)
_BW_SHIELD = dict(shield_regen=7 / 256 * _BW_FPS, shield_delay=0.0)
_BIO_LIGHT = ("light", "biological")


def _bw_speed(pixels_per_frame: float) -> float:
    return pixels_per_frame * _BW_FPS / 32.0


UNITS: dict[str, UnitType] = {
    u.name: u
    for u in (
        UnitType("marine", "sc2", cooldown_delay=_SC2_DELAY,
                 health=45, shield=0, armour=0, damage=6, hits=1, bonus=0, bonus_vs=None,
                 range=5, cooldown=0.61, speed=3.15, sight=9, radius=0.375,
                 air=False, targets_ground=True, targets_air=True, attributes=_BIO_LIGHT),
        UnitType("marauder", "sc2", cooldown_delay=_SC2_DELAY,
                 health=125, shield=0, armour=1, damage=10, hits=1, bonus=10,
                 bonus_vs="armored", range=6, cooldown=1.07, speed=3.15, sight=10,
                 radius=0.5625, air=False, targets_ground=True, targets_air=False,
                 attributes=("armored", "biological")),
        UnitType("medivac", "sc2", cooldown_delay=_SC2_DELAY,
                 health=150, shield=0, armour=1, damage=0, hits=0, bonus=0,
                 bonus_vs=None, range=0, cooldown=1.0, speed=3.5, sight=11, radius=0.75,
                 air=True, targets_ground=False, targets_air=False,
                 attributes=("armored", "mechanical"), collides=False, heal_rate=12.6,
                 heal_range=4, heal_cost=1 / 3, energy=50, energy_max=200,
                 energy_regen=0.7875),
        UnitType("zealot", "sc2", cooldown_delay=_SC2_DELAY,
                 health=100, shield=50, armour=1, damage=8, hits=2, bonus=0,
                 bonus_vs=None, range=0.1, cooldown=0.86, speed=3.15, sight=9, radius=0.5,
                 air=False, targets_ground=True, targets_air=False, attributes=_BIO_LIGHT,
                 **_SC2_SHIELD),
        UnitType("stalker", "sc2", cooldown_delay=_SC2_DELAY,
                 health=80, shield=80, armour=1, damage=13, hits=1, bonus=5,
                 bonus_vs="armored", range=6, cooldown=1.34, speed=4.13, sight=10,
                 radius=0.625, air=False, targets_ground=True, targets_air=True,
                 attributes=("armored", "mechanical"), **_SC2_SHIELD),
        # Small units walk under a colossus, so it takes no part in ground collisions.
        UnitType("colossus", "sc2", cooldown_delay=_SC2_DELAY,
                 health=200, shield=150, armour=1, damage=10, hits=2,
                 bonus=5, bonus_vs="light", range=7, cooldown=1.07, speed=3.15, sight=10,
                 radius=1.0, air=False, targets_ground=True, targets_air=False,
                 attributes=("armored", "mechanical", "massive"), collides=False,
                 **_SC2_SHIELD),
        UnitType("zergling", "sc2", cooldown_delay=_SC2_DELAY,
                 health=35, shield=0, armour=0, damage=5, hits=1, bonus=0,
                 bonus_vs=None, range=0.1, cooldown=0.497, speed=4.13, sight=8,
                 radius=0.375, air=False, targets_ground=True, targets_air=False,
                 attributes=_BIO_LIGHT),
        UnitType("hydralisk", "sc2", cooldown_delay=_SC2_DELAY,
                 health=90, shield=0, armour=0, damage=12, hits=1,
                 bonus=0, bonus_vs=None, range=5, cooldown=0.59, speed=3.15, sight=9,
                 radius=0.625, air=False, targets_ground=True, targets_air=True,
                 attributes=_BIO_LIGHT),
        # Brood War explosive damage: 20 against large (here: armored) units, 10 against small.
        UnitType("dragoon", "bw", cooldown_delay=_BW_DELAY,
                 health=100, shield=80, armour=1, damage=10, hits=1, bonus=10,
                 bonus_vs="armored", range=4, cooldown=30 / _BW_FPS, speed=_bw_speed(5.25),
                 sight=8, radius=0.5, air=False, targets_ground=True, targets_air=True,
                 attributes=("armored", "mechanical"), **_BW_SHIELD),
        # One weapon: the wraith's anti-air Gemini missiles (20 explosive); its weaker
        # anti-ground burst lasers are not modelled.
        UnitType("wraith", "bw", cooldown_delay=_BW_DELAY,
                 health=120, shield=0, armour=0, damage=10, hits=1, bonus=10,
                 bonus_vs="armored", range=5, cooldown=22 / _BW_FPS, speed=_bw_speed(6.67),
                 sight=7, radius=0.55, air=True, targets_ground=True, targets_air=True,
                 attributes=("armored", "mechanical"), collides=False),
    )
}


def _bw_cells(pixels: float) -> float:
    return pixels / 32.0


def _bw_radius(width: int, height: int) -> float:
    """Half the mean side of a Brood War unit's bounding box (pixels), in cells."""
    return (width + height) / 4 / 32.0


# Brood War as played in the COMA paper (no upgrades). Sizes map to attributes: small ->
# "light", large -> "armored" (no medium unit here). Explosive damage (dragoon, wraith
# missiles) deals 50% to small units after armour; normal damage 100%.
_SMALL_BIO = ("light", "biological")
_LARGE_MECH = ("armored", "mechanical")
BW_UNITS: dict[str, UnitType] = {
    u.name: u
    for u in (
        UnitType("marine", "bw", cooldown_delay=_BW_DELAY,
                 health=40, shield=0, armour=0, damage=6, hits=1, bonus=0, bonus_vs=None,
                 range=_bw_cells(128), cooldown=15 / _BW_FPS, speed=_bw_speed(4.0), sight=7,
                 radius=_bw_radius(17, 20), air=False, targets_ground=True,
                 targets_air=True, attributes=_SMALL_BIO),
        UnitType("zealot", "bw", cooldown_delay=_BW_DELAY,
                 health=100, shield=60, armour=1, damage=8, hits=2, bonus=0, bonus_vs=None,
                 range=_bw_cells(15), cooldown=22 / _BW_FPS, speed=_bw_speed(4.0), sight=7,
                 radius=_bw_radius(23, 19), air=False, targets_ground=True,
                 targets_air=False, attributes=_SMALL_BIO, **_BW_SHIELD),
        UnitType("dragoon", "bw", cooldown_delay=_BW_DELAY,
                 health=100, shield=80, armour=1, damage=20, hits=1, bonus=0, bonus_vs=None,
                 scale=0.5, scale_vs="light",
                 range=_bw_cells(128), cooldown=30 / _BW_FPS, speed=_bw_speed(5.25), sight=8,
                 radius=_bw_radius(32, 32), air=False, targets_ground=True,
                 targets_air=True, attributes=_LARGE_MECH, **_BW_SHIELD),
        # One weapon, as in UNITS: the anti-air Gemini missiles (the only targets in 5w
        # are wraiths); the anti-ground burst lasers (8 normal, 30 frames) are left out.
        UnitType("wraith", "bw", cooldown_delay=_BW_DELAY,
                 health=120, shield=0, armour=0, damage=20, hits=1, bonus=0, bonus_vs=None,
                 scale=0.5, scale_vs="light",
                 range=_bw_cells(160), cooldown=22 / _BW_FPS, speed=_bw_speed(6.67), sight=7,
                 radius=_bw_radius(38, 30), air=True, targets_ground=True,
                 targets_air=True, attributes=_LARGE_MECH, collides=False),
    )
}


def unit_type(name: str, table: dict[str, UnitType] | None = None) -> UnitType:
    """The unit type called ``name`` in ``table`` (default ``UNITS``); ValueError naming
    the valid types otherwise."""
    table = UNITS if table is None else table
    if name not in table:
        close = difflib.get_close_matches(str(name), table, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown unit type {name!r}.{hint} Valid types: {', '.join(table)}")
    return table[name]
