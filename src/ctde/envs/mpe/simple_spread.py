"""simple_spread: N cooperative agents cover N landmarks without bumping into each other.

Reference: ``mpe2.simple_spread_v3``. Reward per agent: ``(1 - local_ratio) * global +
local_ratio * local`` with ``global = -sum over landmarks of the distance of the
closest agent`` and ``local = -(number of other agents it overlaps)``.
Observation: ``[self_vel, self_pos, landmark_rel_pos, other_agent_rel_pos, other_comm]``
(the agents are silent, so the comm slots are always zero, as in the reference).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState, check_neighbors

AGENT_SIZE = 0.15
LANDMARK_SIZE = 0.05
CAPTURE_RADIUS = 0.1  # an agent this close "occupies" a landmark


class SimpleSpread(MPEEnv):
    def __init__(self, N=3, local_ratio=0.5, max_cycles=25, continuous_actions=False,
                 curriculum=False, curriculum_stage=0, terminate_on_success=False,
                 num_agent_neighbors=None, num_landmark_neighbors=None):
        if N < 1:
            raise ValueError(f"simple_spread: N must be >= 1, got {N}")
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"simple_spread: local_ratio must be in [0, 1], got {local_ratio}")
        check_neighbors(num_agent_neighbors, num_landmark_neighbors)
        self.local_ratio = float(local_ratio)
        # The reference's curriculum: stage 0 has no collision penalty, stage 1 has it.
        self.collision_penalty = (not curriculum) or int(curriculum_stage) >= 1
        self.terminate_on_success = bool(terminate_on_success)
        self.k_agents = num_agent_neighbors
        self.k_landmarks = num_landmark_neighbors
        n_other = N - 1 if num_agent_neighbors is None else num_agent_neighbors
        n_lm = N if num_landmark_neighbors is None else num_landmark_neighbors
        obs = 4 + 2 * n_lm + 2 * n_other + 2 * n_other  # dim_c = 2
        colors = np.array([[0.35, 0.35, 0.85]] * N + [[0.25, 0.25, 0.25]] * N)
        super().__init__(
            name="simple_spread", agent_names=[f"agent_{i}" for i in range(N)],
            teams=[0] * N, team_names=("agents",), num_landmarks=N,
            size=[AGENT_SIZE] * N + [LANDMARK_SIZE] * N,
            collide=[True] * N + [False] * N, movable=[True] * N, silent=[True] * N,
            dim_c=2, obs_sizes=[obs] * N, max_cycles=max_cycles,
            continuous_actions=continuous_actions,
            metrics={"occupied_landmarks": "last", "collisions": "sum",
                     "landmark_dist": "mean"},
            colors=colors,
        )

    def _reset_state(self, key):
        return self._blank_state(key)

    def _observe(self, state: MPEState):
        n = self.num_agents
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        lm = state.p_pos[n:]
        other_pos, other_c = physics.others(pos), physics.others(state.c)  # [N, N-1, .]
        if self.k_landmarks is None:
            lm_rel = physics.relative(lm, pos)
        else:
            lm_rel = physics.nearest(lm[None] - pos[:, None], physics.distance(
                lm[None], pos[:, None]), self.k_landmarks)
        rel = other_pos - pos[:, None]
        if self.k_agents is None:
            other_rel, comm = rel.reshape(n, -1), other_c.reshape(n, -1)
        else:
            d = physics.distance(other_pos, pos[:, None])
            other_rel = physics.nearest(rel, d, self.k_agents)
            comm = physics.nearest(other_c, d, self.k_agents)
        return self._stack_obs([jnp.concatenate([vel, pos, lm_rel, other_rel, comm], -1)])

    def _collisions(self, state):
        n = self.num_agents
        pos = state.p_pos[:n]
        hit = physics.is_collision(pos[:, None], pos[None], AGENT_SIZE, AGENT_SIZE)
        return hit & ~np.eye(n, dtype=bool)  # [N, N]

    def _min_dists(self, state):
        n = self.num_agents
        d = physics.distance(state.p_pos[:n][:, None], state.p_pos[n:][None])  # [agent, lm]
        return physics.small_min(d, axis=0)  # [L]

    def _rewards(self, state):
        global_rew = -physics.small_sum(self._min_dists(state))
        local = -physics.small_sum(self._collisions(state).astype(jnp.float32), axis=1)
        if not self.collision_penalty:
            local = jnp.zeros_like(local)
        return global_rew * (1 - self.local_ratio) + local * self.local_ratio

    def _metrics(self, state):
        min_d = self._min_dists(state)
        return {
            "occupied_landmarks": jnp.sum(min_d < CAPTURE_RADIUS).astype(jnp.float32),
            "collisions": jnp.sum(self._collisions(state)).astype(jnp.float32) / 2,
            "landmark_dist": jnp.sum(min_d),
        }

    def _is_terminal(self, state):
        if not self.terminate_on_success:
            return jnp.bool_(False)
        return jnp.all(self._min_dists(state) < CAPTURE_RADIUS)

