"""Write one small GIF per MPE scenario to ``docs/img/<name>.gif`` (200x200, 25 frames).

Agents follow simple scripted policies so the clips show the task: spreaders head for
"their" landmark, predators chase the nearest prey while prey flee, speakers say the
goal and listeners go there, and so on.

    python benchmarks/mpe_gifs.py [--out docs/img] [--size 200]
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs import make
from ctde.envs.mpe import SCENARIOS
from ctde.envs.render import save_animation

# Unit direction of each discrete move (0 no-op, 1 -x, 2 +x, 3 -y, 4 +y).
DIRECTIONS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)


def move_towards(delta: np.ndarray) -> np.ndarray:
    """Discrete move that best follows each ``delta [N, 2]`` (no-op when close)."""
    move = np.argmax(delta @ DIRECTIONS.T, axis=1)
    return np.where(np.linalg.norm(delta, axis=1) < 0.05, 0, move)


def scripted_targets(env, state, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per agent: where to go ``[N, 2]`` and which word to say ``[N]``."""
    n = env.num_agents
    pos = np.asarray(state.p_pos)
    agents, landmarks = pos[:n], pos[n:]
    goal = np.asarray(state.goal)
    target = agents + rng.normal(0, 0.3, agents.shape)  # default: wander
    word = np.zeros(n, np.int64)
    name = env.name
    if name in ("simple", "simple_spread"):
        target = landmarks[np.arange(n) % len(landmarks)]
    elif name in ("simple_tag", "simple_world_comm"):
        a = env.num_adversaries
        prey, preds = agents[a:], agents[:a]
        d = np.linalg.norm(preds[:, None] - prey[None], axis=-1)
        target[:a] = prey[np.argmin(d, axis=1)]
        nearest = preds[np.argmin(d, axis=0)]
        target[a:] = np.clip(prey + (prey - nearest), -0.8, 0.8)  # flee, but stay inside
    elif name in ("simple_adversary", "simple_push"):
        target[:] = landmarks[goal[0]]
    elif name == "simple_reference":
        target = landmarks[goal[::-1]]  # each goes where the other wants it (it "heard")
        word = goal
    elif name == "simple_speaker_listener":
        target[1] = landmarks[goal[0]]
        word[0] = goal[0]
    elif name == "simple_crypto":
        word[:] = goal[0]
    return target, word


def scripted_actions(env, state, rng) -> np.ndarray:
    target, word = scripted_targets(env, state, rng)
    n = env.num_agents
    move = move_towards(target - np.asarray(state.p_pos)[:n])
    n_move = np.where(env.movable, 5, 1)
    move = np.where(env.movable, move, 0)
    speaks = ~env.silent
    act = np.where(speaks, move + n_move * word, move)
    return np.minimum(act, np.asarray(env.action_sizes) - 1).astype(np.int32)


def rollout_frames(name: str, frames: int, size: int, seed: int = 0) -> list[np.ndarray]:
    env = make(name, max_cycles=frames)
    rng = np.random.default_rng(seed)
    step = jax.jit(env.step)
    _, state = jax.jit(env.reset)(jax.random.key(seed))
    out = [env.render(state, size=size)]
    for _ in range(frames - 1):
        act = jnp.asarray(scripted_actions(env, state, rng))
        _, state, *_ = step(jax.random.key(0), state, act)
        out.append(env.render(state, size=size))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--envs", nargs="+", default=sorted(SCENARIOS))
    args = parser.parse_args()
    for name in args.envs:
        path = save_animation(rollout_frames(name, args.frames, args.size),
                              os.path.join(args.out, f"{name}.gif"), fps=8)
        print(f"{path}: {os.path.getsize(path) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
