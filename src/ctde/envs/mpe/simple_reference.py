"""simple_reference: two agents each know where the *other* should go and must tell it.

Reference: ``mpe2.simple_reference_v3``. Agents ``agent_0, agent_1`` move and speak
(``dim_c = 10``): discrete actions are ``move + 5 * word`` (50), continuous ones
``[5 move, 10 say]``. Agent ``i``'s own reward is ``r_i = -dist(other agent,
landmark goal[i])``; it gets ``(1 - local_ratio) * mean(r) + local_ratio * r_i``.
Observation: ``[self_vel, landmark_rel_pos, goal_colour, other_says]``.
``state.goal = [landmark agent_0 wants agent_1 at, landmark agent_1 wants agent_0 at]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState

LANDMARK_COLORS = np.array([[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]],
                           np.float32)


class SimpleReference(MPEEnv):
    def __init__(self, local_ratio=0.5, max_cycles=25, continuous_actions=False):
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"simple_reference: local_ratio must be in [0, 1], got {local_ratio}")
        self.local_ratio = float(local_ratio)
        super().__init__(
            name="simple_reference", agent_names=["agent_0", "agent_1"], teams=[0, 0],
            team_names=("agents",), num_landmarks=3, size=[0.05] * 5, collide=[False] * 5,
            movable=[True, True], silent=[False, False], dim_c=10, obs_sizes=[21, 21],
            max_cycles=max_cycles, continuous_actions=continuous_actions,
            metrics={"goal_dist": "mean"},
            colors=np.concatenate([[[0.25, 0.25, 0.25]] * 2, LANDMARK_COLORS]),
        )

    def _reset_state(self, key):
        k_goal, k_pos = jax.random.split(key)
        return self._blank_state(k_pos, goal=jax.random.randint(k_goal, (2,), 0, 3))

    def _observe(self, state: MPEState):
        pos, vel, lm = state.p_pos[:2], state.p_vel[:2], state.p_pos[2:]
        goal_color = jnp.asarray(LANDMARK_COLORS)[state.goal]  # [2, 3]
        return self._stack_obs([jnp.concatenate(
            [vel, physics.relative(lm, pos), goal_color, state.c[::-1]], axis=-1)])

    def _dists(self, state):
        """``[2]``: how far each agent's *partner* is from the landmark it wants."""
        return physics.distance(state.p_pos[1::-1], state.p_pos[2 + state.goal])

    def _rewards(self, state):
        own = -self._dists(state)
        return (own[0] + own[1]) / 2 * (1 - self.local_ratio) + own * self.local_ratio

    def _metrics(self, state):
        return {"goal_dist": jnp.mean(self._dists(state))}

    def _extra_state(self, state):
        return jax.nn.one_hot(state.goal, 3).reshape(-1)

    def _entity_colors(self, state):
        colors = self.colors.copy()
        goal = np.asarray(state.goal)
        colors[1], colors[0] = LANDMARK_COLORS[goal[0]], LANDMARK_COLORS[goal[1]]
        return colors
