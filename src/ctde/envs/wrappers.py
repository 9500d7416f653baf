"""Wrappers that every learner uses: auto-reset and episode statistics.

Both keep the pure ``reset``/``step`` contract of ``core.MultiAgentEnv`` and pass every
other attribute through to the wrapped environment.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from ctde import prng
from ctde.envs.core import MultiAgentEnv


class Wrapper:
    """Forwards everything it does not define to the wrapped environment."""

    def __init__(self, env: MultiAgentEnv):
        self.env = env

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    # Drawn through this wrapper's own avail_actions, so it takes the wrapper's state (a
    # forwarded call would hand the wrapped state to the inner env).
    sample_actions = MultiAgentEnv.sample_actions

    @property
    def unwrapped(self) -> MultiAgentEnv:
        return getattr(self.env, "unwrapped", self.env)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


def _select(flag, on_true, on_false):
    """Tree-wise ``where`` with a scalar flag (works under vmap, unlike ``lax.cond``)."""
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), on_true, on_false)


class AutoReset(Wrapper):
    """Starts a new episode as soon as one ends.

    The returned observation is then the first of the new episode; the last one of the
    finished episode is kept in ``info["final_obs"]`` (its global state in
    ``info["final_global_state"]``, its env state in ``info["final_state"]``) so a
    learner can bootstrap through truncation. On other steps these equal the step's own
    outputs, so ``final_obs`` is always s_{t+1} of the same episode.
    """

    def reset(self, key):
        return self.env.reset(key)

    def step(self, key, state, actions):
        key_step, key_reset = prng.split(key)
        obs, state, reward, terminated, truncated, info = self.env.step(key_step, state, actions)
        done = terminated | truncated
        info = dict(
            info, final_obs=obs, final_global_state=self.env.global_state(state), final_state=state
        )
        reset_obs, reset_state = self.env.reset(key_reset)
        obs = jnp.where(done, reset_obs, obs)
        state = _select(done, reset_state, state)
        return obs, state, reward, terminated, truncated, info

    def global_state(self, state):
        return self.env.global_state(state)

    def avail_actions(self, state):
        return self.env.avail_actions(state)


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array  # [N] running undiscounted return
    episode_length: jax.Array  # [] steps so far
    episode_metrics: dict  # running reductions of env.metrics


class EpisodeStats(Wrapper):
    """Tracks undiscounted returns, lengths and task metrics of running episodes.

    On the step an episode ends, ``info["episode_done"]`` is True and
    ``info["episode"]`` holds that episode's ``return`` ``[N]``, ``length`` and every
    metric in ``env.metrics`` reduced over the episode (sum, mean or last value).
    Place it outside ``AutoReset`` so it sees the finished episode's reward.
    """

    def _zero_metrics(self):
        return {name: jnp.float32(0.0) for name in self.env.metrics}

    def reset(self, key):
        obs, env_state = self.env.reset(key)
        state = EpisodeStatsState(
            env_state=env_state,
            episode_return=jnp.zeros(self.env.num_agents, jnp.float32),
            episode_length=jnp.int32(0),
            episode_metrics=self._zero_metrics(),
        )
        return obs, state

    def step(self, key, state: EpisodeStatsState, actions):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, actions
        )
        done = terminated | truncated
        ret = state.episode_return + reward
        length = state.episode_length + 1
        metrics = {}
        for name, how in self.env.metrics.items():
            value = jnp.asarray(info[name], jnp.float32)
            if how == "sum":
                metrics[name] = state.episode_metrics[name] + value
            elif how == "mean":  # running mean over the episode's steps
                prev = state.episode_metrics[name]
                metrics[name] = prev + (value - prev) / length
            else:  # "last"
                metrics[name] = value
        info = dict(
            info,
            episode_done=done,
            episode={"return": ret, "length": length, **metrics},
        )
        zero = jnp.zeros_like
        new_state = EpisodeStatsState(
            env_state=env_state,
            episode_return=jnp.where(done, zero(ret), ret),
            episode_length=jnp.where(done, 0, length),
            episode_metrics=_select(done, jax.tree.map(zero, metrics), metrics),
        )
        return obs, new_state, reward, terminated, truncated, info

    def global_state(self, state: EpisodeStatsState):
        return self.env.global_state(state.env_state)

    def avail_actions(self, state: EpisodeStatsState):
        return self.env.avail_actions(state.env_state)

    def render(self, state: EpisodeStatsState):
        return self.env.render(state.env_state)


def training_env(env: MultiAgentEnv) -> EpisodeStats:
    """The stack learners use: episode statistics over auto-reset (envs that restart
    themselves, like host-side PettingZoo envs, declare ``autoresets = True``)."""
    return EpisodeStats(env if getattr(env, "autoresets", False) else AutoReset(env))
