"""simple_tag: slower predators (adversaries) chase faster prey among obstacles.

Reference: ``mpe2.simple_tag_v3``. Agent order: ``adversary_0..A-1, agent_0..G-1``.
Every predator gets ``+10`` for *each* touching predator-prey pair (the reward is shared
by the whole team, not only the predator that touched); each prey gets ``-10`` per
predator touching it and a penalty for leaving the area (``bound`` below, per coordinate).
Observation: ``[self_vel, self_pos, obstacle_rel_pos, other_agent_rel_pos,
other_prey_vel]``; predators see every prey's velocity, prey see the other prey's.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState, check_neighbors, others_index

ADV_SIZE, GOOD_SIZE, OBSTACLE_SIZE = 0.075, 0.05, 0.2
ADV_ACCEL, GOOD_ACCEL = 3.0, 4.0
ADV_MAX_SPEED, GOOD_MAX_SPEED = 1.0, 1.3
# The reference's curriculum: prey speed and acceleration scaled per stage.
PREY_SPEED_FACTOR = (0.5, 0.75, 1.0)


class SimpleTag(MPEEnv):
    def __init__(self, num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=25,
                 continuous_actions=False, curriculum=False, curriculum_stage=0,
                 terminate_on_success=False, num_agent_neighbors=None,
                 num_landmark_neighbors=None):
        if num_good < 1 or num_adversaries < 1 or num_obstacles < 0:
            raise ValueError("simple_tag: needs num_good >= 1, num_adversaries >= 1 and "
                             f"num_obstacles >= 0, got {num_good}, {num_adversaries}, "
                             f"{num_obstacles}")
        check_neighbors(num_agent_neighbors, num_landmark_neighbors)
        a, g, n = num_adversaries, num_good, num_adversaries + num_good
        self.num_adversaries, self.num_good = a, g
        self.terminate_on_success = bool(terminate_on_success)
        self.k_agents, self.k_landmarks = num_agent_neighbors, num_landmark_neighbors
        factor = 1.0
        if curriculum:
            factor = PREY_SPEED_FACTOR[max(0, min(int(curriculum_stage), 2))]
        self._others = others_index(n)
        n_lm = num_obstacles if num_landmark_neighbors is None else num_landmark_neighbors
        if num_agent_neighbors is None:
            adv_obs = 4 + 2 * n_lm + 2 * (n - 1) + 2 * g
            good_obs = 4 + 2 * n_lm + 2 * (n - 1) + 2 * (g - 1)
        else:
            adv_obs = good_obs = 4 + 2 * n_lm + 4 * num_agent_neighbors
        colors = np.array([[0.85, 0.35, 0.35]] * a + [[0.35, 0.85, 0.35]] * g
                          + [[0.25, 0.25, 0.25]] * num_obstacles)
        super().__init__(
            name="simple_tag",
            agent_names=[f"adversary_{i}" for i in range(a)] + [f"agent_{i}" for i in range(g)],
            teams=[0] * a + [1] * g, team_names=("adversary", "good"),
            num_landmarks=num_obstacles,
            size=[ADV_SIZE] * a + [GOOD_SIZE] * g + [OBSTACLE_SIZE] * num_obstacles,
            collide=[True] * (n + num_obstacles), movable=[True] * n, silent=[True] * n,
            dim_c=2, obs_sizes=[adv_obs] * a + [good_obs] * g, max_cycles=max_cycles,
            continuous_actions=continuous_actions, metrics={"touches": "sum"},
            accel=[ADV_ACCEL] * a + [GOOD_ACCEL * factor] * g,
            max_speed=[ADV_MAX_SPEED] * a + [GOOD_MAX_SPEED * factor] * g,
            colors=colors,
        )

    def _reset_state(self, key):
        return self._blank_state(key, landmark_range=0.9)

    def _observe(self, state: MPEState):
        n, a = self.num_agents, self.num_adversaries
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        lm = state.p_pos[n:]
        if self.k_landmarks is None:
            lm_rel = physics.relative(lm, pos)
        else:
            lm_rel = physics.nearest(lm[None] - pos[:, None],
                                     physics.distance(lm[None], pos[:, None]), self.k_landmarks)
        rel = physics.others(pos) - pos[:, None]  # [N, N-1, 2]
        head = jnp.concatenate([vel, pos, lm_rel], axis=-1)
        if self.k_agents is None:
            other_rel = rel.reshape(n, -1)
            adv_vel = jnp.broadcast_to(vel[a:].reshape(1, -1), (a, 2 * self.num_good))
            good_vel = physics.others(vel[a:]).reshape(self.num_good, -1)
            return self._stack_obs([
                jnp.concatenate([head[:a], other_rel[:a], adv_vel], -1),
                jnp.concatenate([head[a:], other_rel[a:], good_vel], -1),
            ])
        # Partial observability: the k nearest others; velocities only of prey.
        d = physics.norm(rel)
        is_prey = (self._others >= a)[..., None]
        other_vel = jnp.where(is_prey, physics.others(vel), 0.0)
        return self._stack_obs([jnp.concatenate(
            [head, physics.nearest(rel, d, self.k_agents),
             physics.nearest(other_vel, d, self.k_agents)], -1)])

    def _hits(self, state):
        """``[A, G]`` which predator touches which prey."""
        a, n = self.num_adversaries, self.num_agents
        pos = state.p_pos
        return physics.is_collision(pos[:a, None], pos[None, a:n], ADV_SIZE, GOOD_SIZE)

    def _rewards(self, state):
        a, n = self.num_adversaries, self.num_agents
        hits = self._hits(state)
        out_of_area = physics.small_sum(physics.bound_penalty(jnp.abs(state.p_pos[a:n])))
        per_prey = physics.small_sum(hits.astype(jnp.float32), axis=0)  # [G]
        prey = -10.0 * per_prey - out_of_area
        predators = jnp.full((a,), 10.0 * physics.small_sum(per_prey))
        return jnp.concatenate([predators, prey])

    def _metrics(self, state):
        return {"touches": jnp.sum(self._hits(state)).astype(jnp.float32)}

    def _is_terminal(self, state):
        if not self.terminate_on_success:
            return jnp.bool_(False)
        return jnp.all(jnp.any(self._hits(state), axis=0))
