"""``MicroEnv``: StarCraft-style micromanagement in pure JAX, with SMAC's interface.

Units are rows of arrays (allies first, then enemies: ``U = N + M``); every rule below
is written over those axes, so one env step is a fixed amount of array work that jit and
vmap handle without Python loops.

One env step issues one order per unit (the allies' actions, the scripted enemy's
actions) and then simulates ``substeps`` equal sub-steps covering ``step_mul`` game loops
(SMAC: 8 loops at 22.4 loops per second). In each sub-step, simultaneously for all units:

1. weapon cooldowns tick down;
2. each unit picks its target: the ordered one, or (idle after ``stop`` or after its target
   died) the nearest enemy in weapon range - a medivac the nearest damaged biological ally
   in heal range;
3. units whose target is in range and whose weapon is ready fire; medivacs heal;
4. damage lands: shields absorb first (no armour), the rest loses armour per hit (at least
   0.5 per hit, as in SC2) and comes off health; healing adds health for energy;
5. units ordered to move, or chasing a target out of range, move at their speed;
   overlapping ground units push each other apart (air units and colossi never collide);
6. shields regenerate after their delay; medivac energy regenerates.

Observations, state, actions, available actions and rewards follow SMAC
(``smac/env/starcraft2/starcraft2.py``); docs/micro.md lists every feature.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ctde.envs.core import Discrete, MultiAgentEnv
from ctde.envs.micro.common import (  # noqa: F401  (row_sum, col_sum, uniform: re-exported)
    MOVE_DIRECTIONS,
    MOVE_NORTH,
    N_FIXED_ACTIONS,
    NOOP,
    STOP,
    MicroState,
    col_sum,
    pairwise,
    row_sum,
    uniform,
)
from ctde.envs.micro.heuristic import scripted_actions
from ctde.envs.micro.render import render_state
from ctde.envs.micro.scenarios import Scenario, get_scenario
from ctde.envs.micro.settings import get_setting
from ctde.envs.micro.units import ATTRIBUTES, UnitType, unit_type

Variant = Literal["EP", "CL", "AS", "FP"]
ENEMY_POLICIES = ("nearest", "focus", "attack_move", "stop")


@dataclasses.dataclass(frozen=True)
class MicroConfig:
    """Options of a micro environment (SMAC's names and defaults where SMAC has them).

    Options whose default is ``None`` take the value of the chosen ``setting``
    (``ctde.envs.micro.settings``; SMAC's value in brackets).

    Attributes:
        setting: the rule set: "smac" (default) or "coma" (the COMA paper's Brood War
            setting, for 3m, 5m, 5w and 2d_3z): unit table, clock, field of view,
            observation and state features, attack-order rules and reward.
        full_observability: agents see every living unit, not only those in sight range
            (COMA's second setting); features keep their sight-range scaling.
        reward_sparse: +1 on a win, -1 on a loss, 0 otherwise.
        reward_only_positive: reward = |damage dealt + kill bonuses| [True]; if False,
            damage (and, in smac, deaths) suffered are subtracted (times
            reward_negative_scale).
        reward_death_value, reward_win, reward_defeat, reward_negative_scale: as SMAC.
        reward_scale: divide the shaped reward by ``max_reward / reward_scale_rate`` so the
            best possible return (all enemy health and shields, kills, win) is
            ``reward_scale_rate`` (20) [True; coma: False, the paper's raw reward].
        obs_last_action: add each visible ally's last action to observations.
        state_last_action: add all agents' last actions to the global state [True].
        state_timestep: add the fraction of the episode elapsed to the global state.
        enemy_policy: the scripted enemy [smac: "attack_move"; coma: "nearest"]:
            "nearest" (attack the nearest enemy within
            shoot range, else step along the axis toward the nearest), "focus" (attack the
            lowest health+shield in weapon range), "attack_move" (SC2's attack-move:
            keep a target while it lives within scan range, else acquire one there,
            threats first and then the closest, else walk straight at the nearest enemy)
            or "stop" (hold position, firing only at what is in weapon range).
        enemy_noise: per unit and step, probability of a uniformly random available action
            instead of the scripted one (aim noise).
        enemy_reaction: per unit and step, probability of repeating the previous action
            (if still available) instead of re-deciding (reaction delay).
        random_delay: add the game's small random delay to each attack's cooldown (SC2:
            -0.0625 to +0.125 game seconds); without it mirror fights run in lock-step.
        step_mul: game frames per env step [8 SC2 loops at 22.4 per second; coma: 7
            Brood War frames at 23.81 per second].
        substeps: simulation sub-steps per env step.
        move_amount: a move order targets a point this far away (cells).
        sight_range: observation radius [9 for every unit, centre to centre; coma: the
            longest weapon range of the allies' ranged units, edge to edge].
        shoot_range: attack/heal orders are available for targets this close (SMAC: 6);
            a unit ordered to attack walks until the target is in its weapon range.
        episode_limit: overrides the scenario's limit (steps) when set.
    """

    setting: str = "smac"
    full_observability: bool = False
    reward_sparse: bool = False
    reward_only_positive: bool | None = None
    reward_death_value: float = 10.0
    reward_win: float = 200.0
    reward_defeat: float = 0.0
    reward_negative_scale: float = 0.5
    reward_scale: bool | None = None
    reward_scale_rate: float = 20.0
    obs_last_action: bool = False
    state_last_action: bool | None = None
    state_timestep: bool = False
    enemy_policy: str | None = None
    enemy_noise: float = 0.0
    enemy_reaction: float = 0.0
    random_delay: bool = True
    step_mul: int | None = None
    substeps: int = 8
    move_amount: float = 2.0
    sight_range: float | None = None
    shoot_range: float = 6.0
    episode_limit: int | None = None

    def __post_init__(self):
        get_setting(self.setting)  # raises on an unknown name
        if self.enemy_policy is not None and self.enemy_policy not in ENEMY_POLICIES:
            raise ValueError(f"enemy_policy must be one of {', '.join(ENEMY_POLICIES)}, "
                             f"got {self.enemy_policy!r}")
        for name in ("enemy_noise", "enemy_reaction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        for name in ("step_mul", "substeps"):
            value = getattr(self, name)
            if name == "step_mul" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.episode_limit is not None and (
            not isinstance(self.episode_limit, int) or self.episode_limit < 1
        ):
            raise ValueError(
                f"episode_limit must be a positive integer, got {self.episode_limit!r}"
            )
        for name in ("move_amount", "sight_range", "shoot_range", "reward_scale_rate"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


class Orders(NamedTuple):
    """What every unit does during the sub-steps of one env step."""

    stop: jax.Array  # [U] bool: hold, fire at whatever comes in range
    move: jax.Array  # [U] bool: walk toward ``goal``
    target: jax.Array  # [U] bool: attack (or heal) ``target_index``
    target_index: jax.Array  # [U] int
    target_mask: jax.Array  # [U, U] bool one-hot of ``target_index`` (rows without: zero)
    goal: jax.Array  # [U, 2]


class PairConstants(NamedTuple):
    """Unit-pair constants for the sub-step (numpy)."""

    index: np.ndarray  # [U] int32
    radius_sum: np.ndarray  # [U, U]
    collide: np.ndarray  # [U, U] both collide, i != j
    tie: np.ndarray  # [U, U] x-direction separating coincident units (y: 0)
    tie_break: np.ndarray  # [U] tiny offsets that make nearest-target choices unique


@struct.dataclass
class UnitParams:
    """Per-unit constants of a scenario: ``[U]`` or ``[U, U]`` (attacker x target)."""

    team: np.ndarray
    health_max: np.ndarray
    shield_max: np.ndarray
    radius: np.ndarray
    speed: np.ndarray
    reach: np.ndarray  # weapon range, or heal range for a medivac
    cooldown: np.ndarray
    delay_low: np.ndarray  # random delay added to each cooldown: [low, high) seconds
    delay_high: np.ndarray
    air: np.ndarray
    collides: np.ndarray
    is_combat: np.ndarray
    is_healer: np.ndarray
    heal_rate: np.ndarray
    heal_cost: np.ndarray
    energy0: np.ndarray
    energy_max: np.ndarray
    energy_regen: np.ndarray
    shield_regen: np.ndarray
    shield_delay: np.ndarray
    can_attack: np.ndarray  # [U, U]
    can_heal: np.ndarray  # [U, U]
    raw_damage: np.ndarray  # [U, U] damage per attack before shields/armour
    armoured_damage: np.ndarray  # [U, U] damage per attack to health after armour
    target_select: np.ndarray  # [U, K, U] 1.0 where action 6+k of unit u names unit v
    type_onehot: np.ndarray  # [U, type_bits]


def _unit_params(rows: list[UnitType], n_allies: int, action_targets: int,
                 table: dict[str, UnitType]) -> UnitParams:
    types = [r.name for r in rows]
    u = len(rows)
    team = np.array([0] * n_allies + [1] * (u - n_allies), np.int32)
    col = lambda name, dtype=np.float32: np.array([getattr(r, name) for r in rows], dtype)  # noqa: E731
    attrs = np.array([[a in r.attributes for a in ATTRIBUTES] for r in rows], bool)
    air = col("air", bool)
    is_healer = np.array([r.is_healer for r in rows])
    is_combat = np.array([r.is_combat for r in rows])

    opponents = team[:, None] != team[None, :]
    reachable = np.where(air[None, :], col("targets_air", bool)[:, None],
                         col("targets_ground", bool)[:, None])
    can_attack = opponents & reachable & is_combat[:, None]
    bio = attrs[:, ATTRIBUTES.index("biological")]
    can_heal = ~opponents & is_healer[:, None] & bio[None, :] & ~np.eye(u, dtype=bool)

    bonus_hit = np.array([
        [r.bonus if r.bonus_vs and attrs[t, ATTRIBUTES.index(r.bonus_vs)] else 0.0
         for t in range(u)] for r in rows
    ], np.float32)
    per_hit = col("damage")[:, None] + bonus_hit
    hits = col("hits")[:, None]
    raw = np.where(can_attack, hits * per_hit, 0.0).astype(np.float32)
    # Brood War's size rule scales what passes armour (1.0 for SC2 units: no change).
    scale = np.array([
        [r.scale if r.scale_vs and attrs[t, ATTRIBUTES.index(r.scale_vs)] else 1.0
         for t in range(u)] for r in rows
    ], np.float32)
    after_armour = np.maximum((per_hit - col("armour")[None, :]) * scale, 0.5)
    armoured = np.where(can_attack, hits * after_armour, 0.0).astype(np.float32)

    # Action 6+k of a unit names unit k of the other side (own side for a medivac).
    n_side = np.array([n_allies, u - n_allies])
    offset = np.array([0, n_allies])
    side = np.where(is_healer, team, 1 - team)
    k = np.arange(action_targets)[None, :]
    target_index = offset[side][:, None] + np.minimum(k, n_side[side][:, None] - 1)
    usable = np.where(is_healer[:, None], can_heal, can_attack)
    target_ok = (k < n_side[side][:, None]) & np.take_along_axis(usable, target_index, 1)
    target_select = target_ok[:, :, None] & (target_index[:, :, None] == np.arange(u))

    # SMAC's unit-type one-hot, only where a team mixes types (else the side implies it).
    names = [n for n in table if n in set(types)]  # canonical order of the unit table
    mixed = len(set(types[:n_allies])) > 1 or len(set(types[n_allies:])) > 1
    type_bits = len(names) if mixed else 0
    type_onehot = np.zeros((u, type_bits), np.float32)
    if type_bits:
        type_onehot[np.arange(u), [names.index(t) for t in types]] = 1.0

    return UnitParams(
        team=team, health_max=col("health"), shield_max=col("shield"), radius=col("radius"),
        speed=col("speed"),
        reach=np.where(is_healer, col("heal_range"), col("range")).astype(np.float32),
        cooldown=col("cooldown"),
        delay_low=np.array([r.cooldown_delay[0] for r in rows], np.float32),
        delay_high=np.array([r.cooldown_delay[1] for r in rows], np.float32),
        air=air, collides=col("collides", bool) & ~air,
        is_combat=is_combat, is_healer=is_healer, heal_rate=col("heal_rate"),
        heal_cost=col("heal_cost"), energy0=col("energy"), energy_max=col("energy_max"),
        energy_regen=col("energy_regen"), shield_regen=col("shield_regen"),
        shield_delay=col("shield_delay"), can_attack=can_attack, can_heal=can_heal,
        raw_damage=raw, armoured_damage=armoured,
        target_select=target_select.astype(np.float32),
        type_onehot=type_onehot,
    )


def _formation(rows: list[UnitType], center, facing: float, jitter_room: float) -> np.ndarray:
    """Start positions of one team: columns of up to 5 units, facing the other team."""
    n = len(rows)
    spacing = 2 * max(r.radius for r in rows) + 0.4 + jitter_room
    n_cols = -(-n // 5)
    per_col = -(-n // n_cols)
    # Melee in front, longer range behind, medivacs last.
    order = sorted(range(n), key=lambda i: rows[i].range if rows[i].is_combat else np.inf)
    pos = np.zeros((n, 2), np.float32)
    for slot, i in enumerate(order):
        c, r = divmod(slot, per_col)
        in_col = min(per_col, n - c * per_col)
        pos[i, 0] = center[0] + facing * ((n_cols - 1) / 2 - c) * spacing
        pos[i, 1] = center[1] + (r - (in_col - 1) / 2) * spacing
    return pos


class MicroEnv(MultiAgentEnv):
    """A SMAC-like micromanagement battle; the allies are the agents.

    Also provides ``agent_state(state, variant)`` (MAPPO's EP/CL/AS/FP critic inputs),
    ``render(state)`` and the scripted policies in ``ctde.envs.micro.heuristic``.
    """

    team_names = ("allies",)
    metrics = {"won": "last", "dead_allies": "last", "dead_enemies": "last"}

    def __init__(self, scenario: str | Scenario = "3m", config: MicroConfig | None = None):
        self.scenario = get_scenario(scenario)
        self.config = cfg = config if config is not None else MicroConfig()
        self.setting = st = get_setting(cfg.setting)
        sc = self.scenario
        st.check_scenario(sc.name)
        self.name = sc.name
        self.ally_types = list(sc.ally_types)
        self.enemy_types = list(sc.enemy_types)
        self.unit_types = self.ally_types + self.enemy_types
        self.unit_kinds = [unit_type(t, st.units) for t in self.unit_types]  # [U] UnitType
        n, m = len(self.ally_types), len(self.enemy_types)
        self.num_agents, self.num_enemies, self.num_units = n, m, n + m
        healer = [k.is_healer for k in self.unit_kinds]
        # SMAC: A = 6 + n_enemies; a medivac's heal targets are allies, so take the max.
        self.n_actions = N_FIXED_ACTIONS + max(m, n if any(healer[:n]) else 0)
        enemy_actions = N_FIXED_ACTIONS + max(n, m if any(healer[n:]) else 0)
        self._a_max = max(self.n_actions, enemy_actions)
        # numpy for host-side use (layout, rendering), jnp for traced indexing.
        self.unit_table = _unit_params(self.unit_kinds, n, self._a_max - N_FIXED_ACTIONS,
                                       st.units)
        self.params = jax.tree.map(jnp.asarray, self.unit_table)
        t = self.unit_table
        u = self.num_units

        # Options left to the setting.
        pick = lambda value, default: default if value is None else value  # noqa: E731
        self.step_mul = pick(cfg.step_mul, st.step_mul)
        self.reward_only_positive = pick(cfg.reward_only_positive, st.reward_only_positive)
        self.reward_scale = pick(cfg.reward_scale, st.reward_scale)
        self.state_last_action = pick(cfg.state_last_action, st.state_last_action)
        self.enemy_policy = pick(cfg.enemy_policy, st.enemy_policy)
        ranged = [k.range for k in self.unit_kinds[:n] if k.is_combat and k.range >= 1.0]
        self.sight_range = float(pick(cfg.sight_range, st.sight_range or max(ranged, default=9.0)))

        self.max_steps = cfg.episode_limit or sc.episode_limit
        self.map_size = np.asarray(sc.map_size, np.float32)
        ally_c, enemy_c = sc.centers
        room = min(sc.jitter, 1.0)
        self._start_pos = np.concatenate([
            _formation(self.unit_kinds[:n], ally_c, +1.0, room),
            _formation(self.unit_kinds[n:], enemy_c, -1.0, room),
        ])
        self._dt = self.step_mul / st.frames_per_second / cfg.substeps
        # Which optional rules this scenario needs (static: decided when tracing).
        self._features = (bool(np.any(t.is_healer)), bool(np.any(t.shield_max > 0)),
                          bool(np.sum(t.collides) > 1))
        index = np.arange(u, dtype=np.int32)
        self._pairs = PairConstants(
            index=index,
            radius_sum=(t.radius[:, None] + t.radius[None, :]).astype(np.float32),
            collide=t.collides[:, None] & t.collides[None, :] & ~np.eye(u, dtype=bool),
            tie=np.sign(index[:, None] - index[None, :]).astype(np.float32),
            tie_break=(1e-5 * index).astype(np.float32),
        )
        # Order rules per unit: the agents follow the setting, the scripted enemy SMAC's.
        allies = np.arange(u) < n
        self._unmasked = allies & (not st.mask_attacks)  # attack orders always available
        if self.enemy_policy == "attack_move":  # its script picks targets at any distance
            self._unmasked = self._unmasked | ~allies
        self._needs_reach = allies & (not st.chase)  # carried out only if in weapon range
        # Field of view: distances scaled by the sight range; edge to edge if the setting
        # says so (a margin of both radii, in sight-range units).
        self._view_margin = (self._pairs.radius_sum[:n] / self.sight_range
                             if st.fov_edge else None)
        # SC2's weapon scan range (Liquipedia, "Automatic Targeting"): at least 5; ground
        # units weapon range + 0.5 (Legacy of the Void), air units their weapon range.
        reach_scan = np.where(t.air, t.reach, t.reach + 0.5)
        self._scan_range = np.maximum(reach_scan, 5.0).astype(np.float32)
        # The team each unit advances toward when it sees no enemy (the paper's heuristic).
        centre = np.stack([self._start_pos[n:].mean(0), self._start_pos[:n].mean(0)])
        self._forward = centre[t.team].astype(np.float32)
        # Jitted once per env, so un-jitted callers do not recompile the loop every step.
        self._simulate = jax.jit(self._simulate_substeps)
        # SMAC's reward scale: every enemy's health and shields, kill bonuses and the win.
        self.max_reward = float(
            m * cfg.reward_death_value + cfg.reward_win
            + np.sum(t.health_max[n:] + t.shield_max[n:])
            + st.win_health * np.sum(t.health_max[:n])
        )

        # Feature widths: the setting names the columns of each block.
        self.type_bits = t.type_onehot.shape[1]
        self.shield_bits_ally = int(np.any(t.shield_max[:n] > 0))
        self.shield_bits_enemy = int(np.any(t.shield_max[n:] > 0))
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)],
                                np.int32).reshape(n, n - 1)
        self._xy_scale = (self.map_size * st.state_xy_scale).astype(np.float32)

        def width(columns, shield_bits):
            sizes = {"shield": shield_bits, "type": self.type_bits,
                     "last_action": self.n_actions if cfg.obs_last_action else 0}
            return sum(sizes.get(c, 1) for c in columns)

        nf_en = width(st.obs_enemy, self.shield_bits_enemy)
        nf_al = width(st.obs_ally, self.shield_bits_ally)
        nf_own = width(st.obs_own, self.shield_bits_ally)
        n_move = 4 if st.obs_move else 0
        self.obs_layout = {"move": n_move, "enemy": (m, nf_en), "ally": (n - 1, nf_al),
                           "own": nf_own}
        self.obs_dim = n_move + m * nf_en + (n - 1) * nf_al + nf_own
        st_al = width(st.state_ally, self.shield_bits_ally)
        st_en = width(st.state_enemy, self.shield_bits_enemy)
        self.state_layout = {
            "ally": (n, st_al), "enemy": (m, st_en),
            "last_action": n * self.n_actions if self.state_last_action else 0,
            "timestep": int(cfg.state_timestep),
        }
        self.state_dim = n * st_al + m * st_en + sum(
            self.state_layout[k] for k in ("last_action", "timestep"))

        self.obs_sizes = (self.obs_dim,) * n
        self.action_space = Discrete(self.n_actions)
        self.action_sizes = (self.n_actions,) * n
        self.teams = np.zeros(n, np.int32)

    # -- reset / step ----------------------------------------------------------------
    def reset(self, key):
        p = self.params
        jitter = 2.0 * uniform(key, self._start_pos.shape) - 1.0
        pos = self._clamp(self._start_pos + self.scenario.jitter * jitter)
        u = self.num_units
        state = MicroState(
            pos=pos,
            health=jnp.asarray(p.health_max),
            shield=jnp.asarray(p.shield_max),
            energy=jnp.asarray(p.energy0),
            cooldown=jnp.zeros(u, jnp.float32),
            shield_wait=jnp.zeros(u, jnp.float32),
            alive=jnp.ones(u, bool),
            last_actions=jnp.full(u, -1, jnp.int32),
            fired=jnp.full(u, -1, jnp.int32),
            avail=jnp.zeros((u, self._a_max), bool),
            t=jnp.int32(0),
        )
        state = self.refresh(state)
        return self.observe(state), state

    def step(self, key, state: MicroState, actions):
        cfg, p, n = self.config, self.params, self.num_agents
        self._check(actions)
        actions = jnp.asarray(actions, jnp.int32)
        enemy = scripted_actions(self, state, key, self.enemy_policy, noise=cfg.enemy_noise,
                                 reaction=cfg.enemy_reaction)
        all_actions = jnp.concatenate([actions, enemy[n:]])
        all_actions = self._legal(state, all_actions)
        orders = self._orders(state, all_actions)

        before = state
        state = state.replace(fired=jnp.full_like(state.fired, -1))
        if cfg.random_delay:
            u = uniform(key, (cfg.substeps, self.num_units), salt=1)
            delays = p.delay_low + (p.delay_high - p.delay_low) * u
        else:
            delays = jnp.zeros((cfg.substeps, self.num_units))
        state = self._simulate(state, orders, delays)
        state = self.refresh(state.replace(last_actions=all_actions, t=state.t + 1))

        # Outcome: a side without a living combat unit has lost (SMAC: only medivacs left).
        fighting = state.alive & p.is_combat
        allies_in, enemies_in = jnp.any(fighting[:n]), jnp.any(fighting[n:])
        won = allies_in & ~enemies_in
        lost = enemies_in & ~allies_in
        terminated = ~(allies_in & enemies_in)
        truncated = (state.t >= self.max_steps) & ~terminated

        reward = self._reward(before, state, won, lost)
        info = {
            "alive": state.alive[:n],
            "won": won.astype(jnp.float32),
            "lost": lost.astype(jnp.float32),
            "dead_allies": jnp.sum(~state.alive[:n]).astype(jnp.float32),
            "dead_enemies": jnp.sum(~state.alive[n:]).astype(jnp.float32),
        }
        reward = jnp.full(n, reward, jnp.float32)
        return self.observe(state), state, reward, terminated, truncated, info

    def _check(self, actions) -> None:
        """Shape and dtype always (they are static); values too when not traced."""
        if not hasattr(actions, "shape"):
            actions = np.asarray(actions)
        if tuple(actions.shape) != (self.num_agents,):
            raise ValueError(f"{self.name}: actions must have shape ({self.num_agents},), "
                             f"got {tuple(actions.shape)}")
        dtype = actions.dtype
        if not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(f"{self.name}: actions must be integers, got {dtype}")
        try:
            values = np.asarray(actions)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            return  # traced: values unknown until run time
        self.check_actions(values)

    def _reward(self, before: MicroState, after: MicroState, won, lost):
        """Damage dealt (health + shields) + kill bonuses [- scale x damage suffered
        (+ death penalties in smac)] + the win bonus (coma: plus the allies' remaining
        health), optionally scaled; or the sparse +1/-1."""
        cfg, st, n = self.config, self.setting, self.num_agents
        if cfg.reward_sparse:
            return won.astype(jnp.float32) - lost.astype(jnp.float32)
        lost_hp = (before.health + before.shield - after.health - after.shield) * before.alive
        if st.damage_floor > -np.inf:  # regeneration is not negative damage (coma)
            lost_hp = jnp.maximum(lost_hp, st.damage_floor)
        deaths = (before.alive & ~after.alive).astype(jnp.float32)
        dealt = jnp.sum(lost_hp[n:]) + cfg.reward_death_value * jnp.sum(deaths[n:])
        if self.reward_only_positive:
            reward = jnp.abs(dealt)  # SMAC's abs: enemy shield regeneration counts too
        else:
            suffered = jnp.sum(lost_hp[:n])
            if st.ally_death_penalty:
                suffered = suffered + cfg.reward_death_value * jnp.sum(deaths[:n])
            reward = dealt - cfg.reward_negative_scale * suffered
        win_bonus = cfg.reward_win
        if st.win_health:
            win_bonus = win_bonus + st.win_health * jnp.sum(after.health[:n])
        reward = reward + jnp.where(won, win_bonus, 0.0)
        reward = reward + jnp.where(lost, cfg.reward_defeat, 0.0)
        if self.reward_scale:
            reward = reward / (self.max_reward / cfg.reward_scale_rate)
        return reward

    # -- rules ---------------------------------------------------------------------------
    def _clamp(self, pos):
        return jnp.clip(pos, 0.0, jnp.asarray(self.map_size))

    def refresh(self, state: MicroState) -> MicroState:
        """Recompute what derives from the units (available actions) after editing them."""
        return state.replace(avail=self._avail_all(state))

    def _avail_all(self, state: MicroState) -> jax.Array:
        """``[U, A_max]`` available actions of every unit, SMAC's rules."""
        p, cfg = self.params, self.config
        _, dist = pairwise(state.pos)
        probe = state.pos[:, None, :] + cfg.move_amount / 2 * MOVE_DIRECTIONS[None]  # SMAC
        moves = jnp.all((probe >= 0.0) & (probe <= jnp.asarray(self.map_size)), -1)
        in_range = state.alive[None, :] & (dist <= cfg.shoot_range)  # [U, U]
        if self._unmasked.any():  # coma agents: every attack order, whatever its target
            in_range = in_range | self._unmasked[:, None]
        targets = row_sum(p.target_select * in_range[:, None, :].astype(jnp.float32)) > 0
        u = self.num_units
        live = jnp.concatenate([jnp.zeros((u, 1), bool), jnp.ones((u, 1), bool), moves, targets], 1)
        dead = jnp.arange(self._a_max) == NOOP
        return jnp.where(state.alive[:, None], live, dead[None, :])

    def _legal(self, state: MicroState, actions):
        """Unavailable actions become ``stop`` (no-op for the dead); SMAC asserts instead.
        An attack order of a unit that cannot chase (coma agents) on a target that is dead
        or beyond its weapon range becomes the no-op: the unit does nothing this step."""
        ok = (actions >= 0) & (actions < self._a_max)
        safe = jnp.clip(actions, 0, self._a_max - 1)
        ok = ok & (row_sum((state.avail & (safe[:, None] == jnp.arange(self._a_max)))
                           .astype(jnp.float32)) > 0)
        legal = jnp.where(ok, safe, jnp.where(state.alive, STOP, NOOP))
        if self._needs_reach.any():
            k = legal - N_FIXED_ACTIONS
            chosen = k[:, None] == jnp.arange(self.params.target_select.shape[1])  # [U, K]
            carried = row_sum(self.order_ok(state) * chosen.astype(jnp.float32)) > 0
            void = (legal >= N_FIXED_ACTIONS) & self._needs_reach & ~carried
            legal = jnp.where(void, NOOP, legal)
        return legal

    def order_ok(self, state: MicroState) -> jax.Array:
        """``[U, K]`` float 1/0: would target order ``6 + k`` of unit ``u`` be carried out
        now? Always for units that chase (SMAC's rules: availability suffices); for the
        others only on a living target inside their weapon range (edge to edge)."""
        p = self.params
        _, dist = pairwise(state.pos)
        reach = dist - self._pairs.radius_sum <= p.reach[:, None]
        ok = (state.alive[None, :] & reach) | ~self._needs_reach[:, None]
        return row_sum(p.target_select * ok[:, None, :].astype(jnp.float32))

    def _orders(self, state: MicroState, actions) -> Orders:
        p, cfg = self.params, self.config
        n_targets = p.target_select.shape[1]
        chosen = (actions - N_FIXED_ACTIONS)[:, None] == jnp.arange(n_targets)  # [U, K]
        # [U, U]: sum over the K target actions (moved last for row_sum)
        mask = row_sum(jnp.swapaxes(p.target_select, 1, 2) * chosen[:, None, :]) > 0
        step_x = (actions == MOVE_NORTH + 2).astype(jnp.float32) - (actions == MOVE_NORTH + 3)
        step_y = (actions == MOVE_NORTH).astype(jnp.float32) - (actions == MOVE_NORTH + 1)
        is_target = actions >= N_FIXED_ACTIONS
        return Orders(
            stop=actions == STOP,
            move=(actions >= MOVE_NORTH) & ~is_target,
            target=is_target,
            target_index=row_sum(mask * jnp.arange(self.num_units, dtype=jnp.float32)
                                 ).astype(jnp.int32),
            target_mask=mask,
            goal=state.pos + cfg.move_amount * jnp.stack([step_x, step_y], 1),
        )

    def _simulate_substeps(self, state: MicroState, orders: Orders, delays) -> MicroState:
        def body(i, s):
            return self._substep(s, orders, delays[i])

        return jax.lax.fori_loop(0, self.config.substeps, body, state)

    def _substep(self, s: MicroState, orders: Orders, delay) -> MicroState:
        """One sub-step for all units. Targets are one-hot rows ``[U, U]`` (attacker x
        target) and x/y are separate ``[U, U]`` planes: with a few dozen units, masked sums
        over small planes vectorise far better than gathers or a trailing axis of 2.
        Rules no unit of the scenario needs (healing, shields, collisions) are left out
        when tracing, which is pure bookkeeping: their terms would be zero."""
        p, k, dt = self.params, self._pairs, self._dt
        healers, shields, collisions = self._features
        x, y = s.pos[:, 0], s.pos[:, 1]
        dx, dy = x[:, None] - x[None, :], y[:, None] - y[None, :]  # [U, U] self - other
        dist = jnp.sqrt(dx * dx + dy * dy + 1e-12)
        in_reach = dist - k.radius_sum <= p.reach[:, None]  # edge-to-edge range
        alive_t = s.alive[None, :]
        cooldown = jnp.maximum(s.cooldown - dt, 0.0)
        damaged = s.health < p.health_max - 1e-4

        # Targets: the ordered one while it lives, else auto-acquire the nearest in reach
        # (a tiny per-unit offset makes the nearest unique).
        ordered_alive = row_sum((orders.target_mask & alive_t).astype(jnp.float32)) > 0
        ordered_live = orders.target & ordered_alive
        idle = orders.stop | (orders.target & ~ordered_alive)
        usable = (p.can_attack | (p.can_heal & damaged[None, :])) if healers else p.can_attack
        cand = usable & alive_t & in_reach
        score = jnp.where(cand, dist + k.tie_break, jnp.inf)
        auto_mask = cand & (score <= jnp.min(score, 1, keepdims=True)) & idle[:, None]
        aim = jnp.where(ordered_live[:, None], orders.target_mask, auto_mask)
        aim_f = aim.astype(jnp.float32)
        engaged = s.alive & (row_sum((aim & in_reach).astype(jnp.float32)) > 0)
        fire = engaged & p.is_combat & (cooldown <= 1e-6)

        # Damage and healing land simultaneously.
        hit = aim_f * fire[:, None]
        armoured = col_sum(hit * p.armoured_damage)
        health, shield, shield_wait, energy = s.health - armoured, s.shield, s.shield_wait, s.energy
        if shields:
            raw = col_sum(hit * p.raw_damage)
            absorbed = jnp.minimum(s.shield, raw)
            # Share of the attack that passes the shield, with armour per hit (exact when
            # shields are up or down; proportional when one volley breaks them).
            health = s.health - armoured * (raw - absorbed) / jnp.maximum(raw, 1e-6)
            shield_wait = jnp.where(raw > 0, p.shield_delay, jnp.maximum(shield_wait - dt, 0.0))
            shield = jnp.where(shield_wait <= 0, jnp.minimum(
                s.shield - absorbed + p.shield_regen * dt, p.shield_max), s.shield - absorbed)
        heal = jnp.zeros_like(fire)
        if healers:
            heal = engaged & p.is_healer & (row_sum(aim_f * damaged[None, :]) > 0) & (energy > 0)
            missing = row_sum(aim_f * (p.health_max - s.health)[None, :])
            affordable = energy / jnp.maximum(p.heal_cost, 1e-6)
            amount = jnp.where(heal, jnp.minimum(jnp.minimum(p.heal_rate * dt, affordable),
                                                 missing), 0.0)
            health = health + col_sum(aim_f * amount[:, None])
            energy = jnp.clip(energy - amount * p.heal_cost + p.energy_regen * dt, 0.0,
                              p.energy_max)
        health = jnp.clip(health, 0.0, p.health_max)
        alive = s.alive & (health > 0)

        # Movement toward the move goal or an out-of-range target, then separation.
        chasing = ordered_live & ~engaged
        if self._needs_reach.any():  # coma agents never walk after a target
            chasing = chasing & ~self._needs_reach
        moving = s.alive & (orders.move | chasing)
        go_x = jnp.where(orders.move, orders.goal[:, 0] - x, -row_sum(aim_f * dx))
        go_y = jnp.where(orders.move, orders.goal[:, 1] - y, -row_sum(aim_f * dy))
        length = jnp.sqrt(go_x * go_x + go_y * go_y + 1e-12)
        stride = jnp.minimum(p.speed * dt, length) * moving / length
        new_x, new_y = x + stride * go_x, y + stride * go_y
        if collisions:
            touching = k.collide & (s.alive[:, None] & alive_t)
            overlap = jnp.maximum(k.radius_sum - dist, 0.0) * touching
            # Each of an overlapping pair moves half the overlap apart; coincident units
            # separate along x, by index (a fixed tie-break).
            apart = dist > 1e-5
            half = 0.5 * overlap / dist
            live = s.alive.astype(jnp.float32)
            new_x = new_x + live * row_sum(jnp.where(apart, half * dx, 0.5 * overlap * k.tie))
            new_y = new_y + live * row_sum(jnp.where(apart, half * dy, 0.0))
        pos = self._clamp(jnp.stack([new_x, new_y], 1))

        target = row_sum(aim_f * k.index[None, :]).astype(jnp.int32)
        return s.replace(
            pos=pos,
            health=health * alive,
            shield=shield * alive,
            energy=energy * alive,
            cooldown=jnp.where(fire, p.cooldown + delay, cooldown),
            shield_wait=shield_wait,
            alive=alive,
            fired=jnp.where(fire | heal, target, s.fired),
        )

    # -- observations and states ---------------------------------------------------------
    def avail_actions(self, state: MicroState) -> jax.Array:
        return state.avail[: self.num_agents, : self.n_actions]

    def _unit_features(self, state: MicroState):
        """Per-unit health, shield and cooldown fractions ``[U]``."""
        p = self.params
        health = state.health / p.health_max
        shield = state.shield / np.maximum(p.shield_max, 1.0)
        busy = jnp.where(p.is_healer, state.energy / np.maximum(p.energy_max, 1.0),
                         state.cooldown / p.cooldown)
        return health, shield, busy

    def _relative(self, state: MicroState):
        """Agent-relative distance and offsets, scaled by sight range: ``[N, U]``."""
        n, sight = self.num_agents, self.sight_range
        rel = (state.pos[None, :, :] - state.pos[:n, None, :]) / sight
        dist = jnp.sqrt(rel[..., 0] ** 2 + rel[..., 1] ** 2 + 1e-12)
        return dist, rel

    def _attackable(self, state: MicroState):
        """``[N, M]``: can agent i attack enemy k now (SMAC's 'available' feature)."""
        n, m = self.num_agents, self.num_enemies
        attack = state.avail[:n, N_FIXED_ACTIONS: N_FIXED_ACTIONS + m]
        return (attack & ~self.params.is_healer[:n, None]).astype(jnp.float32)

    def visible(self, state: MicroState) -> jax.Array:
        """``[N, U]`` bool: which living units each living agent sees (its field of view:
        below the sight range, centre to centre or edge to edge as the setting says)."""
        n = self.num_agents
        dist, _ = self._relative(state)
        seen = state.alive[:n, None] & state.alive[None, :]
        if not self.config.full_observability:
            gap = dist if self._view_margin is None else dist - self._view_margin
            seen = seen & (gap < 1.0)
        return seen

    def observe(self, state: MicroState) -> jax.Array:
        """Observations ``[N, obs_dim]``: move? | enemies | allies | own, with the columns
        the setting names (docs/micro.md lists both settings)."""
        st, p = self.setting, self.params
        n, m = self.num_agents, self.num_enemies
        health, shield, _ = self._unit_features(state)
        dist, rel = self._relative(state)
        visible = self.visible(state).astype(jnp.float32)
        onehot = jnp.asarray(p.type_onehot)
        en, others, rows = slice(n, None), self._others, np.arange(n)[:, None]

        def per_unit(values, units, count):  # [U, f] unit columns -> [N, count, f]
            if isinstance(units, slice):  # the same units for every agent
                return jnp.broadcast_to(values[units][None], (n, count, values.shape[1]))
            return values[units]  # [N, count] indices

        def block(columns, pick, units, count, shield_bits):
            """Pair columns ``[N, count, f]``: ``pick`` selects the units' agent-relative
            entries (``[:, en]`` or ``[rows, others]``), ``units`` their own rows."""
            cols = {
                "attackable": lambda: self._attackable(state)[..., None],
                "visible": lambda: jnp.ones((n, count, 1)),
                "distance": lambda: pick(dist)[..., None],
                "dx": lambda: pick(rel)[..., :1],
                "dy": lambda: pick(rel)[..., 1:],
                "health": lambda: per_unit(health[:, None], units, count),
                "shield": lambda: per_unit(shield[:, None], units, count),
                "type": lambda: per_unit(onehot, units, count),
                "last_action": lambda: self._last_action_onehot(state)[others],
            }
            widths = {"shield": shield_bits, "type": self.type_bits,
                      "last_action": self.n_actions if self.config.obs_last_action else 0}
            parts = [cols[c]() for c in columns if widths.get(c, 1)]
            return jnp.concatenate(parts, -1) if parts else jnp.zeros((n, count, 0))

        enemy = block(st.obs_enemy, lambda x: x[:, en], en, m, self.shield_bits_enemy)
        enemy = enemy * visible[:, en, None]
        ally = block(st.obs_ally, lambda x: x[rows, others], others, n - 1,
                     self.shield_bits_ally) * visible[rows, others][..., None]
        own_cols = {"health": health[:n, None], "shield": shield[:n, None],
                    "type": onehot[:n]}
        own_widths = {"shield": self.shield_bits_ally, "type": self.type_bits}
        own = [own_cols[c] for c in st.obs_own if own_widths.get(c, 1)]
        own = (jnp.concatenate(own, 1) if own else jnp.zeros((n, 0))) * state.alive[:n, None]
        parts = [enemy.reshape(n, -1), ally.reshape(n, -1), own]
        if st.obs_move:
            parts.insert(0, state.avail[:n, MOVE_NORTH: MOVE_NORTH + 4].astype(jnp.float32))
        return jnp.concatenate(parts, 1).astype(jnp.float32)

    def _last_action_onehot(self, state: MicroState) -> jax.Array:
        n = self.num_agents
        last = state.last_actions[:n]
        return ((last[:, None] == jnp.arange(self.n_actions)[None, :]) & (last[:, None] >= 0)
                ).astype(jnp.float32)

    def global_state(self, state: MicroState) -> jax.Array:
        """The state ``[state_dim]``: ally rows | enemy rows | last actions? | timestep?

        SMAC: ally row health, cooldown (medivac: energy), x, y (centred, / map size),
        shield?, type?; enemy row health, x, y, shield?, type?. COMA: the same, enemy rows
        without health, x and y divided by half the map size. Dead units are zero rows.
        """
        cfg, st, p, n = self.config, self.setting, self.params, self.num_agents
        health, shield, busy = self._unit_features(state)
        xy = (state.pos - self.map_size / 2) / self._xy_scale
        cols = {"health": health[:, None], "cooldown": busy[:, None], "x": xy[:, :1],
                "y": xy[:, 1:], "shield": shield[:, None], "type": jnp.asarray(p.type_onehot)}

        def rows(columns, units, shield_bits):
            widths = {"shield": shield_bits, "type": self.type_bits}
            return jnp.concatenate([cols[c][units] for c in columns if widths.get(c, 1)], 1)

        ally = rows(st.state_ally, slice(None, n), self.shield_bits_ally) * state.alive[:n, None]
        enemy = rows(st.state_enemy, slice(n, None), self.shield_bits_enemy) * state.alive[n:, None]
        parts = [ally.reshape(-1), enemy.reshape(-1)]
        if self.state_last_action:
            parts.append(self._last_action_onehot(state).reshape(-1))
        if cfg.state_timestep:
            parts.append((state.t / self.max_steps)[None].astype(jnp.float32))
        return jnp.concatenate(parts).astype(jnp.float32)

    def resolved_options(self) -> dict:
        """Every ``MicroConfig`` option, those left to the rule set (None there) and the
        scenario's episode limit as this env runs them."""
        return {**dataclasses.asdict(self.config),
                "step_mul": int(self.step_mul),
                "reward_only_positive": bool(self.reward_only_positive),
                "reward_scale": bool(self.reward_scale),
                "state_last_action": bool(self.state_last_action),
                "enemy_policy": str(self.enemy_policy),
                "sight_range": float(self.sight_range),
                "episode_limit": int(self.max_steps)}

    def agent_state(self, state: MicroState, variant: Variant = "AS") -> jax.Array:
        """MAPPO's critic inputs ``[N, agent_state_dim(variant)]`` (Yu et al., 2022, sec. 5).

        - ``EP``: the global state, repeated for each agent.
        - ``CL``: all agents' observations concatenated, repeated.
        - ``AS``: EP | the agent's observation | one-hot agent id.
        - ``FP``: AS with duplicates pruned: every unit once, described relative to the
          agent (no sight limit). Own: health, shield?, cooldown, x, y, type, agent id;
          then move availability [4]; enemy rows: alive, attackable, distance, dx, dy,
          health, shield?, type; ally rows: alive, distance, dx, dy, health, shield?,
          cooldown, type, last action?; then the timestep if ``state_timestep``.
        """
        n = self.num_agents
        if variant == "EP":
            return jnp.broadcast_to(self.global_state(state), (n, self.state_dim))
        if variant == "CL":
            obs = self.observe(state).reshape(-1)
            return jnp.broadcast_to(obs, (n, obs.shape[0]))
        if variant == "AS":
            ep = jnp.broadcast_to(self.global_state(state), (n, self.state_dim))
            return jnp.concatenate([ep, self.observe(state), jnp.eye(n)], 1)
        if variant == "FP":
            return self._featurepruned(state)
        raise ValueError(f"unknown agent-state variant {variant!r}: use EP, CL, AS or FP")

    def agent_state_dim(self, variant: Variant = "AS") -> int:
        n, m = self.num_agents, self.num_enemies
        if variant == "EP":
            return self.state_dim
        if variant == "CL":
            return n * self.obs_dim
        if variant == "AS":
            return self.state_dim + self.obs_dim + n
        if variant == "FP":
            sb_a, sb_e, bits = self.shield_bits_ally, self.shield_bits_enemy, self.type_bits
            last = self.n_actions if self.state_last_action else 0
            own = 4 + sb_a + bits + n
            return (own + 4 + m * (6 + sb_e + bits) + (n - 1) * (6 + sb_a + bits + last)
                    + int(self.config.state_timestep))
        raise ValueError(f"unknown agent-state variant {variant!r}: use EP, CL, AS or FP")

    def _featurepruned(self, state: MicroState) -> jax.Array:
        cfg, p, n = self.config, self.params, self.num_agents
        health, shield, busy = self._unit_features(state)
        dist, rel = self._relative(state)
        alive = state.alive.astype(jnp.float32)
        onehot = jnp.asarray(p.type_onehot)
        xy = (state.pos - self.map_size / 2) / self.map_size
        me = jnp.arange(n)
        own = [health[:n, None]] + ([shield[:n, None]] if self.shield_bits_ally else [])
        own = jnp.concatenate(own + [busy[:n, None], xy[:n], onehot[:n]], 1) * alive[:n, None]
        own = jnp.concatenate([own, jnp.eye(n)], 1)
        move = state.avail[:n, MOVE_NORTH: MOVE_NORTH + 4].astype(jnp.float32)

        def unit_rows(cols):  # [N, U, f] per-unit columns, broadcast over agents
            return jnp.broadcast_to(cols[None], (n,) + cols.shape)

        en = slice(n, None)
        e_cols = [health[en, None]] + ([shield[en, None]] if self.shield_bits_enemy else [])
        enemy = jnp.concatenate([
            unit_rows(alive[en, None]), self._attackable(state)[..., None],
            dist[:, en, None], rel[:, en], unit_rows(jnp.concatenate(e_cols + [onehot[en]], 1)),
        ], -1) * alive[None, en, None]
        a_cols = [health[:n, None]] + ([shield[:n, None]] if self.shield_bits_ally else [])
        a_cols = jnp.concatenate(a_cols + [busy[:n, None], onehot[:n]], 1)
        if self.state_last_action:
            a_cols = jnp.concatenate([a_cols, self._last_action_onehot(state)], 1)
        others, rows = self._others, me[:, None]
        ally = jnp.concatenate([
            alive[others][..., None], dist[rows, others][..., None], rel[rows, others],
            a_cols[others],
        ], -1) * alive[others][..., None]
        parts = [own, move, enemy.reshape(n, -1), ally.reshape(n, -1)]
        if cfg.state_timestep:
            parts.append(jnp.full((n, 1), state.t / self.max_steps, jnp.float32))
        return jnp.concatenate(parts, 1).astype(jnp.float32)

    def render(self, state: MicroState, size: int = 400) -> np.ndarray:
        return render_state(self, state, size=size)

    def __repr__(self) -> str:
        return (f"MicroEnv(scenario={self.name!r}, N={self.num_agents}, "
                f"enemies={self.num_enemies}, obs_dim={self.obs_dim}, "
                f"state_dim={self.state_dim}, n_actions={self.n_actions}, "
                f"max_steps={self.max_steps})")
