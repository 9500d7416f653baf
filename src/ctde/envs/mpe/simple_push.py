"""simple_push: a good agent heads for its goal landmark; an adversary (who does not
know which landmark it is) pushes it away.

Reference: ``mpe2.simple_push_v3``. Agent order: ``adversary_0, agent_0``; both
collide. Rewards: good ``-dist(agent, goal)``; adversary ``dist(agent, goal) -
dist(adversary, goal)``. Observations: good ``[self_vel, goal_rel_pos, self_colour,
landmark_rel_pos, landmark_colours, other_rel_pos]``; adversary ``[self_vel,
landmark_rel_pos, other_rel_pos]``. The good agent's colour encodes the goal.
``state.goal = [goal landmark]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState

LANDMARK_COLORS = np.array([[0.1, 0.9, 0.1], [0.1, 0.1, 0.9]], np.float32)


class SimplePush(MPEEnv):
    def __init__(self, max_cycles=25, continuous_actions=False):
        super().__init__(
            name="simple_push", agent_names=["adversary_0", "agent_0"], teams=[0, 1],
            team_names=("adversary", "good"), num_landmarks=2, size=[0.05] * 4,
            collide=[True, True, False, False], movable=[True, True], silent=[True, True],
            dim_c=2, obs_sizes=[8, 19], max_cycles=max_cycles,
            continuous_actions=continuous_actions,
            metrics={"good_dist": "mean", "adv_dist": "mean"},
            colors=np.concatenate([[[0.75, 0.25, 0.25], [0.25, 0.25, 0.25]], LANDMARK_COLORS]),
        )

    def _reset_state(self, key):
        k_goal, k_pos = jax.random.split(key)
        return self._blank_state(k_pos, goal=jax.random.randint(k_goal, (1,), 0, 2))

    def _agent_color(self, state):
        """The good agent's colour: grey with the goal landmark's channel raised."""
        return 0.25 + 0.5 * jax.nn.one_hot(state.goal[0] + 1, 3)

    def _observe(self, state: MPEState):
        pos, vel, lm = state.p_pos[:2], state.p_vel[:2], state.p_pos[2:]
        lm_rel = physics.relative(lm, pos)  # [2, 4]
        other_rel = pos[::-1] - pos  # the other agent, relative
        goal_rel = lm[state.goal[0]] - pos[1]
        good = jnp.concatenate([vel[1], goal_rel, self._agent_color(state), lm_rel[1],
                                LANDMARK_COLORS.reshape(-1), other_rel[1]])
        adversary = jnp.concatenate([vel[0], lm_rel[0], other_rel[0]])
        return self._stack_obs([adversary[None], good[None]])

    def _dists(self, state):
        return physics.distance(state.p_pos[:2], state.p_pos[2 + state.goal[0]][None])

    def _rewards(self, state):
        d = self._dists(state)
        return jnp.stack([d[1] - d[0], -d[1]])

    def _metrics(self, state):
        d = self._dists(state)
        return {"good_dist": d[1], "adv_dist": d[0]}

    def _extra_state(self, state):
        return jax.nn.one_hot(state.goal[0], 2)

    def _entity_colors(self, state):
        colors = self.colors.copy()
        colors[1] = np.asarray(self._agent_color(state))
        return colors
