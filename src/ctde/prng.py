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


def _whole(shape, parts):
    """The shape of the draw that ``parts`` parts of ``shape`` come from."""
    return shape if parts == 1 else (parts * shape[0], *shape[1:])


def bits(key, shape, part=None) -> jax.Array:
    """Uniform random uint32 bits, ``jax.random.bits(key, shape)``.

    ``part=(k, parts)``: the k-th of ``parts`` equal consecutive slices along the first
    axis of one draw of shape ``(parts * shape[0], *shape[1:])`` (``k`` may be traced),
    computed without the rest: what this device gets of a batch split over devices.
    ``uniform`` and ``gumbel`` take it too."""
    index, parts = (0, 1) if part is None else part
    return _bits(key, tuple(shape), index, parts)


@partial(jax.jit, static_argnames=("shape", "parts"))
def _bits(key, shape, index, parts):
    if not _fast(key):
        whole = jax.random.bits(key, _whole(shape, parts), jnp.uint32)
        return whole if parts == 1 else lax.dynamic_slice_in_dim(whole, index * shape[0], shape[0])
    if parts * int(np.prod(shape)) >= 2**32:
        raise ValueError(f"prng: {parts} x {shape} has 2**32 items or more")
    first = jnp.asarray(index, jnp.uint32) * np.uint32(np.prod(shape))
    counters = lax.iota(jnp.uint32, int(np.prod(shape))).reshape(shape) + first
    b1, b2 = threefry2x32(key[0], key[1], jnp.uint32(0), counters)
    return b1 ^ b2


@partial(jax.jit, static_argnames="num")
def split(key, num: int = 2) -> jax.Array:
    """``jax.random.split(key, num)``: ``[num, 2]`` new keys."""
    if not _fast(key):
        return jax.random.split(key, num)
    b1, b2 = threefry2x32(key[0], key[1], jnp.uint32(0), lax.iota(jnp.uint32, num))
    return jnp.stack([b1, b2], axis=-1)


def uniform(key, shape=(), minval=0.0, maxval=1.0, part=None) -> jax.Array:
    """float32 uniform on [minval, maxval), ``jax.random.uniform``."""
    index, parts = (0, 1) if part is None else part
    return _uniform(key, tuple(shape), minval, maxval, index, parts)


@partial(jax.jit, static_argnames=("shape", "parts"))
def _uniform(key, shape, minval, maxval, index, parts):
    if not _fast(key) and parts == 1:
        return jax.random.uniform(key, shape, minval=minval, maxval=maxval)
    minval = lax.broadcast_to_rank(jnp.asarray(minval, jnp.float32), len(shape))
    maxval = lax.broadcast_to_rank(jnp.asarray(maxval, jnp.float32), len(shape))
    # 23 random mantissa bits under the exponent of 1.0: a float in [1, 2), minus 1.
    mantissa = (_bits(key, shape, index, parts) >> np.uint32(32 - 23)) | np.uint32(0x3F800000)
    floats = lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0
    return lax.max(minval, floats * (maxval - minval) + minval)


@partial(jax.jit, static_argnames="shape")
def normal(key, shape=()) -> jax.Array:
    """Standard normal float32, ``jax.random.normal`` (inverse-erf of a uniform)."""
    if not _fast(key):
        return jax.random.normal(key, tuple(shape))
    low = np.nextafter(np.float32(-1.0), np.float32(0.0))
    return np.float32(np.sqrt(2)) * lax.erf_inv(_uniform(key, tuple(shape), low, 1.0, 0, 1))


def gumbel(key, shape=(), part=None) -> jax.Array:
    """Standard Gumbel float32, ``jax.random.gumbel`` (its default "low" mode)."""
    index, parts = (0, 1) if part is None else part
    return _gumbel(key, tuple(shape), index, parts)


@partial(jax.jit, static_argnames=("shape", "parts"))
def _gumbel(key, shape, index, parts):
    if not _fast(key) or jax.config.jax_high_dynamic_range_gumbel:
        whole = jax.random.gumbel(key, _whole(shape, parts))
        return whole if parts == 1 else lax.dynamic_slice_in_dim(whole, index * shape[0], shape[0])
    tiny = np.finfo(np.float32).tiny
    return -jnp.log(-jnp.log(_uniform(key, shape, tiny, 1.0, index, parts)))


@partial(jax.jit, static_argnames="axis")
def categorical(key, logits, axis: int = -1) -> jax.Array:
    """One category per distribution along ``axis`` of ``logits``,
    ``jax.random.categorical(key, logits, axis)`` (the Gumbel-max trick)."""
    if not _fast(key):
        return jax.random.categorical(key, logits, axis)
    return jnp.argmax(gumbel(key, logits.shape).astype(logits.dtype) + logits, axis=axis)
