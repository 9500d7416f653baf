"""LICA: the mixing critic and the adaptive entropy against hand-worked numbers, masks,
learning, determinism, resume, teams and the env checks."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde import envs
from ctde.algos import lica
from ctde.run.spec import build_config

# --- the mixing critic ---------------------------------------------------------------------


def dense(kernel, bias=None):
    kernel = jnp.asarray(kernel, jnp.float32)
    return {"kernel": kernel, "bias": jnp.zeros(kernel.shape[1]) if bias is None else jnp.asarray(bias)}


def hand_built_critic():
    """n = 2 agents, A = 2 actions, S = 1, E = 2, hypernet hidden 1. At s = 1:
    W_1 = [[1, 0], [0, 1], [1, 1], [-1, 2]], b_1 = [0.5, -0.5], w_2 = [2, -1], b_2 = 0.25;
    at s = 2 every one of them doubles (the state's hidden unit is relu(s))."""
    w1 = np.array([[1, 0], [0, 1], [1, 1], [-1, 2]], np.float32)  # [n A, E]
    params = {"params": {
        "w1_hidden": dense([[1.0]]), "w1": dense(w1.reshape(1, 8)),
        "b1": dense([[0.5, -0.5]]),
        "w2_hidden": dense([[1.0]]), "w2": dense([[2.0, -1.0]]),
        "b2_hidden": dense([[1.0]]), "b2": dense([[0.25]]),
    }}
    return lica.MixingCritic(embed=2, hidden=1, w1_hidden=1), params


def test_mixing_critic_and_its_policy_gradient_on_a_hand_built_case():
    critic, params = hand_built_critic()
    p = jnp.array([[0.75, 0.25], [0.5, 0.5]])
    # s = 1: p W_1 = [0.75, 1.75]; h = relu([1.25, 1.25]); Q = 2 * 1.25 - 1.25 + 0.25 = 1.5
    q = critic.apply(params, p, jnp.array([1.0]))
    np.testing.assert_allclose(q, 1.5, rtol=1e-6)
    # dQ/dp_k = sum_e w2_e W1[k, e] (both units active) = 2 W1[k, 0] - W1[k, 1]
    grad = jax.grad(lambda p: critic.apply(params, p, jnp.array([1.0])))(p)
    np.testing.assert_allclose(grad, [[2.0, -1.0], [1.0, -4.0]], rtol=1e-6)
    # s = 2: h = relu(2 [0.75, 1.75] + [1, -1]) = [2.5, 2.5]; Q = 4 * 2.5 - 2 * 2.5 + 0.5
    q2 = critic.apply(params, p, jnp.array([2.0]))
    np.testing.assert_allclose(q2, 5.5, rtol=1e-6)
    # The state multiplies the action path: dQ/dp = 4 (2 W1[:, 0]) - 2 (2 W1[:, 1])
    grad2 = jax.grad(lambda p: critic.apply(params, p, jnp.array([2.0])))(p)
    np.testing.assert_allclose(grad2, [[8.0, -4.0], [4.0, -16.0]], rtol=1e-6)
    # A unit cut by the relu passes no gradient: b_1 pushed down switches unit 1 off.
    params["params"]["b1"] = dense([[0.5, -5.0]])
    grad3 = jax.grad(lambda p: critic.apply(params, p, jnp.array([1.0])))(p)
    np.testing.assert_allclose(grad3, [[2.0, 0.0], [2.0, -2.0]], rtol=1e-6)


def test_mixing_critic_batches_rows_and_counts_parameters():
    critic, params = hand_built_critic()
    p = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(0), (3, 4, 2, 2)))
    s = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 1))
    batched = critic.apply(params, p, s)
    assert batched.shape == (3, 4)
    np.testing.assert_allclose(batched[2, 1], critic.apply(params, p[2, 1], s[2, 1]), rtol=1e-6)
    # Parameter counts: S = 4, n = 2, A = 3, E = 64; hidden 64 (PyMARL2) or n A E (official).
    S, n, A, E, H = 4, 2, 3, 64, 64
    common = (S * E + E) + (S * H + H + H * E + E) + (S * H + H + H + 1)  # b_1, w_2, b_2
    config = lica.Config()
    assert lica.critic_parameter_count(config, S, n, A) == common + S * H + H + H * n * A * E + n * A * E
    wide = n * A * E
    official = dataclasses.replace(config, hypernet="official")
    assert lica.critic_parameter_count(official, S, n, A) == common + S * wide + wide + wide * wide + wide


# --- the actor's terms -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["adaptive", "plain"])
def test_entropy_gradient_equals_the_formula(kind):
    """d(xi H / stop(H))/dp = -xi (log p + 1) / H; plain: -xi (log p + 1)."""
    p = jnp.array([[0.5, 0.3, 0.2, 0.0]])  # the last action unavailable
    alive = jnp.array([True])
    xi = 0.11
    h = float(-(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2)))
    np.testing.assert_allclose(lica.entropy(p, alive), h, rtol=1e-6)
    grad = jax.grad(lambda p: lica.entropy_bonus(lica.entropy(p, alive), xi, kind))(p)
    want = -xi * (np.log([0.5, 0.3, 0.2]) + 1.0) / (h if kind == "adaptive" else 1.0)
    np.testing.assert_allclose(grad[0, :3], want, rtol=1e-5)
    assert grad[0, 3] == 0.0
    # The adaptive term's value is xi whatever H is; its gradient scales as 1 / H.
    if kind == "adaptive":
        np.testing.assert_allclose(lica.entropy_bonus(lica.entropy(p, alive), xi, kind), xi, rtol=1e-6)


def test_entropy_averages_over_alive_agents_only():
    p = jnp.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(lica.entropy(p, jnp.array([True, False])), np.log(2), rtol=1e-6)
    np.testing.assert_allclose(lica.entropy(p, jnp.array([True, True])), np.log(2) / 2, rtol=1e-6)


def test_masked_actions_get_zero_probability_and_zero_gradient():
    logits = jnp.array([[2.0, 5.0, 0.0], [1.0, -1.0, 3.0]])
    avail = jnp.array([[True, False, True], [True, True, False]])
    probs = lica.masked_policy(logits, avail)
    # Unavailable at 0, the rest the softmax renormalised over the available actions.
    soft = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    np.testing.assert_allclose(probs[0], [soft[0], 0.0, soft[1]], rtol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    critic = lica.MixingCritic(embed=8, hidden=8, w1_hidden=8)
    state = jnp.array([0.3, -1.0])
    params = critic.init(jax.random.PRNGKey(0), probs, state)

    def objective(logits):
        p = lica.masked_policy(logits, avail)
        return lica.actor_loss(critic.apply(params, p, state), lica.entropy(p, jnp.ones(2, bool)), 0.11)

    grad = jax.grad(objective)(logits)
    assert np.all(np.isfinite(grad))
    assert grad[0, 1] == 0.0 and grad[1, 2] == 0.0
    assert np.all(np.asarray(grad)[np.asarray(avail)] != 0.0)


def test_critic_loss_and_targets_by_hand():
    np.testing.assert_allclose(lica.critic_loss(jnp.array([1.0, 3.0]), jnp.array([2.0, 0.0])),
                               (1.0 + 9.0) / 2)
    # T = 2, one env: y_1 = r_1 + g Q_2 (the data ends), y_0 = r_0 + g ((1 - l) Q_1 + l y_1)
    y = lica.td_lambda_targets(jnp.array([[1.0], [2.0]]), jnp.array([[4.0], [6.0]]),
                               jnp.zeros((2, 1)), jnp.zeros((2, 1), bool), 0.5, 0.8)
    y1 = 2.0 + 0.5 * 6.0
    np.testing.assert_allclose(y[:, 0], [1.0 + 0.5 * (0.2 * 4.0 + 0.8 * y1), y1], rtol=1e-6)


# --- whole runs ------------------------------------------------------------------------------

# gamma 0.5 as COMA's identity test: the time limit is bootstrapped, so values stay ~r / (1 - gamma).
IDENTITY = dict(num_envs=16, rollout_steps=10, gamma=0.5, target_update_every=20, critic_lr=3e-3,
                actor_lr=3e-3)


@functools.cache
def compiled():
    """(trainer, jitted segment of 25 updates) on identity, compiled once."""
    trainer = lica.make_train(build_config("lica", IDENTITY), envs.make("identity"))
    return trainer, jax.jit(lambda s: jax.lax.scan(lambda s, _: trainer.update(s), s, None, 25))


def accuracy_after(segments: int, seed: int = 0):
    trainer, segment = compiled()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(seed))
    for _ in range(segments):
        state, metrics = segment(state)
    sums = metrics["episode_sums"]
    return float(sums["accuracy"].sum() / sums["episodes"].sum()), state, metrics


def test_lica_learns_identity():
    """Random play scores 0.25; the entropy term keeps the policy stochastic (~0.92 after
    100 updates, 0.35 nats)."""
    accuracy, _, metrics = accuracy_after(4)
    assert accuracy > 0.85, accuracy
    assert np.all(np.isfinite(np.asarray(metrics["losses"]["critic_loss"])))


def test_same_seed_gives_identical_metrics_and_parameters():
    _, s1, m1 = accuracy_after(1, seed=4)
    _, s2, m2 = accuracy_after(1, seed=4)
    for a, b in zip(jax.tree.leaves((s1.params, m1)), jax.tree.leaves((s2.params, m2)), strict=True):
        np.testing.assert_array_equal(a, b)
    _, s3, _ = accuracy_after(1, seed=5)
    assert not np.array_equal(jax.tree.leaves(s1.params)[0], jax.tree.leaves(s3.params)[0])


def test_target_critic_is_copied_every_c_critic_steps():
    trainer, segment = compiled()
    state, _ = segment(jax.jit(trainer.init)(jax.random.PRNGKey(0)))  # 25 critic steps: a copy after 20
    assert int(state.critic_steps) == 25
    online, target = jax.tree.leaves(state.params.critic), jax.tree.leaves(state.target_critic)
    assert not all(np.array_equal(o, t) for o, t in zip(online, target, strict=True))
    trainer2 = lica.make_train(build_config("lica", {**IDENTITY, "target_update_every": 1}),
                               envs.make("identity"))
    state2, _ = jax.jit(trainer2.update)(jax.jit(trainer2.init)(jax.random.PRNGKey(0)))
    for o, t in zip(jax.tree.leaves(state2.params.critic), jax.tree.leaves(state2.target_critic),
                    strict=True):
        np.testing.assert_array_equal(o, t)


# --- teams, settings and envs -------------------------------------------------------------------


def test_predators_learn_against_frozen_or_random_prey():
    env = envs.make("simple_tag")
    for prey in ("frozen", "random"):
        trainer = lica.make_train(lica.Config(num_envs=2, rollout_steps=4, team_algos=("lica", prey)),
                                  env)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        new, metrics = jax.jit(trainer.update)(state)
        assert all(np.isfinite(v) for v in jax.tree.leaves(metrics["losses"]))
        # The critic mixes the three predators' policies only.
        assert new.params.critic["params"]["w1"]["kernel"].shape[1] == 3 * 5 * 64
        if prey == "frozen":  # the prey's parameters never move
            for a, b in zip(jax.tree.leaves(new.params.frozen_actor),
                            jax.tree.leaves(state.params.frozen_actor), strict=True):
                np.testing.assert_array_equal(a, b)
        carry = trainer.init_carry((64,))
        obs = jnp.zeros((64, env.num_agents, env.obs_dim))
        acts = [trainer.act(new.params, obs, carry, jax.random.PRNGKey(k), False)[0][:, -1]
                for k in range(2)]
        # Frozen prey act greedily (same action whatever the key); random prey vary.
        assert np.array_equal(acts[0], acts[1]) == (prey == "frozen")


def test_bad_team_settings_are_refused():
    with pytest.raises(ValueError, match="exactly one learning team"):
        lica.Config(team_algos=("random", "frozen"))
    with pytest.raises(ValueError, match="team_algos entries must be one of"):
        lica.Config(team_algos=("lica", "maddpg"))
    with pytest.raises(ValueError, match="team_algos has 3 entries but simple_tag has 2"):
        lica.make_train(lica.Config(team_algos=("lica", "random", "random")), envs.make("simple_tag"))


def test_competitive_env_is_refused_naming_who_supports_it():
    with pytest.raises(ValueError, match="needs a cooperative env with one team .*competitive "
                                         "envs: maddpg; or lica with one learning team"):
        lica.make_train(lica.Config(), envs.make("simple_tag"))


@pytest.mark.parametrize("args,message", [
    (["simple_spread", "--env.continuous_actions", "true"],
     "lica: entropy='adaptive' divides by H.* use --entropy plain for continuous actions"),
    (["simple_tag"], "lica needs a cooperative env with one team .* --team-algos lica,random"),
])
def test_cli_refuses_in_one_line(tmp_path, args, message):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "ctde.cli", "train", "lica", *args, "--steps", "1000", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert not out.exists()


def test_continuous_identity_is_learned_through_reparameterised_actions():
    """Gaussian GRU actors, tanh(mean + std * noise) into the critic, plain entropy."""
    env = envs.make("identity", num_agents=2, num_actions=2, continuous_actions=True)
    trainer = lica.make_train(build_config("lica", {**IDENTITY, "entropy": "plain",
                                                    "ent_coef": 0.01}), env)
    segment = jax.jit(lambda s: jax.lax.scan(lambda s, _: trainer.update(s), s, None, 25))
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    for _ in range(4):
        state, metrics = segment(state)
    sums = metrics["episode_sums"]
    assert float(sums["return"].sum() / sums["episodes"].sum()) > -3.0  # random play: ~ -6
    obs, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(7), 64))
    actions, _ = trainer.act(state.params, obs, trainer.init_carry((64,)), jax.random.PRNGKey(0), True)
    assert actions.shape == (64, 2, 2) and np.all(np.abs(np.asarray(actions)) <= 1.0)
    # Greedy actions follow each agent's own cue (obs = (cue, time)): closer than the best
    # constant action (0, at 1/3 from a cue uniform on [-1, 1]); 0.17 measured.
    distance = float(np.mean((np.asarray(actions) - np.asarray(obs[..., :2])) ** 2))
    assert distance < 0.25, distance


@pytest.mark.parametrize("env,params", [("3m", {}), ("5m", {"setting": "coma"})])
def test_micro_maps_train_with_dead_agents_masked(env, params):
    trainer = lica.make_train(lica.Config(num_envs=2, rollout_steps=4), envs.make(env, **params))
    state, metrics = jax.jit(trainer.update)(jax.jit(trainer.init)(jax.random.PRNGKey(0)))
    assert all(np.isfinite(v) for v in jax.tree.leaves(metrics["losses"]))
