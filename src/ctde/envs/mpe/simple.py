"""simple: one agent, one landmark; reward is minus the squared distance (a debug task).

Reference: ``mpe2.simple_v3``. Observation: ``[self_vel, landmark_rel_pos]``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState


class Simple(MPEEnv):
    def __init__(self, max_cycles=25, continuous_actions=False):
        super().__init__(
            name="simple", agent_names=["agent_0"], teams=[0], team_names=("agents",),
            num_landmarks=1, size=[0.05, 0.05], collide=[False, False], movable=[True],
            silent=[True], dim_c=0, obs_sizes=[4], max_cycles=max_cycles,
            continuous_actions=continuous_actions, metrics={"landmark_dist": "mean"},
            colors=np.array([[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]]),
        )

    def _reset_state(self, key):
        return self._blank_state(key)

    def _observe(self, state: MPEState):
        return self._stack_obs([jnp.concatenate([state.p_vel[:1], state.p_pos[1:] -
                                                 state.p_pos[:1]], axis=-1)])

    def _rewards(self, state):
        return -physics.small_sum(jnp.square(state.p_pos[:1] - state.p_pos[1:]))

    def _metrics(self, state):
        return {"landmark_dist": physics.distance(state.p_pos[0], state.p_pos[1])}
