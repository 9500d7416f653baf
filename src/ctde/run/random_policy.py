"""Uniformly random play, for rendering an environment before any training."""

from __future__ import annotations

import jax

from ctde.envs.wrappers import AutoReset


def random_rollout_states(env, episodes: int = 1, seed: int = 0) -> list:
    """Raw env states of ``episodes`` episodes of uniformly random available actions."""
    env = AutoReset(env)
    step = jax.jit(env.step)
    sample = jax.jit(env.sample_actions)
    key, k = jax.random.split(jax.random.PRNGKey(seed))
    _, state = env.reset(k)
    states = [state]
    finished = 0
    while finished < episodes:
        key, k_act, k_env = jax.random.split(key, 3)
        _, state, _, terminated, truncated, info = step(k_env, state, sample(k_act, state))
        states.append(info["final_state"])
        if bool(terminated | truncated):
            finished += 1
            if finished < episodes:
                states.append(state)
    return states
