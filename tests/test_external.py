"""External PettingZoo ParallelEnvs driven from compiled code (the host-side bridge)."""

import jax
import numpy as np
import pytest

from ctde.algos import mappo
from ctde.envs import make

mpe2 = pytest.importorskip("mpe2")
NAME = "pettingzoo:mpe2.simple_spread_v3"


@pytest.fixture(scope="module")
def bridge():
    return make(NAME)


def test_shapes_match_the_jax_twin(bridge):
    twin = make("simple_spread")
    for attr in ("num_agents", "obs_dim", "obs_sizes", "action_dim", "max_steps"):
        assert getattr(bridge, attr) == getattr(twin, attr), attr
    assert bridge.discrete and bridge.team_names == ("agent",)


def test_jitted_vmapped_steps_follow_the_reference(bridge):
    from mpe2 import simple_spread_v3

    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    obs, state = jax.jit(jax.vmap(bridge.reset))(keys)
    # the bridge seeds each reference env from its key: replay env 1 by hand
    seed = int(jax.random.randint(keys[1], (), 0, 2**31 - 1))
    ref = simple_spread_v3.parallel_env()
    ref_obs, _ = ref.reset(seed=seed)
    np.testing.assert_allclose(obs[1], np.stack([ref_obs[a] for a in ref.agents]), atol=1e-6)
    step = jax.jit(jax.vmap(bridge.step))
    rng = np.random.default_rng(0)
    for t in range(bridge.max_steps):
        actions = rng.integers(0, 5, size=(3, 3)).astype(np.int32)
        obs, state, reward, terminated, truncated, info = step(keys, state, actions)
        ref_obs, ref_rew, _, ref_trunc, _ = ref.step({a: int(actions[1, i])
                                                      for i, a in enumerate(ref.agents)})
        expected = np.stack([ref_obs[a] for a in ref.possible_agents])
        np.testing.assert_allclose(info["final_obs"][1], expected, atol=1e-5)
        np.testing.assert_allclose(reward[1], [ref_rew[a] for a in ref.possible_agents], atol=1e-5)
        assert bool(truncated[1]) == (t == bridge.max_steps - 1)
    assert not bool(terminated.any())


def test_mappo_trains_through_the_bridge(bridge):
    trainer = mappo.make_train(mappo.Config(num_envs=4, rollout_steps=25, num_minibatches=1,
                                            anneal_lr=False), bridge)
    update = jax.jit(trainer.update)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    for _ in range(2):
        state, metrics = update(state)
    sums = metrics["episode_sums"]
    assert int(sums["episodes"]) == 4
    assert -60 < float(sums["return"] / sums["episodes"]) < -5  # random play scores about -26


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("pettingzoo:no_such_module_xyz", {}, "cannot import 'no_such_module_xyz'"),
        ("pettingzoo:mpe2.simple_spread_v3:nope", {}, "has no callable 'nope'"),
        (NAME, {"colour": 1}, "unexpected keyword argument 'colour'"),
    ],
)
def test_bad_external_names_are_clear_errors(name, params, message):
    with pytest.raises(ValueError, match=message):
        make(name, **params)
