"""Bridges to the reference implementation (PettingZoo's ``mpe2``), for parity tests and
benchmarks: build the reference env with the same parameters, copy its world into an
``MPEState``, and turn an action array into the reference's action dict.

``mpe2`` is an optional dependency (``pip install ctde[reference]``); it is imported
only when these functions are called.
"""

from __future__ import annotations

import importlib

import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe.base import MPEEnv, MPEState

#: Our registry name -> the reference module.
REFERENCE_MODULES = {
    "simple": "simple_v3",
    "simple_adversary": "simple_adversary_v3",
    "simple_crypto": "simple_crypto_v3",
    "simple_push": "simple_push_v3",
    "simple_reference": "simple_reference_v3",
    "simple_speaker_listener": "simple_speaker_listener_v4",
    "simple_spread": "simple_spread_v3",
    "simple_tag": "simple_tag_v3",
    "simple_world_comm": "simple_world_comm_v3",
}


def make_reference(name: str, seed: int | None = None, **params):
    """The reference ``parallel_env`` of scenario ``name`` with our parameters, reset.

    ``curriculum_stage`` is ours only: in ``mpe2`` 1.1 the stage is stuck at 0 (its
    ``BaseScenario.curriculum_stage`` property has a setter that discards the value, so
    ``set_curriculum_stage`` does nothing); only stage 0 has a reference to compare with.
    """
    module = importlib.import_module(f"mpe2.{REFERENCE_MODULES[name]}")
    if params.pop("curriculum_stage", 0):
        raise ValueError("the reference cannot leave curriculum stage 0")
    env = module.parallel_env(**params)
    env.reset(seed=seed)
    return env


def _index(items, item) -> int:
    return next(i for i, x in enumerate(items) if x is item)


def _goals(name: str, world) -> list[int]:
    """The scenario data our ``MPEState.goal`` holds, read off the reference world."""
    lms, agents = world.landmarks, world.agents
    if name in ("simple_adversary", "simple_push"):
        return [_index(lms, agents[0].goal_a)]
    if name == "simple_crypto":
        key = next(i for i, lm in enumerate(lms) if np.array_equal(lm.color, agents[2].key))
        return [_index(lms, agents[0].goal_a), key]
    if name == "simple_reference":
        return [_index(lms, agents[0].goal_b), _index(lms, agents[1].goal_b)]
    if name == "simple_speaker_listener":
        return [_index(lms, agents[0].goal_b)]
    return []


def state_from_reference(env: MPEEnv, ref) -> MPEState:
    """Our state equal to the reference env's current world (positions, velocities,
    utterances, step count and goals)."""
    raw = ref.unwrapped
    world = raw.world
    entities = world.agents + world.landmarks
    assert [a.name for a in world.agents] == list(env.agent_names)
    c = np.stack([np.asarray(a.state.c, np.float32).reshape(env.dim_c) for a in world.agents])
    return MPEState(
        p_pos=jnp.asarray(np.stack([e.state.p_pos for e in entities]), jnp.float32),
        p_vel=jnp.asarray(np.stack([e.state.p_vel for e in entities]), jnp.float32),
        c=jnp.asarray(c),
        step=jnp.int32(raw.steps),
        goal=jnp.asarray(_goals(env.name, world), jnp.int32),
    )


def reference_actions(env: MPEEnv, actions) -> dict:
    """Our ``[N]`` / ``[N, d]`` action array as the reference's per-agent dict (true
    sizes: padding is cut off)."""
    actions = np.asarray(actions)
    if env.discrete:
        return {name: int(a) for name, a in zip(env.agent_names, actions, strict=True)}
    return {name: actions[i, : env.action_sizes[i]].astype(np.float32)
            for i, name in enumerate(env.agent_names)}


def reference_entities(ref) -> tuple[np.ndarray, np.ndarray]:
    """``(p_pos, p_vel)`` ``[E, 2]`` of the reference world, agents then landmarks."""
    world = ref.unwrapped.world
    entities = world.agents + world.landmarks
    return (np.stack([e.state.p_pos for e in entities]),
            np.stack([e.state.p_vel for e in entities]))
