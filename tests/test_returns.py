"""GAE and TD(lambda) against slow, obviously-correct Python loops."""

import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos.common.returns import generalized_advantage_estimate, lambda_return


def slow_gae(reward, value, next_value, terminated, done, gamma, lam):
    T, B = reward.shape
    adv = np.zeros((T, B))
    for b in range(B):
        running = 0.0
        for t in reversed(range(T)):
            if done[t, b]:
                running = 0.0  # the next step belongs to another episode
            bootstrap = 0.0 if terminated[t, b] else next_value[t, b]
            delta = reward[t, b] + gamma * bootstrap - value[t, b]
            running = delta + gamma * lam * running
            adv[t, b] = running
    return adv


def slow_lambda_return(reward, next_value, terminated, done, bootstrap, gamma, lam):
    T, B = reward.shape
    out = np.zeros((T, B))
    for b in range(B):
        following = bootstrap[b]
        for t in reversed(range(T)):
            blend = next_value[t, b] if done[t, b] else (1 - lam) * next_value[t, b] + lam * following
            out[t, b] = reward[t, b] + (0.0 if terminated[t, b] else gamma * blend)
            following = out[t, b]
    return out


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    T, B = 40, 6
    reward = rng.normal(size=(T, B))
    value = rng.normal(size=(T, B))
    next_value = rng.normal(size=(T, B))
    done = rng.random((T, B)) < 0.15
    terminated = done & (rng.random((T, B)) < 0.5)  # half the ends are time limits
    return reward, value, next_value, terminated, done


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_slow_reference(batch, gamma, lam):
    reward, value, next_value, terminated, done = batch
    adv, ret = generalized_advantage_estimate(
        jnp.asarray(reward), jnp.asarray(value), jnp.asarray(next_value),
        jnp.asarray(terminated), jnp.asarray(done), gamma, lam,
    )
    expected = slow_gae(reward, value, next_value, terminated, done, gamma, lam)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + value, rtol=1e-5, atol=1e-5)


def test_gae_bootstraps_truncation_but_not_termination():
    reward = jnp.zeros((1, 2))
    value = jnp.zeros((1, 2))
    next_value = jnp.ones((1, 2))
    terminated = jnp.array([[True, False]])
    done = jnp.array([[True, True]])  # env 0 terminated, env 1 truncated
    adv, _ = generalized_advantage_estimate(reward, value, next_value, terminated, done, 0.9, 0.95)
    np.testing.assert_allclose(adv, [[0.0, 0.9]])


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.8), (0.9, 1.0), (0.9, 0.0)])
def test_lambda_return_matches_slow_reference(batch, gamma, lam):
    reward, _, next_value, terminated, done = batch
    bootstrap = np.random.default_rng(1).normal(size=reward.shape[1])
    got = lambda_return(
        jnp.asarray(reward), jnp.asarray(next_value), jnp.asarray(terminated), jnp.asarray(done),
        jnp.asarray(bootstrap), gamma, lam,
    )
    expected = slow_lambda_return(reward, next_value, terminated, done, bootstrap, gamma, lam)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_lambda_one_gae_equals_monte_carlo_return():
    reward = jnp.array([[1.0], [2.0], [3.0]])
    value = jnp.zeros((3, 1))
    next_value = jnp.zeros((3, 1))
    done = jnp.array([[False], [False], [True]])
    _, ret = generalized_advantage_estimate(reward, value, next_value, done, done, 0.5, 1.0)
    np.testing.assert_allclose(ret[:, 0], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
