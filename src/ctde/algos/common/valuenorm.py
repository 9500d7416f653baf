"""Value normalisation (MAPPO, Yu et al. 2022, sec. 4.1; PopArt, van Hasselt et al. 2016).

The critic learns *normalised* targets; returns and advantages use de-normalised values.
Statistics are debiased exponential moving averages of the targets' mean and second
moment, updated once per batch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ValueNormState(NamedTuple):
    mean: jax.Array  # [] running (biased) mean of targets
    mean_sq: jax.Array  # [] running (biased) second moment
    debias: jax.Array  # [] 1 - beta^n, divides out the zero start


def init() -> ValueNormState:
    zero = jnp.float32(0.0)
    return ValueNormState(zero, zero, zero)


def moments(norm: ValueNormState, eps: float = 1e-5):
    """De-biased (mean, std)."""
    debias = jnp.maximum(norm.debias, eps)
    mean = norm.mean / debias
    var = jnp.maximum(norm.mean_sq / debias - mean**2, 1e-2)
    return mean, jnp.sqrt(var)


def update(norm: ValueNormState, targets, beta: float, mask=None) -> ValueNormState:
    """Fold a batch of targets into the running statistics."""
    mask = jnp.ones_like(targets) if mask is None else mask.astype(targets.dtype)
    count = jnp.maximum(mask.sum(), 1.0)
    batch_mean = (targets * mask).sum() / count
    batch_mean_sq = (targets**2 * mask).sum() / count
    return ValueNormState(
        mean=beta * norm.mean + (1 - beta) * batch_mean,
        mean_sq=beta * norm.mean_sq + (1 - beta) * batch_mean_sq,
        debias=beta * norm.debias + (1 - beta),
    )


def normalize(norm: ValueNormState, x):
    mean, std = moments(norm)
    return (x - mean) / std


def denormalize(norm: ValueNormState, x):
    mean, std = moments(norm)
    return x * std + mean


def popart_preserve(value_head: dict, old: ValueNormState, new: ValueNormState) -> dict:
    """PopArt's "preserving outputs precisely": rescale the last linear layer so that
    denormalize(new, head(h)) == denormalize(old, head_old(h)) for every feature h.

        w' = w * sigma_old / sigma_new,  b' = (sigma_old * b + mu_old - mu_new) / sigma_new
    """
    mu_old, sigma_old = moments(old)
    mu_new, sigma_new = moments(new)
    return {
        "kernel": value_head["kernel"] * sigma_old / sigma_new,
        "bias": (sigma_old * value_head["bias"] + mu_old - mu_new) / sigma_new,
    }
