"""Frames of a micro battle: team colours, shapes by unit kind, bars and attack lines.

Allies are red, enemies blue. Ground units are discs, air units squares; a white centre
dot marks ranged units, a white cross a medivac, none a melee unit. Above each unit a
green health bar and, for shielded units, a cyan shield bar. A line joins each unit to
the unit it shot (or healed, in green) during the last step.
"""

from __future__ import annotations

import numpy as np

from ctde.envs.micro.heuristic import heuristic_actions
from ctde.envs.render import TEAM_COLORS, Canvas

_TEAM = (TEAM_COLORS[0], TEAM_COLORS[2])
_HEALTH, _SHIELD, _HEAL = (60, 170, 60), (60, 190, 230), (60, 200, 90)
_DEAD, _BORDER = (190, 190, 190), (120, 120, 120)


def view(env) -> tuple[np.ndarray, float]:
    """Centre and half-width of the square shown: the start area plus room to fight."""
    start = env._start_pos
    lo, hi = start.min(0), start.max(0)
    centre = (lo + hi) / 2
    half = float(np.clip(np.max(hi - lo) / 2 + 5.0, 8.0, np.max(env.map_size) / 2))
    return centre, half


def render_state(env, state, size: int = 400) -> np.ndarray:
    """One RGB frame ``[size, size, 3]`` uint8 (host side)."""
    pos = np.asarray(state.pos)
    alive = np.asarray(state.alive)
    health, shield = np.asarray(state.health), np.asarray(state.shield)
    fired = np.asarray(state.fired)
    p = env.unit_table
    centre, half = view(env)
    canvas = Canvas(size, half, background=(250, 250, 246))
    xy = pos - centre
    # Map edges, where visible.
    w, h = env.map_size - centre
    lo = -centre
    for x0, y0, x1, y1 in ((lo[0], lo[1], w, lo[1]), (lo[0], h, w, h),
                           (lo[0], lo[1], lo[0], h), (w, lo[1], w, h)):
        canvas.line(x0, y0, x1, y1, _BORDER)

    for i in np.flatnonzero(~alive):  # the fallen, faintly
        r = max(float(p.radius[i]), 0.4)
        canvas.circle(*xy[i], 0.6 * r, _DEAD, alpha=0.6)
    for i in np.flatnonzero(alive & (fired >= 0)):
        j = fired[i]
        color = _HEAL if p.is_healer[i] else _TEAM[p.team[i]]
        canvas.line(*xy[i], *xy[j], color, width=0.12, alpha=0.7)
    for i in np.flatnonzero(alive):
        kind = env.unit_kinds[i]
        color = _TEAM[p.team[i]]
        r = max(kind.radius, 0.45)
        x, y = xy[i]
        if kind.air:
            canvas.rect(x - r, y - r, x + r, y + r, color)
        else:
            canvas.circle(x, y, r, color, outline=(60, 60, 60))
        if kind.is_healer:
            canvas.rect(x - 0.6 * r, y - 0.15 * r, x + 0.6 * r, y + 0.15 * r, (255, 255, 255))
            canvas.rect(x - 0.15 * r, y - 0.6 * r, x + 0.15 * r, y + 0.6 * r, (255, 255, 255))
        elif kind.range >= 1.0:
            canvas.circle(x, y, 0.35 * r, (255, 255, 255))
        width = max(2 * r, 1.0)
        canvas.bar(x, y + r + 0.3, width, 0.25, health[i] / p.health_max[i], _HEALTH)
        if p.shield_max[i] > 0:
            canvas.bar(x, y + r + 0.62, width, 0.25, shield[i] / p.shield_max[i], _SHIELD)
    return canvas.to_array()


def record(env, steps: int = 40, seed: int = 0, allies: str = "random", size: int = 200):
    """Frames of ``steps`` env steps (new episodes start as old ones end).

    ``allies``: "random" (uniform available actions) or a scripted mode ("nearest",
    "focus", "coma"); the enemy is the env's built-in scripted enemy.
    """
    import jax

    def act(key, state):
        if allies == "random":
            return env.sample_actions(key, state)
        return heuristic_actions(env, state, key, allies)

    step, reset, act = jax.jit(env.step), jax.jit(env.reset), jax.jit(act)
    key = jax.random.PRNGKey(seed)
    key, k0 = jax.random.split(key)
    _, state = reset(k0)
    frames = [render_state(env, state, size)]
    for _ in range(steps - 1):
        key, k_act, k_step, k_reset = jax.random.split(key, 4)
        _, state, _, terminated, truncated, _ = step(k_step, state, act(k_act, state))
        frames.append(render_state(env, state, size))
        if terminated or truncated:
            _, state = reset(k_reset)
    return frames


def main(argv=None) -> None:
    """``python -m ctde.envs.micro.render --scenario 3m --out micro_3m.gif``"""
    import argparse

    from ctde.envs import make
    from ctde.envs.render import save_animation

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--scenario", default="3m")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--allies", default="random",
                        choices=("random", "nearest", "focus", "coma"))
    parser.add_argument("--setting", default="smac", choices=("smac", "coma"))
    parser.add_argument("--fps", type=int, default=6)
    args = parser.parse_args(argv)
    env = make(args.scenario, setting=args.setting)
    frames = record(env, args.steps, args.seed, args.allies, args.size)
    print(save_animation(frames, args.out, fps=args.fps))


if __name__ == "__main__":
    main()
