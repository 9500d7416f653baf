"""simple_world_comm: simple_tag with food, forests that hide agents, and a leader
predator who always sees everyone and can talk to the other predators.

Reference: ``mpe2.simple_world_comm_v3``. Agent order: ``leadadversary_0,
adversary_0..A-2, agent_0..G-1``; landmarks: obstacles, then food, then forests.
The leader speaks ``dim_c = 4`` (discrete actions ``move + 5 * word``: 20), the others
are silent. An agent sees another agent's position (and a prey's velocity) only if both
are in the same forest, or both are outside every forest, or it is the leader; otherwise
those slots are zero. Observations: predators ``[self_vel, self_pos, landmark_rel_pos,
other_rel_pos, prey_vel, in_forest (+1/-1), leader_says]``; prey ``[self_vel, self_pos,
landmark_rel_pos, other_rel_pos, in_forest, other_prey_vel]``.
Rewards: prey ``-5`` per touching predator, ``-2 * bound`` per coordinate (as
simple_tag), ``+2`` per food it touches, ``-0.05 * distance to the nearest food``;
predators ``+5`` per touching pair (shared) and ``-0.1 * own distance to the nearest prey``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe import physics
from ctde.envs.mpe.base import MPEEnv, MPEState

ADV_SIZE, GOOD_SIZE = 0.075, 0.045
OBSTACLE_SIZE, FOOD_SIZE, FOREST_SIZE = 0.2, 0.03, 0.3
DIM_C = 4


class SimpleWorldComm(MPEEnv):
    def __init__(self, num_good=2, num_adversaries=4, num_obstacles=1, num_food=2,
                 max_cycles=25, num_forests=2, continuous_actions=False):
        if num_good < 1 or num_adversaries < 1 or num_food < 1:
            raise ValueError("simple_world_comm: needs num_good, num_adversaries and num_food "
                             f">= 1, got {num_good}, {num_adversaries}, {num_food}")
        if num_obstacles < 0 or num_forests < 0:
            raise ValueError("simple_world_comm: num_obstacles and num_forests must be >= 0")
        a, g, n = num_adversaries, num_good, num_adversaries + num_good
        self.num_adversaries, self.num_good = a, g
        self.num_obstacles, self.num_food, self.num_forests = num_obstacles, num_food, num_forests
        n_lm = num_obstacles + num_food + num_forests
        base = 4 + 2 * n_lm + 2 * (n - 1) + num_forests
        colors = ([[0.65, 0.15, 0.15]] + [[0.95, 0.45, 0.45]] * (a - 1)
                  + [[0.45, 0.95, 0.45]] * g + [[0.25, 0.25, 0.25]] * num_obstacles
                  + [[0.15, 0.15, 0.65]] * num_food + [[0.6, 0.9, 0.6]] * num_forests)
        super().__init__(
            name="simple_world_comm",
            agent_names=(["leadadversary_0"] + [f"adversary_{i}" for i in range(a - 1)]
                         + [f"agent_{i}" for i in range(g)]),
            teams=[0] * a + [1] * g, team_names=("adversary", "good"), num_landmarks=n_lm,
            size=([ADV_SIZE] * a + [GOOD_SIZE] * g + [OBSTACLE_SIZE] * num_obstacles
                  + [FOOD_SIZE] * num_food + [FOREST_SIZE] * num_forests),
            collide=[True] * (n + num_obstacles) + [False] * (num_food + num_forests),
            movable=[True] * n, silent=[False] + [True] * (n - 1), dim_c=DIM_C,
            obs_sizes=[base + 2 * g + DIM_C] * a + [base + 2 * (g - 1)] * g,
            max_cycles=max_cycles, continuous_actions=continuous_actions,
            metrics={"touches": "sum", "food": "sum"},
            accel=[3.0] * a + [4.0] * g, max_speed=[1.0] * a + [1.3] * g,
            colors=np.array(colors),
        )

    def _reset_state(self, key):
        return self._blank_state(key, landmark_range=0.9)

    def _parts(self, state):
        n = self.num_agents
        o, f = n + self.num_obstacles, n + self.num_obstacles + self.num_food
        return state.p_pos[:n], state.p_pos[o:f], state.p_pos[f:]  # agents, food, forests

    def _observe(self, state: MPEState):
        n, a, g = self.num_agents, self.num_adversaries, self.num_good
        pos, vel = state.p_pos[:n], state.p_vel[:n]
        _, _, forests = self._parts(state)
        in_f = physics.is_collision(pos[:, None], forests[None],
                                    self.size[:n, None], FOREST_SIZE)  # [N, T]
        inside = physics.small_any(in_f, axis=1) if self.num_forests else jnp.zeros(n, bool)
        shared = jnp.any(in_f[:, None, :] & in_f[None, :, :], axis=-1)  # [N, N]
        leader = np.arange(n)[:, None] == 0
        visible = shared | (~inside[:, None] & ~inside[None, :]) | leader
        vis_other = physics.drop_diagonal(visible)  # [N, N-1]
        other_rel = jnp.where(vis_other[..., None], physics.others(pos) - pos[:, None], 0.0)
        adv_vel = jnp.where(visible[:a, a:, None], vel[None, a:], 0.0)  # [A, G, 2]
        vis_good = physics.drop_diagonal(visible[a:, a:])  # [G, G-1]
        good_vel = jnp.where(vis_good[..., None], physics.others(vel[a:]), 0.0)
        head = jnp.concatenate([vel, pos, physics.relative(state.p_pos[n:], pos),
                                other_rel.reshape(n, -1)], axis=-1)
        in_forest = jnp.where(in_f, 1.0, -1.0)
        says = jnp.broadcast_to(state.c[0], (a, DIM_C))
        return self._stack_obs([
            jnp.concatenate([head[:a], adv_vel.reshape(a, -1), in_forest[:a], says], -1),
            jnp.concatenate([head[a:], in_forest[a:], good_vel.reshape(g, -1)], -1),
        ])

    def _hits(self, state):
        a, n = self.num_adversaries, self.num_agents
        pos = state.p_pos
        return physics.is_collision(pos[:a, None], pos[None, a:n], ADV_SIZE, GOOD_SIZE)

    def _rewards(self, state):
        a = self.num_adversaries
        agents, food, _ = self._parts(state)
        prey = agents[a:]
        hits = self._hits(state)  # [A, G]
        food_d = physics.distance(prey[:, None], food[None])  # [G, F]
        per_prey = physics.small_sum(hits.astype(jnp.float32), axis=0)  # [G]
        eaten = (food_d < GOOD_SIZE + FOOD_SIZE).astype(jnp.float32)
        good = (-5.0 * per_prey
                - 2.0 * physics.small_sum(physics.bound_penalty(jnp.abs(prey)))
                + 2.0 * physics.small_sum(eaten) - 0.05 * physics.small_min(food_d))
        nearest_prey = physics.small_min(physics.distance(agents[:a, None], prey[None]))
        adversary = -0.1 * nearest_prey + 5.0 * physics.small_sum(per_prey)
        return jnp.concatenate([adversary, good])

    def _metrics(self, state):
        agents, food, _ = self._parts(state)
        eaten = physics.distance(agents[self.num_adversaries:, None], food[None]) < (
            GOOD_SIZE + FOOD_SIZE)
        return {"touches": jnp.sum(self._hits(state)).astype(jnp.float32),
                "food": jnp.sum(eaten).astype(jnp.float32)}
