"""simple_speaker_listener: a static speaker sees the goal colour and must tell a
listener, who cannot see it, which of three landmarks to go to.

Reference: ``mpe2.simple_speaker_listener_v4``. Agents ``speaker_0`` (immovable,
speaks ``dim_c = 3``: discrete 3 words, continuous 3 values) and ``listener_0`` (moves,
silent: 5 actions). Both get ``-|listener - goal|^2``. Observations: speaker
``[goal_colour]``, listener ``[self_vel, landmark_rel_pos, speaker_says]``.
``state.goal = [goal landmark]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState

LANDMARK_COLORS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]],
                           np.float32)


class SimpleSpeakerListener(MPEEnv):
    def __init__(self, max_cycles=25, continuous_actions=False):
        super().__init__(
            name="simple_speaker_listener", agent_names=["speaker_0", "listener_0"],
            teams=[0, 0], team_names=("agents",), num_landmarks=3,
            size=[0.075, 0.075, 0.04, 0.04, 0.04], collide=[False] * 5,
            movable=[False, True], silent=[False, True], dim_c=3, obs_sizes=[3, 11],
            max_cycles=max_cycles, continuous_actions=continuous_actions,
            metrics={"goal_dist": "mean"},
            colors=np.concatenate([[[0.25, 0.25, 0.25]] * 2, LANDMARK_COLORS]),
        )

    def _reset_state(self, key):
        k_goal, k_pos = jax.random.split(key)
        return self._blank_state(k_pos, goal=jax.random.randint(k_goal, (1,), 0, 3))

    def _observe(self, state: MPEState):
        pos, lm = state.p_pos[1], state.p_pos[2:]
        speaker = jnp.asarray(LANDMARK_COLORS)[state.goal[0]]
        listener = jnp.concatenate([state.p_vel[1], (lm - pos).reshape(-1), state.c[0]])
        return self._stack_obs([speaker[None], listener[None]])

    def _rewards(self, state):
        d2 = physics.small_sum(jnp.square(state.p_pos[1] - state.p_pos[2 + state.goal[0]]))
        return jnp.full((2,), -d2)

    def _metrics(self, state):
        return {"goal_dist": physics.distance(state.p_pos[1], state.p_pos[2 + state.goal[0]])}

    def _extra_state(self, state):
        return jax.nn.one_hot(state.goal[0], 3)

    def _entity_colors(self, state):
        colors = self.colors.copy()
        colors[1] = LANDMARK_COLORS[int(state.goal[0])] + 0.45  # the listener shows the goal
        return colors
