"""Random numbers exactly as ``jax.random`` draws them, computed faster on CPU.

``jax.random`` hashes counters with Threefry-2x32 (Salmon et al. 2011, "Parallel random
numbers: as easy as 1, 2, 3"). On CPU, JAX lowers the hash's 20 rounds as a 5-step
loop, which XLA runs as a loop of small kernels over the whole array: one Gumbel draw
for a MADDPG batch (1024 x 4 agents x 5 actions) takes about 0.38 ms, most of a
gradient step's non-matrix work. The functions here compute the same hash with the
rounds written out, so XLA fuses it into one elementwise kernel (about 15x faster),
and then apply ``jax.random``'s own bit-to-float conversions: for a raw Threefry key
(``jax.random.PRNGKey``) and JAX's default settings every result is bit for bit what
the ``jax.random`` function of the same name returns (``tests/test_prng.py``). Any
other key, or ``jax_threefry_partitionable`` turned off, falls back to ``jax.random``.
Like ``jax.random``'s, the functions are jitted, so that they compile alike (XLA may
fuse a multiply-add differently outside ``jit``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # Threefry's key-schedule constant


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds) of the counter pairs ``(x1, x2)`` under the key
    ``(k1, k2)``; uint32 arrays that broadcast together. Returns two uint32 arrays."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = jnp.broadcast_arrays(x1 + ks[0], x2 + ks[1])
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = ((x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r))) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _fast(key) -> bool:
    """Whether ``key`` is a raw Threefry key that jax.random hashes the way we do."""
    return (jax.config.jax_threefry_partitionable and key.dtype == jnp.uint32
            and key.shape == (2,))


def _counters(shape):
    """Counters 0, 1, ... in row-major order over ``shape`` (the low 32 bits; the high
    word is 0 below 2**32 items)."""
    if int(np.prod(shape)) >= 2**32:
        raise ValueError(f"prng: {shape} has 2**32 items or more")
    return lax.iota(jnp.uint32, int(np.prod(shape))).reshape(shape)


@partial(jax.jit, static_argnames="shape")
def bits(key, shape) -> jax.Array:
    """Uniform random uint32 bits, ``jax.random.bits(key, shape)``."""
    shape = tuple(shape)
    if not _fast(key):
        return jax.random.bits(key, shape, jnp.uint32)
    b1, b2 = threefry2x32(key[0], key[1], jnp.uint32(0), _counters(shape))
    return b1 ^ b2


@partial(jax.jit, static_argnames="num")
def split(key, num: int = 2) -> jax.Array:
    """``jax.random.split(key, num)``: ``[num, 2]`` new keys."""
    if not _fast(key):
        return jax.random.split(key, num)
    b1, b2 = threefry2x32(key[0], key[1], jnp.uint32(0), _counters((num,)))
    return jnp.stack([b1, b2], axis=-1)


@partial(jax.jit, static_argnames="shape")
def uniform(key, shape=(), minval=0.0, maxval=1.0) -> jax.Array:
    """float32 uniform on [minval, maxval), ``jax.random.uniform``."""
    shape = tuple(shape)
    if not _fast(key):
        return jax.random.uniform(key, shape, minval=minval, maxval=maxval)
    minval = lax.broadcast_to_rank(jnp.asarray(minval, jnp.float32), len(shape))
    maxval = lax.broadcast_to_rank(jnp.asarray(maxval, jnp.float32), len(shape))
    # 23 random mantissa bits under the exponent of 1.0: a float in [1, 2), minus 1.
    mantissa = (bits(key, shape) >> np.uint32(32 - 23)) | np.uint32(0x3F800000)
    floats = lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0
    return lax.max(minval, floats * (maxval - minval) + minval)


@partial(jax.jit, static_argnames="shape")
def normal(key, shape=()) -> jax.Array:
    """Standard normal float32, ``jax.random.normal`` (inverse-erf of a uniform)."""
    if not _fast(key):
        return jax.random.normal(key, tuple(shape))
    low = np.nextafter(np.float32(-1.0), np.float32(0.0))
    return np.float32(np.sqrt(2)) * lax.erf_inv(uniform(key, shape, low, 1.0))


@partial(jax.jit, static_argnames="shape")
def gumbel(key, shape=()) -> jax.Array:
    """Standard Gumbel float32, ``jax.random.gumbel`` (its default "low" mode)."""
    if not _fast(key) or jax.config.jax_high_dynamic_range_gumbel:
        return jax.random.gumbel(key, tuple(shape))
    tiny = np.finfo(np.float32).tiny
    return -jnp.log(-jnp.log(uniform(key, shape, tiny, 1.0)))


@partial(jax.jit, static_argnames="axis")
def categorical(key, logits, axis: int = -1) -> jax.Array:
    """One category per distribution along ``axis`` of ``logits``,
    ``jax.random.categorical(key, logits, axis)`` (the Gumbel-max trick)."""
    if not _fast(key):
        return jax.random.categorical(key, logits, axis)
    return jnp.argmax(gumbel(key, logits.shape).astype(logits.dtype) + logits, axis=axis)
