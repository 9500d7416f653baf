"""What the micro env, its scripted policies and its renderer share: the action layout,
the state type, pairwise geometry, unit-axis sums and the env's hash-based randomness.

Imports run one way: ``common`` <- ``heuristic`` <- ``render`` <- ``env``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# Action layout (SMAC): 0 no-op (dead only), 1 stop, 2-5 move N/S/E/W, 6+k attack enemy k
# (a medivac: heal ally k).
NOOP, STOP, MOVE_NORTH = 0, 1, 2
N_FIXED_ACTIONS = 6
MOVE_DIRECTIONS = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]], np.float32)


@struct.dataclass
class MicroState:
    """Everything that changes. Unit axes: allies ``[0, N)``, enemies ``[N, U)``."""

    pos: jax.Array  # [U, 2] cells
    health: jax.Array  # [U]
    shield: jax.Array  # [U]
    energy: jax.Array  # [U] (medivac)
    cooldown: jax.Array  # [U] seconds until the weapon is ready
    shield_wait: jax.Array  # [U] seconds until shields regenerate
    alive: jax.Array  # [U] bool
    last_actions: jax.Array  # [U] int32, -1 before the first step
    fired: jax.Array  # [U] int32: unit last fired at / healed during the last step, or -1
    avail: jax.Array  # [U, A_max] bool, available actions in this state (both sides)
    t: jax.Array  # [] int32 env steps so far


def _mix32(x: jax.Array) -> jax.Array:
    """The "lowbias32" integer hash (C. Wellons): a well-mixed bijection of uint32."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniform(key: jax.Array, shape: tuple[int, ...], salt: int = 0) -> jax.Array:
    """Uniform floats in [0, 1) hashed from ``key`` and a counter.

    The env's own randomness (start jitter, attack delays, enemy noise) needs no
    cryptographic quality; hashing compiles in a few milliseconds where each threefry
    call site costs about a second under vmap. Same key, same numbers.
    """
    words = key if key.dtype == jnp.uint32 else jax.random.key_data(key)
    x = jnp.arange(int(np.prod(shape)), dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    x = _mix32(x + jnp.uint32((salt * 0x632BE5AB + 1) & 0xFFFFFFFF))
    for word in words.reshape(-1):
        x = _mix32(x ^ word)
    return ((x >> 8).astype(jnp.float32) * (1.0 / (1 << 24))).reshape(shape)


# Above this many elements a sum over the unit axis runs as a matrix-vector product.
_MATVEC_MIN_SIZE = 4096


def _sum_last(x: jax.Array) -> jax.Array:
    if x.size >= _MATVEC_MIN_SIZE:
        return x @ jnp.ones(x.shape[-1], x.dtype)
    return jnp.sum(x, -1)


@jax.custom_batching.custom_vmap
def row_sum(x: jax.Array) -> jax.Array:
    """``x.sum(-1)`` over a unit axis, the fastest way for the batch it runs in.

    XLA:CPU sends a reduction over an axis this small (a few to a few dozen units)
    through a generic kernel that is slow on large batches; a product with a ones vector
    becomes one matrix-vector product over the whole batch (about 2x faster at 2048
    envs) but costs more per call on small ones. Under ``vmap`` the batch size is known
    here, so the choice is made on the batched size. (Not reverse-differentiable.)
    """
    return _sum_last(x)


@row_sum.def_vmap
def _row_sum_batched(axis_size, in_batched, x):
    return _sum_last(x), in_batched[0]  # the batch axis is leading: reduce the last


def col_sum(x: jax.Array) -> jax.Array:
    """``x.sum(0)`` of an ``[U, U]`` plane, as ``row_sum`` does it."""
    return row_sum(jnp.swapaxes(x, -1, -2))


def pairwise(pos: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``diff[i, j] = pos[i] - pos[j]`` ``[U, U, 2]`` and distances ``[U, U]``."""
    diff = pos[:, None, :] - pos[None, :, :]
    return diff, jnp.sqrt(diff[..., 0] ** 2 + diff[..., 1] ** 2 + 1e-12)
