"""The environment contract every ctde environment follows.

Agents are an array axis ``N``, never dict keys. An environment object holds only
constants (its params); everything that changes lives in a state pytree, so
``reset`` and ``step`` are pure functions that can be jitted and vmapped:

    obs, state = env.reset(key)                                   # obs [N, obs_dim]
    obs, state, reward, terminated, truncated, info = env.step(key, state, actions)

- ``actions``: ``[N]`` int32 for discrete action spaces, ``[N, action_dim]`` float32
  for continuous ones. Heterogeneous action sets are padded to the largest and
  masked by ``avail_actions``.
- ``reward``: ``[N]`` float32 (each agent's own reward; cooperative tasks repeat it).
- ``terminated`` / ``truncated``: episode-level scalar booleans, kept separate so a
  learner bootstraps through a time limit but not through a death or a win.
- ``info``: a dict of arrays: ``alive`` ``[N]`` and the per-step task metrics named
  in ``env.metrics`` (e.g. ``touches``, ``won``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PRNGKey = jax.Array


@dataclasses.dataclass(frozen=True)
class Discrete:
    """``n`` actions, encoded as int32 in ``[0, n)``."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def dtype(self):
        return jnp.int32

    def sample(self, key: PRNGKey, avail: Array | None = None) -> Array:
        if avail is None:
            return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)
        logits = jnp.where(avail, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Box:
    """Continuous actions in ``[low, high]^dim``."""

    low: float
    high: float
    dim: int

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def dtype(self):
        return jnp.float32

    def sample(self, key: PRNGKey, avail: Array | None = None) -> Array:
        return jax.random.uniform(key, (self.dim,), minval=self.low, maxval=self.high)


Space = Discrete | Box

#: How a per-step metric in ``info`` is reduced over an episode by EpisodeStats.
Reduction = Literal["sum", "last", "mean"]


class MultiAgentEnv:
    """Base class: subclasses set the attributes below in ``__init__`` and implement
    ``reset``, ``step``, ``global_state`` (and ``avail_actions`` where actions can be
    unavailable).

    Attributes:
        name: registry name.
        num_agents: N.
        obs_dim: padded observation width; true widths in ``obs_sizes``.
        obs_sizes: tuple of N ints.
        action_space: the (padded) per-agent action space.
        action_sizes: tuple of N ints, the true number of actions (or action dims).
        state_dim: width of ``global_state``.
        teams: ``np.ndarray [N]`` int, which side each agent is on.
        team_names: names of the teams, indexed by ``teams``.
        max_steps: episode limit (truncation).
        metrics: per-step task metrics in ``info`` and their reduction over an episode.
    """

    name: str = "env"
    num_agents: int
    obs_dim: int
    obs_sizes: tuple[int, ...]
    action_space: Space
    action_sizes: tuple[int, ...]
    state_dim: int
    teams: np.ndarray
    team_names: tuple[str, ...] = ("team",)
    max_steps: int
    metrics: dict[str, Reduction] = {}

    # -- the pure interface -------------------------------------------------------
    def reset(self, key: PRNGKey) -> tuple[Array, Any]:
        raise NotImplementedError  # abstract

    def step(self, key: PRNGKey, state: Any, actions: Array):
        raise NotImplementedError  # abstract

    def global_state(self, state: Any) -> Array:
        """The environment-provided global state ``[state_dim]`` (MAPPO's EP input)."""
        raise NotImplementedError  # abstract

    def avail_actions(self, state: Any) -> Array:
        """``[N, A]`` bool. Default: every action of an agent's true set is available."""
        if isinstance(self.action_space, Box):
            return jnp.ones((self.num_agents, 1), bool)
        sizes = jnp.asarray(self.action_sizes)
        return jnp.arange(self.action_space.n)[None, :] < sizes[:, None]

    def resolved_options(self) -> dict:
        """Options whose value the env derives when built (from a rule set, a scenario),
        as the values it runs with; ``envs.settings`` lays them over the factory's
        parameters. Default: none."""
        return {}

    # -- conveniences --------------------------------------------------------------
    @property
    def unwrapped(self) -> MultiAgentEnv:
        return self

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    @property
    def num_teams(self) -> int:
        return int(np.max(self.teams)) + 1

    @property
    def action_dim(self) -> int:
        """Number of discrete actions, or the width of a continuous action."""
        space = self.action_space
        return space.n if isinstance(space, Discrete) else space.dim

    def sample_actions(self, key: PRNGKey, state: Any) -> Array:
        """Uniformly random available actions for every agent, ``[N]`` or ``[N, d]``."""
        keys = jax.random.split(key, self.num_agents)
        avail = self.avail_actions(state)
        return jax.vmap(self.action_space.sample)(keys, avail)

    def check_actions(self, actions) -> None:
        """Host-side validation of an action batch (outside jit); raises ValueError."""
        actions = np.asarray(actions)
        n = self.num_agents
        if self.discrete:
            if actions.shape != (n,):
                raise ValueError(
                    f"{self.name}: discrete actions must have shape ({n},), got {actions.shape}"
                )
            if not np.issubdtype(actions.dtype, np.integer):
                raise ValueError(f"{self.name}: discrete actions must be integers, got {actions.dtype}")
            sizes = np.asarray(self.action_sizes)
            if np.any(actions < 0) or np.any(actions >= sizes):
                raise ValueError(
                    f"{self.name}: action out of range: {actions.tolist()} (sizes {sizes.tolist()})"
                )
        else:
            shape = (n, self.action_space.dim)
            if actions.shape != shape:
                raise ValueError(
                    f"{self.name}: continuous actions must have shape {shape}, got {actions.shape}"
                )
            if not np.all(np.isfinite(actions)):
                raise ValueError(f"{self.name}: continuous actions contain NaN or inf")

    def render(self, state: Any) -> np.ndarray:
        """One RGB frame ``[H, W, 3]`` uint8 of ``state`` (host side, not jitted)."""
        raise NotImplementedError(f"{self.name} cannot render")  # abstract

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, N={self.num_agents}, "
            f"obs_dim={self.obs_dim}, action_space={self.action_space}, max_steps={self.max_steps})"
        )
