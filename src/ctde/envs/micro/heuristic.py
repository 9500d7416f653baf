"""Scripted micro policies: the built-in enemy, and the same rules for the allies.

Both teams obey the agents' action rules (attack orders only for targets within shoot
range, moves only inside the map), so a scripted ally and the scripted enemy are mirror
images. Per unit and step:

- a combat unit with an available attack order takes it: ``nearest`` picks the closest
  target (what SC2's attack-move does), ``focus`` the one with the least health + shield
  among those already in weapon range (focus fire), else the closest;
- otherwise it moves toward the nearest enemy it can hit (the move direction best aligned
  with it), or stops when none is left;
- a medivac heals the available ally with the lowest health fraction, otherwise follows
  the nearest fighting ally.

Mode ``stop`` holds every unit in place (it still fires at enemies in weapon range): a
static opponent for tests and drills.

Mode ``attack_move`` (the enemy's) models SC2's attack-move as Liquipedia's "Automatic
Targeting" describes it: a unit keeps its target until it dies or leaves the weapon's
scan range (at least 5; ground units weapon range + 0.5), acquires a new one there (units
that can hit back first, then the closest) and otherwise walks straight at the nearest
enemy. It gives attack orders beyond the shoot range, so the env makes them available to
the enemy when ``enemy_policy="attack_move"``.

Mode ``coma`` is the hand-coded heuristic of the COMA paper (Foerster et al., 2018, Sec. 5:
"run forwards into range and then focus their fire, attacking each enemy in turn until it
dies"), played from each unit's own field of view: a unit attacks the lowest-numbered enemy
it sees once that enemy is inside its weapon range, walks toward it while it is not, and
with no enemy in view walks toward the other team's starting point. Units that see the same
enemies pick the same one, so the team focuses its fire one enemy after another.

Difficulty knobs: ``noise`` (probability of a uniformly random available action: aim
noise) and ``reaction`` (probability of repeating the previous action: reaction delay).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde.envs.micro.common import (
    MOVE_NORTH,
    N_FIXED_ACTIONS,
    NOOP,
    STOP,
    MicroState,
    pairwise,
    row_sum,
    uniform,
)

MODES = ("nearest", "focus", "stop", "coma", "attack_move")


def scripted_actions(env, state: MicroState, key, mode: str = "nearest", noise: float = 0.0,
                     reaction: float = 0.0) -> jax.Array:
    """Scripted actions of every unit ``[U]``: allies ``[:N]``, enemies ``[N:]``."""
    if mode not in MODES:
        raise ValueError(f"unknown scripted mode {mode!r}: use one of {MODES}")
    u = env.num_units
    if mode == "stop":  # hold position; SC2 units still fire at enemies in weapon range
        return jnp.where(state.alive, STOP, NOOP).astype(jnp.int32)
    if mode == "coma":
        action = _coma_heuristic(env, state)
    elif mode == "attack_move":
        action = _attack_move(env, state)
    else:
        action = _scripted(env, state, mode)
    if noise > 0.0 or reaction > 0.0:
        avail = state.avail
        n_actions = avail.shape[1]
        draw = uniform(key, (u, n_actions + 2), salt=2)  # one draw for all three uses
        random = jnp.argmax(jnp.where(avail, draw[:, :n_actions], -1.0), 1).astype(jnp.int32)
        action = jnp.where(draw[:, -2] < noise, random, action)
        last = jnp.maximum(state.last_actions, 0)
        keep = (state.last_actions >= 0) & jnp.any(
            avail & (last[:, None] == jnp.arange(avail.shape[1])), 1)
        keep = keep & (draw[:, -1] < reaction)
        action = jnp.where(keep, last, action)
    return action


def _toward(state: MicroState, offset_x, offset_y):
    """The available move (N S E W) best aligned with each unit's offset ``[U]``."""
    align = jnp.stack([offset_y, -offset_y, offset_x, -offset_x], 1)  # N S E W
    moves = state.avail[:, MOVE_NORTH: MOVE_NORTH + 4]
    return jnp.argmax(jnp.where(moves, align, -jnp.inf), 1), jnp.any(moves, 1)


def _coma_heuristic(env, state: MicroState) -> jax.Array:
    """The COMA paper's heuristic for every unit ``[U]`` (see the module docstring)."""
    p = env.params
    diff, dist = pairwise(state.pos)  # diff[i, j] = pos[i] - pos[j]
    seen = state.alive[:, None] & state.alive[None, :]
    if not env.config.full_observability:
        margin = env._pairs.radius_sum if env.setting.fov_edge else 0.0
        seen = seen & (dist - margin < env.sight_range)
    foe = p.can_attack & seen  # [U, U] enemies in view that it can hit
    first = foe & (jnp.cumsum(foe, 1) == 1)  # the lowest-numbered one, one-hot
    has_foe = jnp.any(foe, 1)
    sel = p.target_select  # [U, K, U]
    k = jnp.argmax(row_sum(sel * first[:, None, :].astype(jnp.float32)), 1)
    in_reach = row_sum((first & (dist - env._pairs.radius_sum <= p.reach[:, None]))
                       .astype(jnp.float32)) > 0
    attack = N_FIXED_ACTIONS + k
    can_order = jnp.take_along_axis(state.avail, attack[:, None], 1)[:, 0]
    fire = has_foe & in_reach & can_order
    # Walk toward the chosen enemy, or forward to the other team's start with none in view.
    ahead = env._forward - state.pos  # [U, 2]
    goal_x = jnp.where(has_foe, -row_sum(first * diff[..., 0]), ahead[:, 0])
    goal_y = jnp.where(has_foe, -row_sum(first * diff[..., 1]), ahead[:, 1])
    arrived = ~has_foe & (goal_x ** 2 + goal_y ** 2 < 1.0)
    best, can_move = _toward(state, goal_x, goal_y)
    walk = can_move & ~arrived & p.is_combat
    action = jnp.where(fire, attack, jnp.where(walk, MOVE_NORTH + best, STOP))
    return jnp.where(state.alive, action, NOOP).astype(jnp.int32)


def _attack_move(env, state: MicroState) -> jax.Array:
    """SC2's attack-move for every unit ``[U]`` (Liquipedia, "Automatic Targeting"): keep
    the target of the last step while it lives within the weapon's scan range; else take,
    among living enemies within scan range (edge to edge), those that can hit back first,
    then the closest; with none there, walk straight at the nearest living enemy (an
    attack order chases in any direction). Medivacs play ``nearest``."""
    p = env.params
    _, dist = pairwise(state.pos)
    sel = p.target_select  # [U, K, U]
    live = p.can_attack & state.alive[None, :]
    scan = live & (dist - env._pairs.radius_sum <= env._scan_range[:, None])
    last = (state.last_actions - N_FIXED_ACTIONS)[:, None] == jnp.arange(sel.shape[1])
    previous = row_sum(jnp.swapaxes(sel, 1, 2) * last[:, None, :].astype(jnp.float32)) > 0
    keep = previous & scan  # [U, U] one-hot or empty
    threat = jnp.asarray(p.can_attack).T  # threat[u, v]: v can hit u
    tie = env._pairs.tie_break[None, :]
    score = jnp.where(scan, dist - 1e4 * threat + tie, jnp.inf)
    acquire = scan & (score <= jnp.min(score, 1, keepdims=True))
    gap = jnp.where(live, dist + tie, jnp.inf)
    nearest = live & (gap <= jnp.min(gap, 1, keepdims=True))
    aim = jnp.where(jnp.any(keep, 1, keepdims=True), keep,
                    jnp.where(jnp.any(scan, 1, keepdims=True), acquire, nearest))
    hit = row_sum(sel * aim[:, None, :].astype(jnp.float32))  # [U, K]
    k = jnp.argmax(hit, 1)
    ok = jnp.any(aim, 1) & (jnp.take_along_axis(state.avail, (N_FIXED_ACTIONS + k)[:, None],
                                                1)[:, 0])
    action = jnp.where(ok, N_FIXED_ACTIONS + k, STOP)
    action = jnp.where(p.is_healer, _scripted(env, state, "nearest"), action)
    return jnp.where(state.alive, action, NOOP).astype(jnp.int32)


def _scripted(env, state: MicroState, mode: str) -> jax.Array:
    """Modes ``nearest`` and ``focus`` for every unit ``[U]``."""
    p = env.params
    u = env.num_units
    avail = state.avail
    _, dist = pairwise(state.pos)
    sel = p.target_select  # [U, K, U]: 1 where target action k names unit v

    def per_target(values):  # [U] or [U, U] per unit -> [U, K] per target action
        values = values if values.ndim == 2 else values[None, :]
        return row_sum(sel * values[:, None, :])

    # Which target order to give.
    tgt_dist = per_target(dist)
    if mode == "nearest":
        score = tgt_dist
    else:  # weakest target already in weapon range, else the nearest
        edge = dist - p.radius[:, None] - p.radius[None, :]
        in_reach = per_target((edge <= p.reach[:, None]).astype(jnp.float32)) > 0
        weakest = per_target(state.health + state.shield) + 1e-3 * tgt_dist
        score = jnp.where(in_reach, weakest - 1e6, tgt_dist)
    frac = per_target(state.health / p.health_max)
    heal_score = jnp.where(frac < 1.0 - 1e-4, frac, jnp.inf)
    score = jnp.where(p.is_healer[:, None], heal_score, score)
    ok = avail[:, N_FIXED_ACTIONS:]
    if env._needs_reach.any():  # coma agents: only orders that will be carried out
        ok = ok & (env.order_ok(state) > 0)
    score = jnp.where(ok, score, jnp.inf)
    k = jnp.argmin(score, 1)
    has_target = jnp.isfinite(jnp.min(score, 1))

    # Otherwise where to go: the nearest enemy it can hit; a medivac, the nearest fighter.
    same = p.team[:, None] == p.team[None, :]
    follow = same & p.is_combat[None, :] & ~jnp.eye(u, dtype=bool)
    toward = jnp.where(p.is_healer[:, None], follow, p.can_attack) & state.alive[None, :]
    gap = jnp.where(toward, dist + 1e-5 * jnp.arange(u), jnp.inf)
    nearest = toward & (gap <= jnp.min(gap, 1, keepdims=True))  # one-hot [U, U]
    diff = state.pos[None] - state.pos[:, None]  # [U, U, 2] other - self
    offset_x = row_sum(nearest * diff[..., 0])
    offset_y = row_sum(nearest * diff[..., 1])
    far = jnp.where(p.is_healer, jnp.min(gap, 1) > 0.75 * p.reach, True)
    go = jnp.any(toward, 1) & far
    best, can_move = _toward(state, offset_x, offset_y)
    go = go & can_move

    action = jnp.where(has_target, N_FIXED_ACTIONS + k, jnp.where(go, MOVE_NORTH + best, STOP))
    return jnp.where(state.alive, action, NOOP).astype(jnp.int32)


def heuristic_actions(env, state: MicroState, key, mode: str = "focus",
                      noise: float = 0.0, reaction: float = 0.0) -> jax.Array:
    """Scripted actions ``[N]`` for the allies (the learning agents' side)."""
    return scripted_actions(env, state, key, mode, noise, reaction)[: env.num_agents]

