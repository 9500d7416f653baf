"""ctde envs as PettingZoo ParallelEnvs (``to_parallel_env``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test  # noqa: E402

from ctde.envs import make, names  # noqa: E402
from ctde.envs.pettingzoo import to_parallel_env  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# Every registered env passes; the micro maps share one implementation, so by default two
# of them run and the rest with the slow tests (`make test-slow`) to keep the suite short.
FAST_MICRO = {"micro", "3m"}
ENVS = [n if n.startswith("simple") or n in FAST_MICRO or n == "identity"
        else pytest.param(n, marks=pytest.mark.slow) for n in names()]


@pytest.mark.parametrize("name", ENVS)
def test_parallel_api(name):
    parallel_api_test(to_parallel_env(name), num_cycles=200)


@pytest.mark.parametrize("name", ["simple_tag", "simple_speaker_listener", "simple_world_comm"])
def test_parallel_api_continuous(name):
    parallel_api_test(to_parallel_env(name, continuous_actions=True), num_cycles=200)


def test_agents_and_spaces_like_reference():
    pytest.importorskip("mpe2")
    from mpe2 import simple_world_comm_v3

    ours = to_parallel_env("simple_world_comm")
    ref = simple_world_comm_v3.parallel_env()
    assert ours.possible_agents == ref.possible_agents
    for agent in ref.possible_agents:
        assert ours.action_space(agent) == ref.action_space(agent)
        assert ours.observation_space(agent).shape == ref.observation_space(agent).shape
    assert ours.metadata["name"] == "simple_world_comm"


def test_seeding_episode_end_state_and_render():
    env = to_parallel_env("simple_spread", render_mode="rgb_array", max_cycles=5)
    obs_a, _ = env.reset(seed=3)
    obs_b, _ = env.reset(seed=3)
    obs_c, _ = env.reset(seed=4)
    for agent in env.possible_agents:
        np.testing.assert_array_equal(obs_a[agent], obs_b[agent])
        assert obs_a[agent].dtype == np.float32 and obs_a[agent].shape == (18,)
    assert not np.allclose(obs_a["agent_0"], obs_c["agent_0"])
    assert env.state().shape == env.state_space.shape
    for t in range(5):
        obs, rew, term, trunc, info = env.step({a: 2 for a in env.agents})
        assert set(rew) == set(env.possible_agents)
        assert all(trunc.values()) == (t == 4) and not any(term.values())
    assert env.agents == []
    frame = env.render()
    assert frame.ndim == 3 and frame.dtype == np.uint8


def test_wrapper_equals_env():
    """Stepping through the wrapper gives the env's own rewards, obs and masks."""
    import jax

    env = to_parallel_env("simple_speaker_listener")
    obs, infos = env.reset(seed=0)
    # The wrapper's own jitted reset/step (compiled once), called with the same keys.
    first, state, _ = env._reset(jax.random.split(jax.random.key(0))[1])
    np.testing.assert_allclose(obs["listener_0"], np.asarray(first)[1, :11])
    np.testing.assert_array_equal(infos["speaker_0"]["action_mask"], [1, 1, 1])
    key = jax.random.split(jax.random.split(jax.random.key(0))[0])[1]
    out = env.step({"speaker_0": 1, "listener_0": 3})
    ref = env._step(key, state, np.array([1, 3], np.int32))
    np.testing.assert_allclose(out[0]["listener_0"], np.asarray(ref[0])[1, :11], atol=1e-6)
    assert out[1]["speaker_0"] == pytest.approx(float(ref[2][0]))


def test_bad_inputs():
    env = to_parallel_env("simple_tag")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"agent_7": 0})
    with pytest.raises(ValueError, match="out of range"):
        env.step({"agent_0": 9})
    with pytest.raises(ValueError, match="only accepted with an env name"):
        to_parallel_env(make("simple"), N=3)
    with pytest.raises(ValueError, match="no parameter"):
        to_parallel_env("simple", N=3)
