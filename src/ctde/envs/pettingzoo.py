"""PettingZoo bridges.

(a) ``to_parallel_env``: any ctde environment as a PettingZoo ``ParallelEnv``, so tools
written for PettingZoo (its API tests, SuperSuit, other libraries' learners) can drive it.

(b) ``PettingZooEnv`` (defined in ``ctde.envs.external``): any PettingZoo ``ParallelEnv``
as a ctde environment, stepped on the host from compiled code, so the ctde algorithms
train on it; ``make("pettingzoo:<module>")`` builds one by name.

Requires ``pettingzoo`` (``pip install ctde[reference]``).
"""

from __future__ import annotations

import warnings

import gymnasium
import jax
import numpy as np
from pettingzoo.utils.env import ParallelEnv

from ctde.envs.core import Discrete, MultiAgentEnv

# -- (a) ctde envs as PettingZoo ParallelEnvs ---------------------------------------------


class CtdeParallelEnv(ParallelEnv):
    """A ctde ``MultiAgentEnv`` behind PettingZoo's parallel API.

    - Agent names: the env's ``agent_names`` (the reference's names for MPE), else
      ``agent_0..N-1``.
    - Spaces use each agent's true sizes (``obs_sizes``/``action_sizes``); padding is
      added to actions and cut from observations here.
    - ``reset(seed=s)`` starts the key chain from ``jax.random.key(s)``; later resets
      without a seed continue it, so a seeded sequence of episodes is reproducible.
    - An agent whose ``info["alive"]`` turns False is terminated and leaves ``agents``;
      when the episode ends every remaining agent is terminated or truncated.
    - Discrete envs put each agent's ``action_mask`` (int8, true size) in its info.
    - ``state()`` is the env's ``global_state``; ``render()`` returns an RGB frame when
      made with ``render_mode="rgb_array"``.
    Reset and step are jitted once per wrapper.
    """

    metadata = {"render_modes": ["rgb_array"], "is_parallelizable": True, "render_fps": 10}

    def __init__(self, env: MultiAgentEnv, render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env = env
        self.render_mode = render_mode
        self.metadata = dict(type(self).metadata, name=env.name)
        n = env.num_agents
        names = getattr(env, "agent_names", None) or [f"agent_{i}" for i in range(n)]
        self.possible_agents = list(names)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        inf = np.float32(np.inf)
        self._obs_spaces = {
            a: gymnasium.spaces.Box(-inf, inf, (env.obs_sizes[i],), np.float32)
            for i, a in enumerate(self.possible_agents)}
        space = env.action_space
        if isinstance(space, Discrete):
            self._act_spaces = {a: gymnasium.spaces.Discrete(env.action_sizes[i])
                                for i, a in enumerate(self.possible_agents)}
        else:
            self._act_spaces = {
                a: gymnasium.spaces.Box(np.float32(space.low), np.float32(space.high),
                                        (env.action_sizes[i],), np.float32)
                for i, a in enumerate(self.possible_agents)}
        self.state_space = gymnasium.spaces.Box(-inf, inf, (env.state_dim,), np.float32)
        self._reset = jax.jit(lambda key: _with_avail(env, *env.reset(key)))
        self._step = jax.jit(lambda key, state, actions: _step_with_avail(env, key, state,
                                                                          actions))
        self._key = None
        self._state = None
        self._avail = None

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.key(seed)
        elif self._key is None:
            self._key = jax.random.key(np.random.SeedSequence().entropy % (2**32))
        self._key, key = jax.random.split(self._key)
        obs, self._state, avail = self._reset(key)
        self._avail = np.asarray(avail)
        self.agents = self.possible_agents[:]
        return self._obs_dict(np.asarray(obs)), {a: self._info(a) for a in self.agents}

    def step(self, actions: dict):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, key = jax.random.split(self._key)
        obs, self._state, reward, term, trunc, info, avail = self._step(
            key, self._state, self._action_array(actions))
        self._avail = np.asarray(avail)
        obs, reward = np.asarray(obs), np.asarray(reward)
        alive = np.asarray(info["alive"])
        term, trunc = bool(term), bool(trunc)
        live = self.agents
        out_obs = self._obs_dict(obs, live)
        rewards = {a: float(reward[self._index[a]]) for a in live}
        terminations = {a: term or not alive[self._index[a]] for a in live}
        truncations = {a: trunc and not terminations[a] for a in live}
        infos = {a: self._info(a) for a in live}
        self.agents = [a for a in live if not (terminations[a] or truncations[a])]
        return out_obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return np.asarray(self.env.global_state(self._state), np.float32)

    def render(self):
        if self.render_mode is None:
            warnings.warn("render() called without render_mode='rgb_array'", stacklevel=2)
            return None
        return self.env.render(self._state)

    def close(self):
        pass

    # -- conversions ---------------------------------------------------------------
    def _obs_dict(self, obs, agents=None):
        agents = self.agents if agents is None else agents
        sizes = self.env.obs_sizes
        return {a: obs[self._index[a], : sizes[self._index[a]]] for a in agents}

    def _info(self, agent):
        if not isinstance(self.env.action_space, Discrete):
            return {}
        i = self._index[agent]
        return {"action_mask": self._avail[i, : self.env.action_sizes[i]].astype(np.int8)}

    def _action_array(self, actions: dict):
        """The ``[N]`` / ``[N, d]`` padded array; absent (finished) agents get their
        first available action (discrete) or zeros (continuous)."""
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise ValueError(f"unknown agents {sorted(unknown)}; agents are {self.possible_agents}")
        env = self.env
        if isinstance(env.action_space, Discrete):
            arr = np.argmax(self._avail, axis=1).astype(np.int32)
            for a, act in actions.items():
                arr[self._index[a]] = int(np.asarray(act))
        else:
            arr = np.zeros((env.num_agents, env.action_space.dim), np.float32)
            for a, act in actions.items():
                i = self._index[a]
                arr[i, : env.action_sizes[i]] = np.asarray(act, np.float32)
        env.check_actions(arr)
        return arr


def _with_avail(env, obs, state):
    return obs, state, env.avail_actions(state)


def _step_with_avail(env, key, state, actions):
    out = env.step(key, state, actions)
    return (*out, env.avail_actions(out[1]))


def to_parallel_env(env_or_name: MultiAgentEnv | str, render_mode: str | None = None,
                    **params) -> CtdeParallelEnv:
    """``env_or_name`` (an env, or a registry name built with ``params``) as a PettingZoo
    ``ParallelEnv``: ``to_parallel_env("simple_tag", num_good=2)``."""
    if isinstance(env_or_name, str):
        from ctde.envs.registry import make

        env_or_name = make(env_or_name, **params)
    elif params:
        raise ValueError("scenario parameters are only accepted with an env name, "
                         f"not with an env object: {sorted(params)}")
    return CtdeParallelEnv(env_or_name, render_mode=render_mode)


# -- (b) PettingZoo ParallelEnvs as ctde envs -------------------------------------------------

from ctde.envs.external import PettingZooEnv, make_external  # noqa: E402

__all__ = ["CtdeParallelEnv", "PettingZooEnv", "make_external", "to_parallel_env"]
