"""MAPPO: hand-worked loss values, value normalisation, learning, determinism, config errors."""

import functools
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos import mappo
from ctde.algos.common import networks, valuenorm
from ctde.envs import make
from ctde.run import runner
from ctde.run.spec import RunSpec


def test_clipped_surrogate_hand_worked():
    # ratios 1.5, 0.5, 1.1 with advantages 2, -1, 1 and eps 0.2:
    #   min(3.0, 1.2*2) = 2.4;  min(-0.5, 0.8*-1) = -0.8;  min(1.1, 1.1) = 1.1
    log_prob = jnp.log(jnp.array([1.5, 0.5, 1.1]))
    old = jnp.zeros(3)
    adv = jnp.array([2.0, -1.0, 1.0])
    got = mappo.clipped_surrogate_objective(log_prob, old, adv, 0.2, jnp.ones(3))
    assert got == pytest.approx((2.4 - 0.8 + 1.1) / 3, rel=1e-6)
    masked = mappo.clipped_surrogate_objective(log_prob, old, adv, 0.2, jnp.array([1, 1, 0]))
    assert masked == pytest.approx((2.4 - 0.8) / 2, rel=1e-6)


def test_clipped_value_loss_hand_worked():
    # V=1.5, V_old=1, y=2, eps=.2: max(.5^2/2, (1.2-2)^2/2) = 0.32
    # V=0.5, V_old=0, y=0:        max(.5^2/2, .2^2/2)       = 0.125
    value, old, target = jnp.array([1.5, 0.5]), jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0])
    got = mappo.clipped_value_loss(value, old, target, 0.2, 0.0, jnp.ones(2))
    assert got == pytest.approx((0.32 + 0.125) / 2, rel=1e-6)
    # Huber with delta 1 on an error of 3: 1 * (3 - 0.5) = 2.5; no clipping when eps = 0.
    huber = mappo.clipped_value_loss(jnp.array([3.0]), jnp.array([0.0]), jnp.array([0.0]), 0.0, 1.0,
                                     jnp.ones(1))
    assert huber == pytest.approx(2.5)


def test_advantage_normalisation_ignores_dead_agents():
    adv = jnp.array([1.0, 3.0, 100.0])
    out = mappo.normalize_advantages(adv, jnp.array([1, 1, 0]))
    np.testing.assert_allclose(out[:2], [-1.0, 1.0], atol=1e-6)


def test_value_norm_statistics():
    norm = valuenorm.update(valuenorm.init(), jnp.array([1.0, 3.0]), beta=0.5)
    mean, std = valuenorm.moments(norm)  # debiased: mean 2, E[x^2] 5 -> std 1
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    assert valuenorm.normalize(norm, 3.0) == pytest.approx(1.0)
    assert valuenorm.denormalize(norm, 1.0) == pytest.approx(3.0)


def test_popart_preserves_outputs():
    key = jax.random.PRNGKey(0)
    head = {"kernel": jax.random.normal(key, (8, 1)), "bias": jnp.array([0.3])}
    features = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
    old = valuenorm.update(valuenorm.init(), jnp.array([1.0, 5.0, 2.0]), 0.9)
    new = valuenorm.update(old, jnp.array([40.0, -10.0]), 0.9)
    new_head = valuenorm.popart_preserve(head, old, new)
    before = valuenorm.denormalize(old, features @ head["kernel"] + head["bias"])
    after = valuenorm.denormalize(new, features @ new_head["kernel"] + new_head["bias"])
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)


@functools.lru_cache
def identity_trainer(**config):
    """A trainer and its compiled update, built once per configuration."""
    env = make("identity", num_agents=3, num_actions=4)
    config = {"anneal_lr": False, **config}  # constant learning rates unless a test anneals
    trainer = mappo.make_train(mappo.Config(num_envs=16, rollout_steps=10, **config), env)
    return trainer, jax.jit(trainer.update)


def train_identity(updates, key=0, **config):
    trainer, update = identity_trainer(**config)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(key))
    for _ in range(updates):
        state, metrics = update(state)
    return trainer, state, metrics


def test_learns_identity_task():
    trainer, state, metrics = train_identity(120)
    sums = metrics["episode_sums"]
    accuracy = float(sums["accuracy"] / sums["episodes"])
    assert accuracy > 0.95, accuracy  # random: 0.25
    # decentralised execution from the learned parameters agrees
    env = make("identity", num_agents=3, num_actions=4)
    obs, s = env.reset(jax.random.PRNGKey(7))
    actions, _ = trainer.act(state.params, obs, None, jax.random.PRNGKey(0), True)
    np.testing.assert_array_equal(actions, s.cue[0])


def test_same_seed_same_result_and_different_seed_differs():
    _, a, _ = train_identity(3, key=1)
    _, b, _ = train_identity(3, key=1)
    _, c, _ = train_identity(3, key=2)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(c.params), strict=True)
    )


def test_value_clip_hand_worked_fraction():
    # V=1.5, V_old=1, y=2: outside the window and the clipped branch (0.32) is larger than
    # the unclipped one (0.125): no gradient. V=0.5, V_old=0, y=0: outside, but the
    # unclipped branch is larger: gradient. V=1.1, V_old=1: inside the window.
    value, old, target = jnp.array([1.5, 0.5, 1.1]), jnp.array([1.0, 0.0, 1.0]), jnp.array([2.0, 0.0, 2.0])
    got = mappo.value_clip_fraction(value, old, target, 0.2, 0.0, jnp.ones(3))
    assert got == pytest.approx(1 / 3)
    assert mappo.value_clip_fraction(value, old, target, 0.0, 0.0, jnp.ones(3)) == 0.0


@pytest.mark.parametrize(
    "variant",
    [
        {"value_norm": "running"},
        {"value_norm": "popart"},
        {"value_norm": "none"},
        {"value_norm": "running", "recurrent": True, "chunk_length": 5, "hidden": (16,), "gru_size": 16},
    ],
)
def test_value_clip_is_centred_on_the_rollouts_prediction(variant):
    # One epoch of one minibatch: the only gradient step is taken with the parameters that
    # collected the rollout, so every value sits at the centre of its clip window. (With
    # the anchor re-normalised by the updated running statistics, most samples sat outside
    # it in the first iterations, where the statistics move most, and got no gradient.)
    for updates in (1, 4):
        _, _, metrics = train_identity(updates, num_epochs=1, num_minibatches=1, **variant)
        assert float(metrics["losses"]["value_clip_fraction"]) == 0.0, updates


@pytest.mark.parametrize(
    "variant",
    [
        {"critic_input": "EP"},
        {"critic_input": "EP", "critic_heads": True},
        {"critic_heads": True, "value_norm": "popart"},
        {"critic_heads": True, "recurrent": True, "hidden": (8,), "gru_size": 8},
        {"critic_input": "AS", "value_norm": "popart"},
        {"independent": True, "value_norm": "none", "num_minibatches": 4, "anneal_lr": True,
         "total_updates": 2},
    ],
)
def test_variants_run_and_stay_finite(variant):
    _, state, metrics = train_identity(2, **variant)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(metrics))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


@pytest.mark.parametrize("recurrent", [False, True])
def test_shared_critic_input_is_read_once_per_env(recurrent):
    # CL: every agent's critic input is the same joint observation; with critic heads the
    # critic takes it once (no agent id) and outputs a value per agent.
    env = make("identity", num_agents=3, num_actions=4)
    layer = "GRUTorso_0" if recurrent else "MLP_0"
    for config, rows, width, heads in [({"critic_heads": True}, 1, 3 * env.obs_dim, 3),
                                       ({}, 3, 3 * env.obs_dim + 3, 1)]:
        trainer = mappo.make_train(mappo.Config(num_envs=4, rollout_steps=2, recurrent=recurrent,
                                                hidden=(8,), gru_size=8, anneal_lr=False,
                                                **config), env)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        critic = state.params.critic["params"]
        torso = critic[layer]["MLP_0"] if recurrent else critic[layer]
        assert torso["Dense_0"]["kernel"].shape[0] == width
        assert critic["value_head"]["kernel"].shape[-1] == heads
        assert state.critic_h.shape == (4, rows, 8 if recurrent else 0)
        # the update traces to the same state (test_variants_run_and_stay_finite runs it)
        after, metrics = jax.eval_shape(trainer.update, state)
        assert jax.tree.structure(after) == jax.tree.structure(state)
        assert metrics["losses"]["value_loss"].shape == ()


def test_continuous_actions_improve():
    env = make("identity", num_agents=2, num_actions=2, continuous_actions=True)
    trainer = mappo.make_train(mappo.Config(num_envs=16, rollout_steps=10, anneal_lr=False), env)
    update = jax.jit(trainer.update)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    returns = []
    for _ in range(150):
        state, m = update(state)
        returns.append(float(m["episode_sums"]["return"] / m["episode_sums"]["episodes"]))
    # a random policy in [-1, 1]^2 scores about -6.7 per 10-step episode
    assert np.mean(returns[:5]) < -3.0 and np.mean(returns[-10:]) > -2.0, (returns[:5], returns[-10:])


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"num_envs": 10, "num_minibatches": 3}, "must divide"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"critic_input": "XY"}, "critic_input must be one of"),
        ({"actor_lr": -1.0}, "actor_lr must be > 0"),
    ],
)
def test_invalid_config_is_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        mappo.Config(**bad)


def test_feature_pruned_critic_needs_agent_states():
    with pytest.raises(ValueError, match="critic_input FP needs an env with agent-specific states"):
        mappo.make_train(mappo.Config(critic_input="FP"), make("identity"))


def test_recurrent_mappo_remembers_what_feed_forward_cannot():
    # The action must match the cue shown one step earlier: only memory beats chance (0.25).
    env = make("identity", num_agents=2, num_actions=4, delay=1)
    accuracy = {}
    for recurrent in (False, True):
        config = mappo.Config(num_envs=16, rollout_steps=10, chunk_length=5, num_minibatches=2,
                              recurrent=recurrent, hidden=(32,), gru_size=32, anneal_lr=False)
        trainer = mappo.make_train(config, env)
        update = jax.jit(trainer.update)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        for _ in range(150):
            state, m = update(state)
        accuracy[recurrent] = float(m["episode_sums"]["accuracy"] / m["episode_sums"]["episodes"])
    assert accuracy[True] > 0.8 and accuracy[False] < 0.4, accuracy


def test_annealing_needs_the_number_of_updates():
    env = make("identity")
    with pytest.raises(ValueError, match="anneal_lr needs total_updates.*or anneal_lr=False"):
        mappo.make_train(mappo.Config(), env)
    mappo.make_train(mappo.Config(anneal_lr=False), env)  # constant rates: nothing to know
    with pytest.raises(ValueError, match="total_updates must be >= 0"):
        mappo.Config(total_updates=-1)


def test_learning_rates_reach_zero_after_total_updates():
    # Annealed over 2 updates: the third takes steps of size 0 (up to the rounding of the
    # schedule, ~1e-10), the parameters stay put; at constant rates they move by ~1e-3.
    _, two, _ = train_identity(2, key=3, anneal_lr=True, total_updates=2)
    _, three, _ = train_identity(3, key=3, anneal_lr=True, total_updates=2)
    _, constant, _ = train_identity(3, key=3)
    moved = 0.0
    for x, y, z in zip(jax.tree.leaves(two.params), jax.tree.leaves(three.params),
                       jax.tree.leaves(constant.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-8)
        moved = max(moved, float(np.abs(np.asarray(z) - np.asarray(x)).max()))
    assert moved > 1e-4, moved


def test_readme_python_example_trains_what_the_cli_trains():
    """The README's Python example builds the same learner as ``ctde train mappo
    simple_spread --steps 2e6`` (its learning-rate schedule included)."""
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme) as f:
        (code,) = re.findall(r"## From Python\n\n```python\n(.*?)```", f.read(), re.S)
    built = code.split("learner = trainer.init")[0]  # up to make_train: no compilation
    scope: dict = {}
    exec(built, scope)  # noqa: S102 - the documented example itself
    cli, _ = runner.build(RunSpec(algo="mappo", env="simple_spread", steps=2_000_000))
    assert scope["trainer"].config == cli.config
    assert cli.config.anneal_lr and cli.config.total_updates == 1250
    assert repr(scope["trainer"].env) == repr(cli.env)


def test_recurrent_update_trains_through_unroll_as_step_by_step(monkeypatch):
    # The recurrent loss and its gradient on one batch: MAPPO's sequence call (networks.unroll)
    # against the one-step call looped over time. Episodes of 3 steps restart inside the
    # 6-step training sequences; one epoch of one minibatch, so the logged losses are those
    # of the batch before the update and the update is one Adam step on its gradient.
    env = make("identity", num_agents=2, num_actions=3, max_steps=3)
    config = mappo.Config(num_envs=4, rollout_steps=6, num_epochs=1, num_minibatches=1,
                          recurrent=True, hidden=(8,), gru_size=8, anneal_lr=False)
    start = mappo.make_train(config, env).init(jax.random.PRNGKey(0))

    def one_update():
        return jax.jit(mappo.make_train(config, env).update)(start)

    fast, fast_metrics = one_update()
    monkeypatch.setattr(mappo, "unroll", networks.unroll_reference)
    slow, slow_metrics = one_update()
    for name, value in fast_metrics["losses"].items():
        np.testing.assert_allclose(value, slow_metrics["losses"][name], rtol=1e-5, atol=1e-7,
                                   err_msg=name)
    # Adam's first step moves each parameter by about lr = 2e-3 along its gradient's sign:
    # a wrong gradient shows as differences of that size.
    moved = 0.0
    for a, b, before in zip(jax.tree.leaves(fast.params), jax.tree.leaves(slow.params),
                            jax.tree.leaves(start.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
        moved = max(moved, float(jnp.abs(a - before).max()))
    assert moved > 1e-3


@pytest.mark.parametrize("recurrent", [False, True])
def test_the_bootstrap_value_continues_each_episode(monkeypatch, recurrent):
    # GAE's V(x_{t+1}) is one more critic step on the episode's next input, from the critic's
    # hidden state after step t. Where step t did not end its episode that is the next
    # step's input and carry, so it must equal the next step's V(x_t) (3-step episodes in
    # 7-step rollouts: restarts inside rollouts, carries across them).
    env = make("identity", num_agents=2, num_actions=3, max_steps=3)
    config = mappo.Config(num_envs=4, rollout_steps=7, num_minibatches=1, recurrent=recurrent,
                          hidden=(8,), gru_size=8, anneal_lr=False)
    seen = []
    mappo_gae = mappo.generalized_advantage_estimate

    def gae(reward, value, next_value, terminated, done, *args):
        seen.append((value, next_value, done))
        return mappo_gae(reward, value, next_value, terminated, done, *args)

    monkeypatch.setattr(mappo, "generalized_advantage_estimate", gae)
    trainer = mappo.make_train(config, env)

    @jax.jit
    def update(state):  # with what GAE was given
        seen.clear()
        state, _ = trainer.update(state)
        return state, seen[0]

    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    batches = []
    for _ in range(2):
        state, batch = update(state)
        batches.append(batch)
    ended = 0
    for value, next_value, done in batches:
        done = np.asarray(done)[..., 0]  # [T, B]
        value, next_value = np.asarray(value), np.asarray(next_value)
        cont = ~done[:-1]
        np.testing.assert_allclose(next_value[:-1][cont], value[1:][cont], rtol=1e-5, atol=1e-6)
        ended += int(done.sum())
    assert ended > 0


@pytest.mark.parametrize("fit_dead_values", [True, False])
def test_the_critic_fits_dead_agents_values_unless_told_not_to(monkeypatch, fit_dead_values):
    # Rewards are shared and GAE runs through an agent's death, so the living agents' targets
    # bootstrap from the dead agents' values: by default the critic fits those rows too (the
    # value loss and the value-norm statistics see every agent-step); the actor never does.
    env = make("3m")
    config = mappo.Config(num_envs=8, rollout_steps=60, num_minibatches=1, num_epochs=1,
                          critic_input="FP", hidden=(16,), anneal_lr=False,
                          fit_dead_values=fit_dead_values)
    seen = {}

    def spy(module, name):  # records the mask (the last argument) each call is given
        fn = getattr(module, name)

        def wrapped(*args):
            jax.debug.callback(lambda mask: seen.__setitem__(name, np.asarray(mask)), args[-1])
            return fn(*args)
        monkeypatch.setattr(module, name, wrapped)

    spy(mappo, "clipped_value_loss")
    spy(mappo, "clipped_surrogate_objective")
    spy(valuenorm, "update")
    spy(mappo, "normalize_advantages")
    trainer = mappo.make_train(config, env)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    jax.block_until_ready(jax.jit(trainer.update)(state))
    # The batch's alive masks, as the rollout laid it out and as the minibatch shuffled it.
    for fitted, alive in ((seen["update"], seen["normalize_advantages"]),
                          (seen["clipped_value_loss"], seen["clipped_surrogate_objective"])):
        fitted, alive = fitted.astype(bool), alive.astype(bool)
        assert not alive.all(), "no agent died in the batch: the test would prove nothing"
        assert fitted.shape == alive.shape and fitted.shape[-1] == env.num_agents
        if fit_dead_values:
            assert fitted.all()
        else:
            np.testing.assert_array_equal(fitted, alive)
