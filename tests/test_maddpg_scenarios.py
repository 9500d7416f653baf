"""MADDPG on every MPE scenario, discrete and continuous, cooperative and competitive,
with the per-team learners ("maddpg", "ddpg", "random", "frozen"), policy inference and the
original code's soft actions.

Every scenario is traced (shapes, dtypes, the learner-state structure) in a second or
two; three representative ones also compile and run two updates. All nine run for
real under ``-m slow``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos import maddpg
from ctde.envs import make

TINY = dict(num_envs=2, rollout_steps=4, update_every=4, batch_size=8, buffer_size=64, warmup_steps=0)

# (scenario, continuous actions, settings); the first three also run in the default suite.
SCENARIOS = [
    ("simple_tag", False, {"team_algos": ("maddpg", "frozen"), "gradient_estimator": "gs"}),
    ("simple_world_comm", False, {"team_algos": ("maddpg", "ddpg")}),
    ("simple_push", True, {"team_algos": ("maddpg", "random"), "policy_inference": True,
                           "soft_actions": True}),
    ("simple", True, {}),
    ("simple_adversary", False, {"team_algos": ("ddpg", "maddpg"), "gradient_estimator": "gst"}),
    ("simple_crypto", True, {"policy_inference": True}),
    ("simple_reference", False, {"gradient_estimator": "tags"}),
    ("simple_speaker_listener", False, {"gradient_estimator": "grmc", "policy_inference": True}),
    ("simple_spread", True, {"team_algos": ("ddpg",)}),
]
RUN = [pytest.param(*s, id=s[0]) if i < 3 else pytest.param(*s, id=s[0], marks=pytest.mark.slow)
       for i, s in enumerate(SCENARIOS)]


def build(name, continuous, settings):
    env = make(name, continuous_actions=continuous)
    return env, maddpg.make_train(maddpg.Config(**TINY, **settings), env)


def expected_losses(env, settings):
    roles = maddpg.agent_roles(maddpg.Config(**settings), env)
    names = {"critic_loss", "policy_q"}
    if env.num_teams > 1:
        names |= {f"{loss}_{team}" for loss in ("critic_loss", "policy_q")
                  for k, team in enumerate(env.team_names) if roles["learns"][env.teams == k].any()}
    if settings.get("policy_inference"):
        names.add("approx_log_likelihood")
    return names


@pytest.mark.parametrize("name,continuous,settings", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_traces_on_every_mpe_scenario(name, continuous, settings):
    env, trainer = build(name, continuous, settings)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    new, metrics = jax.eval_shape(trainer.update, state)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for x, y in zip(jax.tree.leaves(new), jax.tree.leaves(state), strict=True):
        assert (x.shape, x.dtype) == (y.shape, y.dtype)
    assert set(metrics["losses"]) == expected_losses(env, settings)
    assert {f"return_{t}" for t in env.team_names if env.num_teams > 1} <= set(metrics["episode_sums"])
    n = env.num_agents
    obs = jax.ShapeDtypeStruct((3, n, env.obs_dim), jnp.float32)
    actions, _ = jax.eval_shape(lambda p, o: trainer.act(p, o, None, jax.random.PRNGKey(0), True),
                                state.params, obs)
    assert actions.shape == ((3, n) if env.discrete else (3, n, env.action_dim))


@pytest.mark.parametrize("name,continuous,settings", RUN)
def test_two_updates_run_and_stay_finite(name, continuous, settings):
    env, trainer = build(name, continuous, settings)

    def two_updates(key):
        state = trainer.init(key)
        after_one, _ = trainer.update(state)
        after_two, metrics = trainer.update(after_one)
        return state, after_two, metrics

    run = jax.jit(two_updates).lower(jax.random.PRNGKey(0)).compile()
    before, after, metrics = run(jax.random.PRNGKey(0))
    assert int(after.env_steps) == 2 * trainer.steps_per_update
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((after.params, metrics)))
    roles = maddpg.agent_roles(trainer.config, env)
    for network in ("actor", "critic"):
        for x, y in zip(jax.tree.leaves(getattr(after.params, network)),
                        jax.tree.leaves(getattr(before.params, network)), strict=True):
            changed = np.any(np.asarray(x != y).reshape(env.num_agents, -1), axis=1)
            # learners move; "frozen" and "random" agents keep their parameters
            np.testing.assert_array_equal(changed, roles["learns"], err_msg=network)
    if trainer.config.soft_actions:  # the relaxed one-hot itself is the env's action
        actions = np.asarray(after.buffer.data.action[:after.buffer.size])
        np.testing.assert_allclose(actions.sum(-1), 1.0, rtol=1e-5)
    if roles["random"].any():  # a random team acts at random even when deterministic
        obs, _ = env.reset(jax.random.PRNGKey(1))
        act = jax.jit(lambda k: trainer.act(after.params, obs, None, k, True)[0])
        a, b = np.asarray(act(jax.random.PRNGKey(2))), np.asarray(act(jax.random.PRNGKey(3)))
        assert not np.allclose(a[roles["random"]], b[roles["random"]])
        np.testing.assert_array_equal(a[~roles["random"]], b[~roles["random"]])
