"""Any PettingZoo ``ParallelEnv`` as a ctde environment, stepped on the host.

The ctde algorithms compile whole iterations, environment steps included. An external
Python environment cannot be compiled, so this adapter calls it from inside the
compiled code through ``jax.experimental.io_callback``: each env of a batch is a
*slot* in a host-side pool, and the jitted state carries only the slot number and
the arrays the learner reads (global state, available actions, alive flags). It is
much slower than a JAX environment, but any ParallelEnv works, by name:

    make("pettingzoo:mpe2.simple_spread_v3", N=3)       # module.parallel_env(**params)
    make("pettingzoo:my_pkg.my_module:make_env")        # any callable returning a ParallelEnv

Episodes restart on the host (``autoresets = True``): ``info`` carries ``final_obs``
and ``final_global_state`` exactly as ``wrappers.AutoReset`` does for JAX envs.
"""

from __future__ import annotations

import importlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback

from ctde.envs.core import Box, Discrete, MultiAgentEnv

PREFIX = "pettingzoo:"
#: Host envs kept alive at most; the least recently used beyond this are closed.
POOL_SIZE = 8192


@struct.dataclass
class ExternalState:
    slot: jax.Array  # [] int32: which host env
    global_state: jax.Array  # [state_dim]
    avail: jax.Array  # [N, A] bool
    alive: jax.Array  # [N] bool
    t: jax.Array  # [] steps in the current episode


def resolve(name: str) -> Callable:
    """``pettingzoo:pkg.module`` -> ``pkg.module.parallel_env``;
    ``pettingzoo:pkg.module:attr`` -> that callable."""
    target = name[len(PREFIX):]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for env {name!r}: {e}") from None
    factory = getattr(module, attr or "parallel_env", None)
    if not callable(factory):
        raise ValueError(f"{module_name!r} has no callable {attr or 'parallel_env'!r} (env {name!r})")
    return factory


def _flat_size(space) -> int:
    return int(np.prod(space.shape)) if space.shape else 1


class PettingZooEnv(MultiAgentEnv):
    """A PettingZoo ParallelEnv (built by ``factory``) behind the ctde contract."""

    autoresets = True

    def __init__(self, factory: Callable, name: str = "pettingzoo", max_steps: int | None = None):
        from gymnasium import spaces

        self._factory = factory
        probe = factory()
        probe.reset(seed=0)
        self.name = name
        self.agents = list(probe.possible_agents)
        self.num_agents = len(self.agents)
        obs_spaces = [probe.observation_space(a) for a in self.agents]
        act_spaces = [probe.action_space(a) for a in self.agents]
        self.obs_sizes = tuple(_flat_size(s) for s in obs_spaces)
        self.obs_dim = max(self.obs_sizes)
        if all(isinstance(s, spaces.Discrete) for s in act_spaces):
            self.action_sizes = tuple(int(s.n) for s in act_spaces)
            self.action_space = Discrete(max(self.action_sizes))
        elif all(isinstance(s, spaces.Box) for s in act_spaces):
            lows = {float(np.min(s.low)) for s in act_spaces}
            highs = {float(np.max(s.high)) for s in act_spaces}
            if len(lows) > 1 or len(highs) > 1:
                raise ValueError(f"{name}: continuous action boxes must share their bounds")
            self.action_sizes = tuple(_flat_size(s) for s in act_spaces)
            self.action_space = Box(lows.pop(), highs.pop(), max(self.action_sizes))
        else:
            raise ValueError(f"{name}: action spaces must be all Discrete or all Box, got {act_spaces}")
        self._has_state = callable(getattr(probe, "state", None))
        self.state_dim = int(np.size(probe.state())) if self._has_state else self.num_agents * self.obs_dim
        # Teams from agent-name prefixes ("adversary_0", "agent_1" -> 0, 1), in order of appearance.
        prefixes = [a.rsplit("_", 1)[0] for a in self.agents]
        order = list(dict.fromkeys(prefixes))
        self.teams = np.array([order.index(p) for p in prefixes], np.int32)
        self.team_names = tuple(order)
        self.max_steps = int(max_steps or self._find_max_steps(probe))
        self.metrics = {}
        probe.close()
        self._pool: OrderedDict[int, dict] = OrderedDict()
        self._ids = itertools.count()
        self._lock = threading.Lock()

    @staticmethod
    def _find_max_steps(env) -> int:
        for holder in (env, getattr(env, "aec_env", None), getattr(env, "unwrapped", None)):
            value = getattr(holder, "max_cycles", None)
            if value:
                return int(value)
        raise ValueError("cannot tell the episode limit of this env: pass max_steps=")

    # -- host side -----------------------------------------------------------------------
    def _obs_array(self, obs: dict) -> np.ndarray:
        out = np.zeros((self.num_agents, self.obs_dim), np.float32)
        for i, agent in enumerate(self.agents):
            if agent in obs:
                flat = np.asarray(obs[agent], np.float32).reshape(-1)
                out[i, : flat.size] = flat
        return out

    def _host_arrays(self, env, obs):
        gs = (np.asarray(env.state(), np.float32).reshape(-1) if self._has_state
              else self._obs_array(obs).reshape(-1))
        alive = np.array([a in env.agents for a in self.agents])
        avail = np.zeros((self.num_agents, self.action_dim), bool)
        for i, size in enumerate(self.action_sizes):
            avail[i, : size if self.discrete else self.action_dim] = True
        return gs, avail, alive

    def _start(self, slot: int, seed: int):
        entry = self._pool[slot]
        obs, _ = entry["env"].reset(seed=seed)
        entry["obs"] = obs
        return obs

    def _host_reset(self, seed):
        with self._lock:
            slot = next(self._ids)
            while len(self._pool) >= POOL_SIZE:
                _, old = self._pool.popitem(last=False)
                old["env"].close()
            self._pool[slot] = {"env": self._factory(), "rng": np.random.default_rng(int(seed))}
        obs = self._start(slot, int(seed))
        gs, avail, alive = self._host_arrays(self._pool[slot]["env"], obs)
        return self._obs_array(obs), np.int32(slot), gs, avail, alive

    def _host_step(self, slot, actions):
        slot = int(slot)
        entry = self._pool[slot]
        self._pool.move_to_end(slot)
        env = entry["env"]
        acting = list(env.agents)
        index = {a: i for i, a in enumerate(self.agents)}
        if self.discrete:
            act = {a: int(actions[index[a]]) for a in acting}
        else:
            act = {a: np.asarray(actions[index[a]][: self.action_sizes[index[a]]], np.float32)
                   for a in acting}
        obs, rewards, terms, truncs, _ = env.step(act)
        reward = np.zeros(self.num_agents, np.float32)
        for a, r in rewards.items():
            reward[index[a]] = r
        terminated = bool(acting) and all(terms.get(a, False) for a in acting)
        truncated = not terminated and (not env.agents or any(truncs.get(a, False) for a in acting))
        final_obs = self._obs_array(obs)
        final_gs, avail, final_alive = self._host_arrays(env, obs)
        gs, alive = final_gs, final_alive
        if terminated or truncated:
            obs = self._start(slot, int(entry["rng"].integers(2**31)))
            gs, avail, alive = self._host_arrays(env, obs)
            final_obs, obs = final_obs, self._obs_array(obs)
        else:
            obs = final_obs
        return (obs, reward, np.bool_(terminated), np.bool_(truncated),
                final_obs, final_gs, final_alive, gs, avail, alive)

    # -- the jittable contract -------------------------------------------------------------
    def _shapes(self):
        n, a = self.num_agents, self.action_dim
        f32 = jnp.float32
        return {
            "obs": jax.ShapeDtypeStruct((n, self.obs_dim), f32),
            "gs": jax.ShapeDtypeStruct((self.state_dim,), f32),
            "avail": jax.ShapeDtypeStruct((n, a), jnp.bool_),
            "alive": jax.ShapeDtypeStruct((n,), jnp.bool_),
        }

    def reset(self, key):
        s = self._shapes()
        seed = jax.random.randint(key, (), 0, 2**31 - 1)
        obs, slot, gs, avail, alive = io_callback(
            self._host_reset,
            (s["obs"], jax.ShapeDtypeStruct((), jnp.int32), s["gs"], s["avail"], s["alive"]),
            seed,
        )
        return obs, ExternalState(slot, gs, avail, alive, jnp.int32(0))

    def step(self, key, state: ExternalState, actions):
        s = self._shapes()
        scalar = jax.ShapeDtypeStruct((), jnp.bool_)
        reward = jax.ShapeDtypeStruct((self.num_agents,), jnp.float32)
        (obs, reward, terminated, truncated, final_obs, final_gs, final_alive,
         gs, avail, alive) = io_callback(
            self._host_step,
            (s["obs"], reward, scalar, scalar, s["obs"], s["gs"], s["alive"],
             s["gs"], s["avail"], s["alive"]),
            state.slot, actions,
        )
        done = terminated | truncated
        new = ExternalState(state.slot, gs, avail, alive, jnp.where(done, 0, state.t + 1))
        final_state = ExternalState(state.slot, final_gs, avail, final_alive, state.t + 1)
        info = {"alive": final_alive, "final_obs": final_obs, "final_global_state": final_gs,
                "final_state": final_state}
        return obs, new, reward, terminated, truncated, info

    def global_state(self, state: ExternalState):
        return state.global_state

    def avail_actions(self, state: ExternalState):
        return state.avail


def make_external(name: str, **params) -> PettingZooEnv:
    """``make``'s path for ``pettingzoo:...`` names; ``max_steps`` overrides the episode
    limit, every other parameter goes to the env's factory."""
    factory = resolve(name)
    max_steps = params.pop("max_steps", None)
    try:
        factory(**params).close()
    except TypeError as e:
        raise ValueError(f"env {name!r}: {e}") from None
    return PettingZooEnv(lambda: factory(**params), name=name, max_steps=max_steps)
