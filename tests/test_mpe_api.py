"""The MPE envs against the ctde environment contract: spaces, batching, determinism,
input validation, wrappers, rendering and the random-policy return."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.envs import make, names, parameters, training_env
from ctde.envs.core import Box, Discrete
from ctde.envs.mpe import SCENARIOS

ALL = sorted(SCENARIOS)


@pytest.fixture(scope="module")
def mpe2_envs():
    pytest.importorskip("mpe2")
    from ctde.envs.mpe.reference import make_reference

    def build(name, **params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make_reference(name, seed=0, **params)

    return build


def test_registered():
    assert set(ALL) <= set(names())
    assert len(ALL) == 9
    assert parameters("simple_tag")["num_good"] == 1
    assert parameters("simple_spread")["local_ratio"] == 0.5


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("name", ALL)
def test_spaces_match_reference(name, continuous, mpe2_envs):
    env = make(name, continuous_actions=continuous)
    ref = mpe2_envs(name, continuous_actions=continuous)
    assert list(env.agent_names) == ref.possible_agents
    for i, agent in enumerate(ref.possible_agents):
        assert env.obs_sizes[i] == ref.observation_space(agent).shape[0]
        space = ref.action_space(agent)
        if continuous:
            assert env.action_sizes[i] == space.shape[0]
        else:
            assert env.action_sizes[i] == space.n
    assert env.obs_dim == max(env.obs_sizes)
    assert env.action_space == (Box(0.0, 1.0, max(env.action_sizes)) if continuous
                                else Discrete(max(env.action_sizes)))
    assert env.teams.shape == (env.num_agents,) and env.max_steps == 25
    assert env.num_teams == len(env.team_names)
    assert env.name == name


# Homogeneous, predator-prey, heterogeneous obs/actions with an immovable speaker, and
# forests + a talking leader: between them every code path of the shared step.
BATCH_CASES = ["simple_spread", "simple_tag", "simple_speaker_listener", "simple_world_comm"]


@pytest.mark.parametrize("name", BATCH_CASES)
def test_batch_determinism_and_shapes(name):
    """vmap over a batch equals single-env calls; the same key gives the same result."""
    env = make(name)
    n, batch = env.num_agents, 4
    keys = jax.random.split(jax.random.key(7), batch)

    @jax.jit
    def rollout(keys):
        obs, state = jax.vmap(env.reset)(keys)
        acts = jax.vmap(env.sample_actions)(keys, state)
        out = jax.vmap(env.step)(keys, state, acts)
        return obs, state, acts, out, jax.vmap(env.global_state)(out[1])

    obs, state, acts, (obs2, state2, rew, term, trunc, info), gs = rollout(keys)
    assert obs.shape == (batch, n, env.obs_dim) and obs.dtype == jnp.float32
    assert obs2.shape == (batch, n, env.obs_dim) and rew.shape == (batch, n)
    assert rew.dtype == jnp.float32 and term.shape == (batch,) and trunc.shape == (batch,)
    assert gs.shape == (batch, env.state_dim)
    assert info["alive"].shape == (batch, n) and set(env.metrics) <= set(info)
    for metric in env.metrics:
        assert info[metric].shape == (batch,)
    assert env.avail_actions(jax.tree.map(lambda x: x[0], state)).shape[0] == n
    if name in ("simple_tag", "simple_speaker_listener"):
        # Row 0 of the batch equals an un-batched call with the same key.
        o1, s1 = jax.jit(env.reset)(keys[0])
        np.testing.assert_allclose(o1, obs[0], atol=1e-6)
        o2, *_ = jax.jit(env.step)(keys[0], s1, acts[0])
        np.testing.assert_allclose(o2, obs2[0], atol=1e-5)
    # Same key, same episode; another key, another one.
    again = rollout(keys)
    np.testing.assert_array_equal(again[0], obs)
    other = rollout(jax.random.split(jax.random.key(8), batch))
    assert not np.allclose(other[1].p_pos, state.p_pos)


def test_truncation_at_max_cycles_and_never_terminates():
    env = make("simple_tag", max_cycles=5)
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.key(0))
    for t in range(1, 8):
        _, state, _, term, trunc, _ = step(jax.random.key(t), state,
                                           env.sample_actions(jax.random.key(t), state))
        assert bool(trunc) == (t >= 5) and not bool(term)


def test_check_actions_gives_clear_errors():
    env = make("simple_speaker_listener")  # heterogeneous: speaker 3 words, listener 5 moves
    env.check_actions(np.array([2, 4]))
    with pytest.raises(ValueError, match="shape"):
        env.check_actions(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        env.check_actions(np.array([3, 0]))  # the speaker has only 3 words
    with pytest.raises(ValueError, match="integers"):
        env.check_actions(np.array([0.5, 1.0]))
    cont = make("simple_tag", continuous_actions=True)
    cont.check_actions(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="shape"):
        cont.check_actions(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        cont.check_actions(np.full((4, 5), np.nan, np.float32))


def test_avail_actions_mask_padded_sets():
    env = make("simple_speaker_listener")
    _, state = env.reset(jax.random.key(0))
    avail = np.asarray(env.avail_actions(state))
    np.testing.assert_array_equal(avail, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    world = make("simple_world_comm")
    assert world.action_sizes == (20, 5, 5, 5, 5, 5)
    keys = jax.random.split(jax.random.key(1), 64)
    acts = jax.jit(jax.vmap(lambda k: world.sample_actions(k, world.reset(k)[1])))(keys)
    assert np.all(np.asarray(acts) < np.asarray(world.action_sizes))
    assert np.asarray(acts)[:, 0].max() >= 5  # the leader's words are sampled too


def test_inside_jit_discrete_clamped_continuous_clipped():
    """Out-of-range actions inside jit: discrete indices clamp into the agent's range,
    continuous values clip to [0, 1] (what the reference's wrapper does)."""
    env = make("simple_spread")
    _, state = env.reset(jax.random.key(0))
    u, _ = env.decode_actions(jnp.array([-3, 4, 99]))
    np.testing.assert_allclose(u, [[0, 0], [0, 5], [0, 5]])
    cont = make("simple_spread", continuous_actions=True)
    u, _ = cont.decode_actions(jnp.array([[0, 0, 2, -1, 0.5]] * 3, jnp.float32))
    np.testing.assert_allclose(u, [[5, 2.5]] * 3)  # clipped to [0, 0, 1, 0, 0.5]


def test_bad_parameters_give_clear_errors():
    with pytest.raises(ValueError, match="no parameter 'num_goods'"):
        make("simple_tag", num_goods=2)
    with pytest.raises(ValueError, match="Did you mean 'simple_tag'"):
        make("simple_tagg")
    with pytest.raises(ValueError, match="local_ratio"):
        make("simple_spread", local_ratio=1.5)
    with pytest.raises(ValueError, match="N must be"):
        make("simple_spread", N=0)
    with pytest.raises(ValueError, match="num_agent_neighbors"):
        make("simple_tag", num_agent_neighbors=0)
    with pytest.raises(ValueError, match="max_cycles"):
        make("simple", max_cycles=0)


def test_scenario_parameters_change_the_world():
    env = make("simple_tag", num_good=2, num_adversaries=4, num_obstacles=1)
    assert env.num_agents == 6 and env.num_landmarks == 1
    assert list(env.teams) == [0, 0, 0, 0, 1, 1]
    spread = make("simple_spread", N=5, num_agent_neighbors=2, num_landmark_neighbors=3)
    assert spread.obs_sizes == (4 + 6 + 4 + 4,) * 5
    world = make("simple_world_comm", num_forests=0)
    assert world.num_landmarks == 3


def test_wrappers_auto_reset_and_episode_stats():
    env = training_env(make("simple_spread", max_cycles=10))
    obs, state = env.reset(jax.random.key(0))

    @jax.jit
    def run(state, key):
        def body(state, k):
            acts = env.sample_actions(k, state)
            obs, state, rew, term, trunc, info = env.step(k, state, acts)
            return state, (rew, trunc, info)
        return jax.lax.scan(body, state, jax.random.split(key, 25))

    state, (rew, trunc, info) = run(state, jax.random.key(1))
    done = np.asarray(info["episode_done"])
    assert np.flatnonzero(done).tolist() == [9, 19] and np.array_equal(done, np.asarray(trunc))
    ep = info["episode"]
    np.testing.assert_allclose(ep["return"][9], np.asarray(rew[:10]).sum(0), rtol=1e-5)
    np.testing.assert_allclose(ep["return"][19], np.asarray(rew[10:20]).sum(0), rtol=1e-5)
    assert int(ep["length"][19]) == 10
    np.testing.assert_allclose(ep["collisions"][9], np.asarray(info["collisions"][:10]).sum())
    assert float(ep["occupied_landmarks"][19]) == float(info["occupied_landmarks"][19])
    # After the reset, the episode counter restarted.
    assert int(state.episode_length) == 5 and int(state.env_state.step) == 5
    final = np.asarray(info["final_obs"][9])
    assert final.shape == (3, env.obs_dim)


@pytest.mark.parametrize("name", ALL)
def test_render(name):
    env = make(name)
    _, state = jax.jit(env.reset)(jax.random.key(0))
    state = state.replace(c=jnp.full_like(state.c, 0.7))  # something said, for the markers
    frame = env.render(state, size=120)
    assert frame.shape == (120, 120, 3) and frame.dtype == np.uint8
    assert frame.min() < 100  # something was drawn on the white background


def test_random_policy_return_matches_reference(mpe2_envs):
    """simple_spread (N=3, local_ratio=0.5, 25 steps): mean per-agent episode return of a
    uniform random policy, ours (1024 episodes) vs mpe2 (100 episodes). Both ~ -26."""
    env = make("simple_spread")

    @jax.jit
    @jax.vmap
    def episode(key):
        _, state = env.reset(key)

        def body(state, k):
            _, state, rew, *_ = env.step(k, state, env.sample_actions(k, state))
            return state, rew
        return jax.lax.scan(body, state, jax.random.split(key, 25))[1].sum(0).mean()

    ours = np.asarray(episode(jax.random.split(jax.random.key(0), 1024)))
    ref = mpe2_envs("simple_spread")
    rng = np.random.default_rng(0)
    theirs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ep in range(100):
            ref.reset(seed=ep)
            total = 0.0
            while ref.agents:
                _, rew, *_ = ref.step({a: int(rng.integers(5)) for a in ref.agents})
                total += np.mean(list(rew.values()))
            theirs.append(total)
    theirs = np.asarray(theirs)
    se = np.hypot(ours.std() / np.sqrt(len(ours)), theirs.std() / np.sqrt(len(theirs)))
    assert abs(ours.mean() - theirs.mean()) < 4 * se
    assert -29 < ours.mean() < -23


def test_env_constants_are_frozen():
    env = make("simple_tag")
    with pytest.raises(AttributeError, match="immutable"):
        env.max_steps = 10
    with pytest.raises(ValueError, match="read-only"):
        env.size[0] = 1.0


def test_physics_helpers_equal_plain_numpy():
    from ctde.envs.mpe import physics
    from ctde.envs.mpe.base import others_index

    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    for axis in (0, 1, -1):
        np.testing.assert_allclose(physics.small_sum(jnp.asarray(x), axis), x.sum(axis),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(physics.small_min(jnp.asarray(x), axis), x.min(axis))
    assert physics.small_sum(jnp.zeros((3, 0, 2)), 1).shape == (3, 2)
    for n in (1, 2, 5):
        v = np.arange(n * 2.0).reshape(n, 2)
        np.testing.assert_array_equal(physics.others(jnp.asarray(v)), v[others_index(n)])
    # nearest: closest first, cut or zero-padded to k slots.
    vals = jnp.asarray([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])
    dist = jnp.asarray([[3.0, 1.0, 2.0]])
    np.testing.assert_array_equal(physics.nearest(vals, dist, 2), [[2, 2, 3, 3]])
    np.testing.assert_array_equal(physics.nearest(vals, dist, 4), [[2, 2, 3, 3, 1, 1, 0, 0]])
