"""``MPEEnv``: what every MPE scenario shares (action decoding, the world step, episode
bookkeeping, global state, rendering). A scenario subclass declares its entities and
writes four pure functions: ``_reset_state``, ``_observe``, ``_rewards`` and ``_metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ctde import prng
from ctde.envs.core import Box, Discrete, MultiAgentEnv
from ctde.envs.mpe import physics
from ctde.envs.render import Canvas

Array = jax.Array


@struct.dataclass
class MPEState:
    """Everything that changes during an MPE episode.

    ``p_pos``/``p_vel`` hold every entity: the ``N`` agents first (reference order),
    then the landmarks (reference order). Landmarks never move in any MPE scenario.
    """

    p_pos: Array  # [E, 2]
    p_vel: Array  # [E, 2]
    c: Array  # [N, dim_c] what each agent said on the last step (zeros for silent agents)
    step: Array  # [] int32, steps taken in this episode
    goal: Array  # [G] int32 scenario data (goal landmark indices; see the scenario)


class MPEEnv(MultiAgentEnv):
    """Base class of the nine MPE scenarios (see module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        agent_names: Sequence[str],
        teams: Sequence[int],
        team_names: Sequence[str],
        num_landmarks: int,
        size: Sequence[float],
        collide: Sequence[bool],
        movable: Sequence[bool],
        silent: Sequence[bool],
        dim_c: int,
        obs_sizes: Sequence[int],
        max_cycles: int,
        continuous_actions: bool,
        metrics: dict,
        accel: Sequence[float | None] | None = None,
        max_speed: Sequence[float | None] | None = None,
        colors: np.ndarray | None = None,
    ):
        n = len(agent_names)
        e = n + num_landmarks
        if max_cycles < 1:
            raise ValueError(f"{name}: max_cycles must be >= 1, got {max_cycles}")
        self.name = name
        self.agent_names = tuple(agent_names)
        self.num_agents = n
        self.num_landmarks = num_landmarks
        self.num_entities = e
        self.teams = np.asarray(teams, np.int32)
        self.team_names = tuple(team_names)
        self.max_steps = int(max_cycles)
        self.continuous_actions = bool(continuous_actions)
        self.metrics = dict(metrics)
        self.dim_c = int(dim_c)
        # Entity constants (numpy: they are baked into the compiled step).
        self.size = np.asarray(size, np.float32)
        self.collide = np.asarray(collide, bool)
        self.movable = np.asarray(movable, bool)  # [N]; landmarks are never movable
        self.silent = np.asarray(silent, bool)  # [N]
        accel = [None] * n if accel is None else accel
        self.sensitivity = np.array(
            [physics.DEFAULT_SENSITIVITY if a is None else a for a in accel], np.float32)
        max_speed = [None] * e if max_speed is None else list(max_speed) + [None] * (e - n)
        self.max_speed = np.array([np.inf if s is None else s for s in max_speed], np.float32)
        self.colors = colors  # [E, 3] reference colours for rendering (may be overridden)
        assert self.size.shape == (e,) and self.collide.shape == (e,)
        # Colliding entities always form a prefix of the entity list in MPE (agents, then
        # obstacles), so the collision step works on a slice instead of a gather.
        self.num_colliders = int(np.sum(self.collide))
        assert np.all(self.collide[: self.num_colliders]), "colliders must be a prefix"
        # Forces are only needed on the colliding agents (landmarks never move).
        self.num_colliding_agents = min(self.num_colliders, n)
        self.pair_mask = ~np.eye(self.num_colliding_agents, self.num_colliders, dtype=bool)

        # Action spaces exactly as the reference builds them.
        if self.continuous_actions:
            sizes = [(physics.NUM_MOVES if m else 0) + (0 if s else dim_c)
                     for m, s in zip(self.movable, self.silent, strict=True)]
            self.action_space = Box(0.0, 1.0, max(sizes))
        else:
            sizes = [(physics.NUM_MOVES if m else 1) * (1 if s else dim_c)
                     for m, s in zip(self.movable, self.silent, strict=True)]
            self.action_space = Discrete(max(sizes))
        self.action_sizes = tuple(int(s) for s in sizes)
        self.obs_sizes = tuple(int(s) for s in obs_sizes)
        self.obs_dim = max(self.obs_sizes)
        self.state_dim = int(jax.eval_shape(
            lambda k: self.global_state(self._reset_state(k)), jax.random.key(0)).shape[0])
        # Constants stay constant: a compiled step has them baked in.
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        self._frozen = True

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{self.name} is immutable; make a new env with other parameters")
        object.__setattr__(self, name, value)

    # -- what a scenario writes -----------------------------------------------------
    def _reset_state(self, key: Array) -> MPEState:
        raise NotImplementedError  # abstract

    def _observe(self, state: MPEState) -> Array:
        """``[N, obs_dim]`` zero-padded observations."""
        raise NotImplementedError  # abstract

    def _rewards(self, state: MPEState) -> Array:
        """``[N]`` rewards of the state reached by a step."""
        raise NotImplementedError  # abstract

    def _metrics(self, state: MPEState) -> dict:
        """The per-step task metrics named in ``self.metrics``."""
        raise NotImplementedError  # abstract

    def _is_terminal(self, state: MPEState) -> Array:
        """Early success (only scenarios with ``terminate_on_success``)."""
        return jnp.bool_(False)

    def _extra_state(self, state: MPEState) -> Array:
        """Scenario data the global state needs besides positions/velocities/comm."""
        return jnp.zeros((0,), jnp.float32)

    def _entity_colors(self, state: MPEState) -> np.ndarray:
        """``[E, 3]`` RGB in [0, 1] for rendering; default: the constant colours."""
        return self.colors

    # -- the pure interface ---------------------------------------------------------
    def reset(self, key: Array) -> tuple[Array, MPEState]:
        state = self._reset_state(key)
        return self._observe(state), state

    def observe(self, state: MPEState) -> Array:
        """``[N, obs_dim]`` observations of ``state`` (what ``reset``/``step`` return)."""
        return self._observe(state)

    def step(self, key: Array, state: MPEState, actions: Array):
        """One world step. ``key`` is unused: MPE has no noise."""
        del key
        n = self.num_agents
        u, c = self.decode_actions(actions)
        force = u
        k, m = self.num_colliding_agents, self.num_colliders
        if k:
            coll = physics.collision_forces(state.p_pos[:k], state.p_pos[:m], self.size[:k],
                                            self.size[:m], self.pair_mask)
            force = force + coll if k == n else force.at[:k].add(coll)
        pos, vel = physics.integrate(state.p_pos[:n], state.p_vel[:n], force, self.movable,
                                     self.max_speed[:n])
        state = state.replace(
            p_pos=jnp.concatenate([pos, state.p_pos[n:]]),
            p_vel=jnp.concatenate([vel, state.p_vel[n:]]),
            c=jnp.where(self.silent[:, None], 0.0, c),
            step=state.step + 1,
        )
        reward = self._rewards(state).astype(jnp.float32)
        truncated = state.step >= self.max_steps
        # The reference checks the time limit first: a success on the last step truncates.
        terminated = self._is_terminal(state) & ~truncated
        info = {"alive": jnp.ones(n, bool), **self._metrics(state)}
        return self._observe(state), state, reward, terminated, truncated, info

    def decode_actions(self, actions: Array) -> tuple[Array, Array]:
        """Actions -> (force ``u [N, 2]``, utterance ``c [N, dim_c]``), as the reference.

        Discrete: a movable speaking agent's action is ``move + 5 * word``; moves are
        0 no-op, 1 -x, 2 +x, 3 -y, 4 +y. Out-of-range indices are clamped into the
        agent's own range. Continuous (values clamped to [0, 1], like the reference's
        ClipOutOfBoundsWrapper): ``u = (a[2] - a[1], a[4] - a[3])`` and the utterance is
        the raw vector after the 5 movement entries. ``u`` is scaled by the agent's
        ``accel`` (sensitivity 5 where it has none).
        """
        n, movable = self.num_agents, self.movable
        scale = np.where(movable, self.sensitivity, 0.0).astype(np.float32)[:, None]
        if not self.continuous_actions:
            a = jnp.clip(jnp.asarray(actions).astype(jnp.int32), 0,
                         np.asarray(self.action_sizes) - 1)
            n_move = np.where(movable, physics.NUM_MOVES, 1)
            move = a % n_move
            # Comparisons instead of a table lookup: elementwise, so XLA fuses them.
            u = jnp.stack([(move == 2).astype(jnp.float32) - (move == 1),
                           (move == 4).astype(jnp.float32) - (move == 3)], axis=-1) * scale
            c = jax.nn.one_hot(a // n_move, self.dim_c, dtype=jnp.float32)
            return u, c
        a = jnp.clip(jnp.asarray(actions, jnp.float32), 0.0, 1.0)
        if movable.any():
            u = jnp.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], axis=-1)
            u = jnp.where(movable[:, None], u * scale, 0.0)
        else:
            u = jnp.zeros((n, 2), jnp.float32)
        c = jnp.zeros((n, self.dim_c), jnp.float32)
        if self.dim_c and not self.silent.all():
            # A speaker's words follow its 5 movement entries if it moves, else start at 0.
            speaks_after_moves = movable & ~self.silent
            if speaks_after_moves.any():
                c = jnp.where(speaks_after_moves[:, None],
                              a[:, physics.NUM_MOVES: physics.NUM_MOVES + self.dim_c], c)
            if (~movable & ~self.silent).any():
                c = jnp.where((~movable)[:, None], a[:, : self.dim_c], c)
        return u, c

    def global_state(self, state: MPEState) -> Array:
        """Every entity's position, the agents' velocities, what the speaking agents
        said last step, and the scenario's hidden data (goals, colours)."""
        n = self.num_agents
        parts = [state.p_pos.reshape(-1), state.p_vel[:n][self.movable].reshape(-1),
                 state.c[~self.silent].reshape(-1), self._extra_state(state)]
        return jnp.concatenate([jnp.asarray(p, jnp.float32) for p in parts])

    # -- helpers for scenarios ------------------------------------------------------
    def _blank_state(self, key: Array, agent_range: float = 1.0,
                     landmark_range: float = 1.0, goal: Array | None = None) -> MPEState:
        """Uniform positions (agents in ``±agent_range``, landmarks in
        ``±landmark_range``), zero velocities and utterances, step 0."""
        ka, kl = prng.split(key)
        n, l = self.num_agents, self.num_landmarks
        pos = jnp.concatenate([
            prng.uniform(ka, (n, 2), -agent_range, agent_range),
            prng.uniform(kl, (l, 2), -landmark_range, landmark_range),
        ])
        return MPEState(
            p_pos=pos,
            p_vel=jnp.zeros((n + l, 2), jnp.float32),
            c=jnp.zeros((n, self.dim_c), jnp.float32),
            step=jnp.int32(0),
            goal=jnp.zeros((0,), jnp.int32) if goal is None else goal.astype(jnp.int32),
        )

    def _stack_obs(self, groups: Sequence[Array]) -> Array:
        """Concatenate per-group observations (in agent order), zero-padded to obs_dim."""
        padded = [jnp.pad(g, ((0, 0), (0, self.obs_dim - g.shape[1]))) for g in groups]
        return jnp.concatenate(padded, axis=0).astype(jnp.float32)

    # -- rendering ------------------------------------------------------------------
    def render(self, state: MPEState, size: int = 400) -> np.ndarray:
        """Reference colours; agents outlined; each speaking agent shows ``dim_c`` small
        squares above it, filled by how strongly it uttered each symbol."""
        pos = np.asarray(state.p_pos, np.float64)
        c = np.asarray(state.c, np.float64)
        extent = max(1.0, float(np.max(np.abs(pos) + self.size[:, None])) * 1.05)
        canvas = Canvas(size=size, extent=extent)
        colors = np.asarray(self._entity_colors(state), np.float64)
        n = self.num_agents
        # Landmarks first (largest last so small food stays visible on top of forests).
        order = list(range(n, self.num_entities))
        order.sort(key=lambda i: -self.size[i])
        for i in order + list(range(n)):
            rgb = tuple(int(v) for v in np.clip(colors[i] * 230, 0, 255))
            outline = (0, 0, 0) if i < n else None
            canvas.circle(pos[i, 0], pos[i, 1], float(self.size[i]), rgb, outline=outline)
        cell = min(0.06, 0.35 / max(self.dim_c, 1)) * extent
        for i in np.flatnonzero(~self.silent):
            x0 = pos[i, 0] - cell * self.dim_c / 2
            y0 = pos[i, 1] + self.size[i] + 0.4 * cell
            for k in range(self.dim_c):
                level = float(np.clip(c[i, k], 0, 1))
                shade = tuple(int(255 - level * (255 - v)) for v in (30, 30, 160))
                canvas.rect(x0 + k * cell, y0, x0 + (k + 1) * cell, y0 + cell, (0, 0, 0))
                canvas.rect(x0 + k * cell + 0.12 * cell, y0 + 0.12 * cell,
                            x0 + (k + 1) * cell - 0.12 * cell, y0 + 0.88 * cell, shade)
        return canvas.to_array()


def check_neighbors(k_agents, k_landmarks) -> None:
    """Validate the partial-observability parameters (positive int or None)."""
    for name, k in (("num_agent_neighbors", k_agents), ("num_landmark_neighbors", k_landmarks)):
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {k!r}")


def others_index(n: int) -> np.ndarray:
    """``[n, n-1]`` int32: row ``i`` lists every agent but ``i``, in order (how the
    reference iterates "other agents")."""
    return np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32
                    ).reshape(n, n - 1)
