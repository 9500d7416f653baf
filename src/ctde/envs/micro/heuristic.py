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

Difficulty knobs: ``noise`` (probability of a uniformly random available action: aim
noise) and ``reaction`` (probability of repeating the previous action: reaction delay).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde.envs.micro.env import (
    MOVE_DIRECTIONS,
    MOVE_NORTH,
    N_FIXED_ACTIONS,
    NOOP,
    STOP,
    MicroState,
    pairwise,
)

MODES = ("nearest", "focus", "stop")


def scripted_actions(env, state: MicroState, key, mode: str = "nearest", side: int | None = None,
                     noise: float = 0.0, reaction: float = 0.0) -> jax.Array:
    """Scripted actions of every unit ``[U]`` (allies then enemies; slice the side you need).

    ``side`` is accepted for readability at call sites; both sides are always computed.
    """
    del side
    if mode not in MODES:
        raise ValueError(f"unknown scripted mode {mode!r}: use one of {MODES}")
    p = env.params
    u = env.num_units
    if mode == "stop":  # hold position; SC2 units still fire at enemies in weapon range
        return jnp.where(state.alive, STOP, NOOP).astype(jnp.int32)
    avail = state.avail
    _, dist = pairwise(state.pos)
    tgt = p.target_index  # [U, K]
    tgt_dist = jnp.take_along_axis(dist, tgt, 1)

    # Which target order to give.
    if mode == "nearest":
        score = tgt_dist
    else:  # weakest target already in weapon range, else the nearest
        edge = tgt_dist - p.radius[:, None] - p.radius[tgt]
        in_reach = edge <= p.reach[:, None]
        weakest = (state.health + state.shield)[tgt] + 1e-3 * tgt_dist
        score = jnp.where(in_reach, weakest - 1e6, tgt_dist)
    frac = state.health / p.health_max
    heal_score = jnp.where(frac[tgt] < 1.0 - 1e-4, frac[tgt], jnp.inf)
    score = jnp.where(p.is_healer[:, None], heal_score, score)
    score = jnp.where(avail[:, N_FIXED_ACTIONS:], score, jnp.inf)
    k = jnp.argmin(score, 1)
    has_target = jnp.isfinite(jnp.min(score, 1))

    # Otherwise where to go: the nearest enemy it can hit; a medivac, the nearest fighter.
    same = p.team[:, None] == p.team[None, :]
    follow = same & p.is_combat[None, :] & ~jnp.eye(u, dtype=bool)
    toward = jnp.where(p.is_healer[:, None], follow, p.can_attack) & state.alive[None, :]
    v = jnp.argmin(jnp.where(toward, dist, jnp.inf), 1)
    far = jnp.where(p.is_healer, dist[jnp.arange(u), v] > 0.75 * p.reach, True)
    go = jnp.any(toward, 1) & far
    align = (state.pos[v] - state.pos) @ jnp.asarray(MOVE_DIRECTIONS).T  # [U, 4]
    moves = avail[:, MOVE_NORTH: MOVE_NORTH + 4]
    best = jnp.argmax(jnp.where(moves, align, -jnp.inf), 1)
    go = go & jnp.any(moves, 1)

    action = jnp.where(has_target, N_FIXED_ACTIONS + k, jnp.where(go, MOVE_NORTH + best, STOP))
    action = jnp.where(state.alive, action, NOOP).astype(jnp.int32)

    if noise > 0.0 or reaction > 0.0:
        k_noise, k_pick, k_react = jax.random.split(key, 3)
        logits = jnp.where(avail, 0.0, -jnp.inf)
        random = jax.random.categorical(k_pick, logits, axis=-1).astype(jnp.int32)
        action = jnp.where(jax.random.uniform(k_noise, (u,)) < noise, random, action)
        last = jnp.maximum(state.last_actions, 0)
        keep = (state.last_actions >= 0) & avail[jnp.arange(u), last]
        keep = keep & (jax.random.uniform(k_react, (u,)) < reaction)
        action = jnp.where(keep, last, action)
    return action


def heuristic_actions(env, state: MicroState, key, mode: str = "focus",
                      noise: float = 0.0, reaction: float = 0.0) -> jax.Array:
    """Scripted actions ``[N]`` for the allies (the learning agents' side)."""
    return scripted_actions(env, state, key, mode, side=0, noise=noise,
                            reaction=reaction)[: env.num_agents]

