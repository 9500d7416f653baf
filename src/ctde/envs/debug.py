"""``identity``: a tiny cooperative task for checking that learners learn.

Each step every agent sees a random cue (one-hot of ``num_actions`` in the discrete
case, a point of the box in the continuous one) and the team is rewarded for how
well the agents' actions match their cues: discrete, the fraction of agents choosing
their cue; continuous, minus the mean squared distance. A random policy scores
``1/num_actions`` per step (discrete); a perfect one 1 per step (0 continuous). The
optimum is reachable from local observations alone, so it isolates the learner.

With ``delay = k > 0`` the action must match the cue shown ``k`` steps earlier, so only
a learner with memory (a recurrent actor) beats chance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ctde.envs.core import Box, Discrete, MultiAgentEnv


@struct.dataclass
class IdentityState:
    cue: jax.Array  # [delay + 1, N] (discrete) or [delay + 1, N, d]: oldest (the target) first
    t: jax.Array


class Identity(MultiAgentEnv):
    def __init__(self, num_agents: int = 2, num_actions: int = 4, max_steps: int = 10,
                 continuous_actions: bool = False, delay: int = 0):
        if num_agents < 1 or num_actions < 2 or max_steps < 1 or delay < 0:
            raise ValueError(
                "identity: needs num_agents >= 1, num_actions >= 2, max_steps >= 1, delay >= 0")
        self.delay = delay
        self.name = "identity"
        self.num_agents = num_agents
        self.continuous = continuous_actions
        self.max_steps = max_steps
        self.num_actions = num_actions
        self.obs_dim = num_actions + 1  # cue + time fraction
        self.obs_sizes = (self.obs_dim,) * num_agents
        if continuous_actions:
            self.action_space = Box(-1.0, 1.0, num_actions)
        else:
            self.action_space = Discrete(num_actions)
        self.action_sizes = (num_actions,) * num_agents
        self.state_dim = num_agents * num_actions + 1
        self.teams = np.zeros(num_agents, np.int32)
        self.metrics = {"accuracy": "mean"}

    def _cue(self, key, steps=()):
        if self.continuous:
            shape = (*steps, self.num_agents, self.num_actions)
            return jax.random.uniform(key, shape, minval=-1, maxval=1)
        return jax.random.randint(key, (*steps, self.num_agents), 0, self.num_actions)

    def _cue_features(self, cue):
        if self.continuous:
            return cue
        return jax.nn.one_hot(cue, self.num_actions)

    def _obs(self, state):
        time = jnp.full((self.num_agents, 1), state.t / self.max_steps)
        return jnp.concatenate([self._cue_features(state.cue[-1]), time], axis=-1)

    def reset(self, key):
        state = IdentityState(cue=self._cue(key, (self.delay + 1,)), t=jnp.int32(0))
        return self._obs(state), state

    def step(self, key, state, actions):
        target = state.cue[0]  # the cue shown `delay` steps ago
        if self.continuous:
            error = jnp.mean((actions - target) ** 2, axis=-1)
            score = -error.mean()
            accuracy = jnp.mean(error < 0.01)
        else:
            accuracy = jnp.mean(actions == target)
            score = accuracy
        cues = jnp.concatenate([state.cue[1:], self._cue(key)[None]], axis=0)
        new = IdentityState(cue=cues, t=state.t + 1)
        reward = jnp.full((self.num_agents,), score, jnp.float32)
        truncated = new.t >= self.max_steps
        info = {"alive": jnp.ones(self.num_agents, bool), "accuracy": accuracy}
        return self._obs(new), new, reward, jnp.bool_(False), truncated, info

    def global_state(self, state):
        cue = self._cue_features(state.cue[-1]).reshape(-1)
        return jnp.concatenate([cue, jnp.array([state.t / self.max_steps])])


SCENARIOS = {"identity": Identity}
