"""COMA and its baselines: the paper's terms against hand-worked and brute-force numbers,
masks, learning, determinism, resume and the env checks."""

from __future__ import annotations

import functools
import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde import envs
from ctde.algos import coma
from ctde.algos.common import actors
from ctde.algos.common.networks import ValueNetwork
from ctde.algos.common.returns import lambda_return
from ctde.run.spec import build_config

# --- TD(lambda) ----------------------------------------------------------------------------


def n_step_return(reward, next_value, terminated, bootstrap, gamma, t, b, k):
    """G^(k)_t = r_t + .. + gamma^(k-1) r_{t+k-1} + gamma^k V(s_{t+k}) (no V after a
    termination; past the data, ``bootstrap``)."""
    g = sum(gamma**i * reward[t + i, b] for i in range(k))
    last = t + k - 1
    if terminated[last, b]:
        return g
    tail = next_value[last, b] if last < reward.shape[0] - 1 else bootstrap[b]
    return g + gamma**k * tail


def forward_view_lambda_return(reward, next_value, terminated, done, bootstrap, gamma, lam):
    """The lambda-return as its definition: (1 - lam) sum_n lam^(n-1) G^(n), the n-step
    returns cut at the episode's end (the rest of the weight on the longest return) and at
    the end of the data (bootstrapped with ``bootstrap``)."""
    T, B = reward.shape
    out = np.zeros((T, B))
    for b in range(B):
        for t in range(T):
            end = t  # the episode's last step inside the data
            while end < T - 1 and not done[end, b]:
                end += 1
            horizon = end - t + 1
            g = [n_step_return(reward, next_value, terminated, bootstrap, gamma, t, b, k)
                 for k in range(1, horizon + 1)]
            out[t, b] = (sum((1 - lam) * lam ** (k - 1) * g[k - 1] for k in range(1, horizon))
                         + lam ** (horizon - 1) * g[-1])
    return out


@pytest.mark.parametrize("lam", [0.8, 0.0, 1.0])
def test_td_lambda_targets_equal_the_forward_view(lam):
    rng = np.random.default_rng(3)
    T, B = 12, 5
    reward = rng.normal(size=(T, B))
    next_value = rng.normal(size=(T, B))
    done = rng.random((T, B)) < 0.25
    terminated = done & (rng.random((T, B)) < 0.5)  # the other ends are time limits
    bootstrap = next_value[-1]  # as COMA passes it: V of the step after the data
    got = lambda_return(jnp.asarray(reward), jnp.asarray(next_value), jnp.asarray(terminated),
                        jnp.asarray(done), jnp.asarray(bootstrap), 0.99, lam)
    want = forward_view_lambda_return(reward, next_value, terminated, done, bootstrap, 0.99, lam)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- the critic's input and the counterfactual advantage ---------------------------------


def test_critic_input_on_a_hand_built_case():
    state = jnp.array([7.0, 8.0])
    obs = jnp.array([[1.0], [2.0]])
    joint = jax.nn.one_hot(jnp.array([2, 0]), 3)  # agent 0 took 2, agent 1 took 0
    prev = jax.nn.one_hot(jnp.array([1, 1]), 3)
    x = coma.critic_input(state, obs, joint, prev)
    # (s, o^a, id, u^{-a} with a's slot zeroed, u_{t-1} of all agents)
    np.testing.assert_array_equal(x[0], [7, 8, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(x[1], [7, 8, 2, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0])


def test_counterfactual_advantage_equals_brute_force_over_joint_actions():
    n, num_actions = 3, 3
    key = jax.random.PRNGKey(0)
    state, obs = jax.random.normal(key, (4,)), jax.random.normal(jax.random.PRNGKey(1), (n, 2))
    prev = jax.nn.one_hot(jnp.array([0, 2, 1]), num_actions)
    action = jnp.array([1, 0, 2])
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(2), (n, num_actions)))
    net = ValueNetwork((16,), num_values=num_actions)
    params = net.init(key, coma.critic_input(state, obs, jax.nn.one_hot(action, num_actions), prev))

    def q_of(joint):  # [n] ints -> Q^a(s, joint) for every agent a (its own action's output)
        out = net.apply(params, coma.critic_input(state, obs, jax.nn.one_hot(joint, num_actions), prev))
        return out[jnp.arange(n), joint]

    fast = coma.counterfactual_advantage(
        net.apply(params, coma.critic_input(state, obs, jax.nn.one_hot(action, num_actions), prev)),
        probs, action)
    for a in range(n):
        baseline = 0.0
        for joint in itertools.product(range(num_actions), repeat=n):
            if all(joint[b] == action[b] for b in range(n) if b != a):
                baseline += probs[a, joint[a]] * q_of(jnp.array(joint))[a]
        np.testing.assert_allclose(fast[a], q_of(action)[a] - baseline, rtol=1e-5, atol=1e-6)


def test_td_error_and_policy_gradient_loss_by_hand():
    delta = coma.td_error(jnp.array([1.0, 2.0]), jnp.array([0.5, 0.5]), jnp.array([2.0, 2.0]),
                          jnp.array([0.0, 1.0]), 0.9)
    np.testing.assert_allclose(delta, [1.0 + 1.8 - 0.5, 2.0 - 0.5])
    log_p = jnp.log(jnp.array([0.5, 0.25, 0.8]))
    loss = coma.policy_gradient_loss(jnp.array([2.0, -1.0, 5.0]), log_p, jnp.array([1, 1, 0]))
    np.testing.assert_allclose(loss, -(2.0 * np.log(0.5) - np.log(0.25)) / 2, rtol=1e-6)


# --- masks --------------------------------------------------------------------------------


def test_exploration_floor_gives_unavailable_actions_probability_zero():
    logits = jnp.array([[2.0, 5.0, 0.0, -1.0]])
    avail = jnp.array([[True, False, True, True]])
    probs = actors.exploration_floor(logits, avail, 0.3)
    soft = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(probs[0], [0.7 * soft[0] + 0.1, 0.0, 0.7 * soft[1] + 0.1,
                                          0.7 * soft[2] + 0.1], rtol=1e-6)
    draws = actors.sample(jax.random.PRNGKey(0), jnp.broadcast_to(probs, (5000, 4)))
    assert not np.any(np.asarray(draws) == 1)
    grad = jax.grad(lambda lg: jnp.log(actors.exploration_floor(lg, avail, 0.3)[0, 0]))(logits)
    assert np.all(np.isfinite(grad)) and grad[0, 1] == 0.0


def test_dead_agents_get_no_actor_gradient():
    def loss(log_p):
        return coma.policy_gradient_loss(jnp.array([1.0, -2.0, 3.0]), log_p, jnp.array([1, 0, 1]))

    grad = jax.grad(loss)(jnp.log(jnp.array([0.3, 0.2, 0.5])))
    assert grad[1] == 0.0 and grad[0] != 0.0 and grad[2] != 0.0


def test_dead_micro_agents_only_take_the_noop_with_the_floor_on():
    env = envs.make("3m")
    obs, state = env.reset(jax.random.PRNGKey(0))
    state = state.replace(alive=state.alive.at[0].set(False))
    state = env.refresh(state)
    avail = env.avail_actions(state)
    probs = actors.exploration_floor(jnp.zeros_like(avail, jnp.float32), avail, 0.5)
    np.testing.assert_allclose(probs[0], np.eye(avail.shape[1])[0])


# --- whole runs ------------------------------------------------------------------------------

# gamma 0.5: the identity task's time limit is bootstrapped, and with gamma near 1 its values
# (~r / (1 - gamma)) dwarf the per-agent advantages, which central-QV's two separately fitted
# critics then bury in noise; COMA's baseline, from the same critic, cancels that error.
IDENTITY = dict(num_envs=16, rollout_steps=10, epsilon_anneal_steps=10_000, actor_lr=3e-3,
                critic_lr=3e-3, target_update_every=20, gamma=0.5)


@functools.cache
def compiled(algo: str):
    """(trainer, jitted segment of 25 updates) on identity, compiled once per variant."""
    trainer = coma.make_train(build_config(algo, IDENTITY), envs.make("identity"))
    return trainer, jax.jit(lambda s: jax.lax.scan(lambda s, _: trainer.update(s), s, None, 25))


def accuracy_after(algo: str, segments: int, seed: int = 0):
    trainer, segment = compiled(algo)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(seed))
    for _ in range(segments):
        state, metrics = segment(state)
    sums = metrics["episode_sums"]
    return float(sums["accuracy"].sum() / sums["episodes"].sum()), state, metrics


@pytest.mark.parametrize("algo", ["coma", "central_qv", "central_v", "iac_q", "iac_v"])
def test_each_variant_learns_identity(algo):
    """Random play scores 0.25; the floor eps=0.02 caps the score near 0.985."""
    accuracy, _, metrics = accuracy_after(algo, 8)
    assert accuracy > 0.9, (algo, accuracy)
    assert float(metrics["losses"]["epsilon"][-1]) == pytest.approx(0.02)


def test_same_seed_gives_identical_metrics_and_parameters():
    _, s1, m1 = accuracy_after("coma", 1, seed=4)
    _, s2, m2 = accuracy_after("coma", 1, seed=4)
    for a, b in zip(jax.tree.leaves((s1.params, m1)), jax.tree.leaves((s2.params, m2)), strict=True):
        np.testing.assert_array_equal(a, b)
    _, s3, _ = accuracy_after("coma", 1, seed=5)
    assert not np.array_equal(jax.tree.leaves(s1.params)[0], jax.tree.leaves(s3.params)[0])


def test_target_critic_is_reset_every_c_critic_steps():
    online, target = {"w": jnp.ones(2)}, {"w": jnp.zeros(2)}
    kept = [actors.periodic_copy(target, online, jnp.int32(step), 7)["w"][0] for step in range(1, 16)]
    assert [int(k) for k in kept] == [0] * 6 + [1] + [0] * 6 + [1] + [0]
    # In a run: 25 updates x 10 time steps = 250 per-step critic updates, resets every 20.
    _, state, _ = accuracy_after("coma", 1)
    assert int(state.critic_steps) == 250
    online, target = jax.tree.leaves(state.params.critic), jax.tree.leaves(state.target_critic)
    assert not all(np.array_equal(o, t) for o, t in zip(online, target, strict=True))


# --- settings and envs --------------------------------------------------------------------------


def test_presets_make_the_baselines_and_refuse_a_conflicting_critic():
    assert build_config("iac_q", {}).critic == "iac_q"
    assert build_config("iac_q", {}).critic_updates == "batch"
    assert build_config("central_v", {"num_envs": 8}).num_envs == 8
    with pytest.raises(ValueError, match="iac_q is coma with critic=iac_q"):
        build_config("iac_q", {"critic": "coma"})
    with pytest.raises(ValueError, match="critic_updates must be 'batch'"):
        coma.Config(critic="iac_v", critic_updates="per_step")


@pytest.mark.parametrize("algo,env,message", [
    ("coma", "simple_tag", "needs a cooperative env with one team .*competitive envs: maddpg"),
    ("iac_v", "simple_adversary", "needs a cooperative env"),
])
def test_competitive_envs_are_refused_naming_who_supports_them(algo, env, message):
    with pytest.raises(ValueError, match=message):
        coma.make_train(build_config(algo, {}), envs.make(env))


def test_cli_refuses_continuous_actions_in_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "ctde.cli", "train", "coma", "simple_spread", "--env.continuous_actions",
         "true", "--steps", "1000", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "coma does not support continuous actions" in lines[0], proc.stderr
    assert "mappo" in lines[0] and "maddpg" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("env", ["simple_spread", "simple_reference", "simple_speaker_listener"])
def test_cooperative_discrete_mpe_tasks_train(env):
    trainer = coma.make_train(coma.Config(num_envs=2, rollout_steps=4), envs.make(env))
    state, metrics = jax.jit(trainer.update)(jax.jit(trainer.init)(jax.random.PRNGKey(0)))
    assert all(np.isfinite(v) for v in jax.tree.leaves(metrics["losses"]))
