"""Step-for-step parity of every MPE scenario with PettingZoo's ``mpe2``.

Each reference episode is reset with a fresh seed, its world is copied into our state,
and both are driven by the same random actions to the end of the episode (truncation),
episode after episode, for 200+ steps. Observations, rewards, terminations,
truncations, positions, velocities and utterances must agree to 1e-5
(``|ours - ref| <= 1e-5 + 1e-5 |ref|``: we compute in float32, the reference in
float64). Jitted runs cover 200+ steps; un-jitted runs 30.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mpe2")

from ctde.envs import make  # noqa: E402
from ctde.envs.mpe import SCENARIOS  # noqa: E402
from ctde.envs.mpe.reference import (  # noqa: E402
    make_reference,
    reference_actions,
    reference_entities,
    state_from_reference,
)

TOL = dict(rtol=1e-5, atol=1e-5)

# Extra parameter sets beyond the defaults (both action kinds run for each).
VARIANTS = {
    "simple_spread": [dict(N=4, local_ratio=0.3, max_cycles=40),
                      dict(num_agent_neighbors=1, num_landmark_neighbors=2),
                      dict(curriculum=True, curriculum_stage=0, terminate_on_success=True)],
    "simple_tag": [dict(num_good=2, num_adversaries=2, num_obstacles=3, max_cycles=50),
                   dict(num_agent_neighbors=2, num_landmark_neighbors=3,
                        terminate_on_success=True),
                   dict(curriculum=True, curriculum_stage=0)],
    "simple_adversary": [dict(N=3, num_agent_neighbors=2, num_landmark_neighbors=1)],
    "simple_reference": [dict(local_ratio=0.2)],
    "simple_world_comm": [dict(num_good=3, num_adversaries=3, num_obstacles=2, num_food=3,
                               num_forests=1)],
}

CASES = [(name, {}) for name in sorted(SCENARIOS)] + [
    (name, params) for name, variants in VARIANTS.items() if name in SCENARIOS
    for params in variants]


def _jitted(env):
    return jax.jit(env.step), jax.jit(env.observe)


def _random_actions(env, rng):
    if env.discrete:
        return np.array([rng.integers(0, s) for s in env.action_sizes], np.int32)
    act = np.zeros((env.num_agents, env.action_dim), np.float32)
    for i, s in enumerate(env.action_sizes):
        act[i, :s] = rng.uniform(0, 1, s)
    return act


def _check_obs(env, obs, ref_obs, where):
    obs = np.asarray(obs)
    for i, agent in enumerate(env.agent_names):
        size = env.obs_sizes[i]
        np.testing.assert_allclose(obs[i, :size], ref_obs[agent], **TOL,
                                   err_msg=f"{where}: obs of {agent}")
        assert not np.any(obs[i, size:]), f"{where}: padding of {agent} not zero"


def run_parity(name, params, steps, jit, seed=0):
    env = make(name, **params)
    ref = make_reference(name, seed=seed, **params)
    step, observe = _jitted(env) if jit else (env.step, env.observe)
    rng = np.random.default_rng(seed)
    key = jax.random.key(0)
    t = episodes = 0
    while t < steps:
        ref_obs, _ = ref.reset(seed=int(rng.integers(2**31)))
        state = state_from_reference(env, ref)
        _check_obs(env, observe(state), ref_obs, f"{name} reset")
        episodes += 1
        done = False
        while not done:
            act = _random_actions(env, rng)
            obs, state, rew, term, trunc, info = step(key, state, jnp.asarray(act))
            r_obs, r_rew, r_term, r_trunc, _ = ref.step(reference_actions(env, act))
            where = f"{name} {params} step {t}"
            _check_obs(env, obs, r_obs, where)
            ref_rew = np.array([r_rew[a] for a in env.agent_names])
            np.testing.assert_allclose(np.asarray(rew), ref_rew, **TOL, err_msg=where)
            assert all(r_trunc[a] == bool(trunc) for a in env.agent_names), where
            assert all(r_term[a] == bool(term) for a in env.agent_names), where
            pos, vel = reference_entities(ref)
            np.testing.assert_allclose(np.asarray(state.p_pos), pos, **TOL, err_msg=where)
            np.testing.assert_allclose(np.asarray(state.p_vel), vel, **TOL, err_msg=where)
            ref_c = np.stack([np.asarray(a.state.c).reshape(env.dim_c)
                              for a in ref.unwrapped.world.agents])
            np.testing.assert_allclose(np.asarray(state.c), ref_c, **TOL, err_msg=where)
            assert int(state.step) == ref.unwrapped.steps
            t += 1
            done = bool(trunc) or bool(term)
            assert done == (not ref.agents)
    return t, episodes


def _ids(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_parity_jitted(case, continuous):
    name, params = case
    steps, episodes = run_parity(name, dict(params, continuous_actions=continuous), 200,
                                 jit=True)
    assert steps >= 200 and episodes >= 2


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_parity_unjitted(name, continuous):
    params = dict(continuous_actions=continuous, max_cycles=15)
    steps, episodes = run_parity(name, params, 30, jit=False, seed=1)
    assert episodes == 2


def test_out_of_range_continuous_is_clipped_like_reference():
    """The reference clips continuous actions to [0, 1] (ClipOutOfBoundsWrapper)."""
    name = "simple_tag"
    env = make(name, continuous_actions=True)
    ref = make_reference(name, seed=3, continuous_actions=True)
    state = state_from_reference(env, ref)
    act = np.random.default_rng(0).uniform(-2, 3, (env.num_agents, env.action_dim))
    act = act.astype(np.float32)
    obs, state, rew, *_ = _jitted(env)[0](jax.random.key(0), state, jnp.asarray(act))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r_obs, r_rew, *_ = ref.step(reference_actions(env, act))
    _check_obs(env, obs, r_obs, "clipped actions")


def _place(ref, positions, velocities=None):
    """Put the reference world's entities at ``positions [E, 2]`` (and velocities)."""
    world = ref.unwrapped.world
    for i, entity in enumerate(world.agents + world.landmarks):
        entity.state.p_pos = np.asarray(positions[i], np.float64)
        if velocities is not None:
            entity.state.p_vel = np.asarray(velocities[i], np.float64)


def _same_obs_and_rewards(env, ref):
    raw, world = ref.unwrapped, ref.unwrapped.world
    state = state_from_reference(env, ref)
    ref_obs = {a: raw.observe(a) for a in env.agent_names}
    _check_obs(env, env.observe(state), ref_obs, "placed")
    ref_rew = [raw.scenario.reward(a, world) for a in world.agents]
    if getattr(raw, "local_ratio", None) is not None:
        glob = raw.scenario.global_reward(world)
        ref_rew = [glob * (1 - raw.local_ratio) + r * raw.local_ratio for r in ref_rew]
    np.testing.assert_allclose(np.asarray(env._rewards(state)), ref_rew, **TOL)


@pytest.mark.parametrize("name", ["simple_tag", "simple_world_comm"])
def test_hand_placed_edge_cases(name):
    """Rare situations random play seldom reaches: prey far outside the area (every
    branch of the boundary penalty), touching pairs, agents inside forests (hidden /
    shared-forest visibility) and on food."""
    env = make(name)
    ref = make_reference(name, seed=0)
    rng = np.random.default_rng(0)
    n, e = env.num_agents, env.num_entities
    for trial in range(6):
        pos = rng.uniform(-1, 1, (e, 2))
        vel = rng.normal(0, 0.5, (e, 2))
        vel[n:] = 0
        if name == "simple_tag":
            pos[3] = [(0.5, 0.95), (1.5, -0.2), (3.0, 0.0), (-0.92, 2.2), (0.0, 0.0),
                      (0.99, -1.01)][trial]
            pos[0] = pos[3] + [0.1, 0.0]  # a predator touching the prey
        else:
            forests = pos[-2:]
            pos[0] = forests[0]  # the leader in forest 0
            pos[1] = forests[0] + 0.1  # a predator in the same forest
            pos[4] = forests[trial % 2] - 0.1  # prey in forest 0 or 1
            pos[5] = pos[n + 1] + 0.01  # prey on a food
            pos[2] = pos[5] + [0.05, 0.0]  # a predator touching it
            pos[5, 0] += [0, 1.2, 2.5, 0.95, -3.0, 0][trial]  # and sometimes far out
        _place(ref, pos, vel)
        _same_obs_and_rewards(env, ref)


def test_crypto_silent_utterance_is_skipped():
    """An all-zero continuous utterance is skipped in the rewards, as in the reference."""
    env = make("simple_crypto", continuous_actions=True)
    ref = make_reference("simple_crypto", seed=1, continuous_actions=True)
    act = np.random.default_rng(0).uniform(0, 1, (3, 4)).astype(np.float32)
    act[0] = 0.0  # Eve says nothing
    _, state, rew, *_ = _jitted(env)[0](jax.random.key(0), state_from_reference(env, ref),
                                        jnp.asarray(act))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, r_rew, *_ = ref.step(reference_actions(env, act))
    np.testing.assert_allclose(np.asarray(rew), [r_rew[a] for a in env.agent_names], **TOL)
    assert float(rew[0]) == 0.0
