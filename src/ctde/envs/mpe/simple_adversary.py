"""simple_adversary: N good agents know which of N landmarks is the goal; one
adversary does not, and must infer it from where the good agents go.

Reference: ``mpe2.simple_adversary_v3``. Agent order: ``adversary_0, agent_0..N-1``.
Rewards: the adversary gets ``-dist(adversary, goal)``; every good agent gets
``-min over good agents of dist(agent, goal) + sum over adversaries of dist(adv, goal)``.
Observations: good ``[goal_rel_pos, landmark_rel_pos, other_agent_rel_pos]``,
adversary ``[landmark_rel_pos, other_agent_rel_pos]``. ``state.goal = [goal landmark]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState, check_neighbors

AGENT_SIZE, LANDMARK_SIZE = 0.15, 0.08


class SimpleAdversary(MPEEnv):
    def __init__(self, N=2, max_cycles=25, continuous_actions=False,
                 num_agent_neighbors=None, num_landmark_neighbors=None):
        if N < 1:
            raise ValueError(f"simple_adversary: N must be >= 1, got {N}")
        check_neighbors(num_agent_neighbors, num_landmark_neighbors)
        self.k_agents, self.k_landmarks = num_agent_neighbors, num_landmark_neighbors
        n = N + 1
        n_lm = N if num_landmark_neighbors is None else num_landmark_neighbors
        n_other = n - 1 if num_agent_neighbors is None else num_agent_neighbors
        adv_obs = 2 * n_lm + 2 * n_other
        super().__init__(
            name="simple_adversary",
            agent_names=["adversary_0"] + [f"agent_{i}" for i in range(N)],
            teams=[0] + [1] * N, team_names=("adversary", "good"), num_landmarks=N,
            size=[AGENT_SIZE] * n + [LANDMARK_SIZE] * N, collide=[False] * (n + N),
            movable=[True] * n, silent=[True] * n, dim_c=2,
            obs_sizes=[adv_obs] + [2 + adv_obs] * N, max_cycles=max_cycles,
            continuous_actions=continuous_actions,
            metrics={"good_dist": "mean", "adv_dist": "mean"},
            colors=np.array([[0.85, 0.35, 0.35]] + [[0.35, 0.35, 0.85]] * N
                            + [[0.15, 0.15, 0.15]] * N),
        )

    def _reset_state(self, key):
        k_goal, k_pos = jax.random.split(key)
        goal = jax.random.randint(k_goal, (1,), 0, self.num_landmarks)
        return self._blank_state(k_pos, goal=goal)

    def _goal_pos(self, state):
        return state.p_pos[self.num_agents + state.goal[0]]

    def _observe(self, state: MPEState):
        n = self.num_agents
        pos, lm = state.p_pos[:n], state.p_pos[n:]
        lm_rel = lm[None] - pos[:, None]  # [N, L, 2]
        rel = physics.others(pos) - pos[:, None]  # [N, N-1, 2]
        if self.k_landmarks is None:
            lm_obs = lm_rel.reshape(n, -1)
        else:
            lm_obs = physics.nearest(lm_rel, physics.norm(lm_rel),
                                     self.k_landmarks)
        if self.k_agents is None:
            other_obs = rel.reshape(n, -1)
        else:
            other_obs = physics.nearest(rel, physics.norm(rel),
                                        self.k_agents)
        goal_rel = self._goal_pos(state)[None] - pos[1:]
        return self._stack_obs([
            jnp.concatenate([lm_obs[:1], other_obs[:1]], -1),
            jnp.concatenate([goal_rel, lm_obs[1:], other_obs[1:]], -1),
        ])

    def _dists(self, state):
        return physics.distance(state.p_pos[: self.num_agents], self._goal_pos(state)[None])

    def _rewards(self, state):
        d = self._dists(state)
        good = -physics.small_min(d[1:]) + d[0]
        return jnp.concatenate([-d[:1], jnp.full((self.num_agents - 1,), good)])

    def _metrics(self, state):
        d = self._dists(state)
        return {"good_dist": physics.small_min(d[1:]), "adv_dist": d[0]}

    def _extra_state(self, state):
        return jax.nn.one_hot(state.goal[0], self.num_landmarks)

    def _entity_colors(self, state):
        colors = self.colors.copy()
        colors[self.num_agents + int(state.goal[0])] = (0.15, 0.65, 0.15)
        return colors
