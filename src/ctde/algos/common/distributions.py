"""Log-probabilities, entropies and sampling for the two action types.

Discrete: a categorical over logits with unavailable actions masked out.
Continuous: a diagonal Gaussian with state-independent log standard deviation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ctde import prng

#: Logit given to unavailable actions: finite, so gradients stay NaN-free.
MASKED_LOGIT = -1e9


def masked_logits(logits, avail):
    """``[..., A]`` logits with unavailable actions pushed to ~zero probability."""
    return jnp.where(avail, logits, MASKED_LOGIT)


def categorical_log_prob(logits, action):
    """log pi(a) for integer ``action [...]`` under ``logits [..., A]``."""
    log_p = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits):
    """H(pi) = -sum_a pi(a) log pi(a), ``[...]``."""
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def categorical_sample(key, logits, deterministic: bool = False):
    if deterministic:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return prng.categorical(key, logits).astype(jnp.int32)


def gaussian_log_prob(mean, log_std, action):
    """log N(a; mean, exp(log_std)^2) summed over the action dimension."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def gaussian_entropy(log_std, batch_shape=()):
    per_dim = log_std + 0.5 * (1.0 + jnp.log(2.0 * jnp.pi))
    return jnp.broadcast_to(jnp.sum(per_dim, axis=-1), batch_shape)


def gaussian_sample(key, mean, log_std, deterministic: bool = False):
    if deterministic:
        return mean
    return mean + jnp.exp(log_std) * prng.normal(key, mean.shape)
