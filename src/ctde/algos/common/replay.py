"""A replay buffer that lives on the device: a ring buffer of pytrees.

Every leaf of the stored pytree gets a leading ``capacity`` axis. ``add`` writes a
batch of items at the write position (wrapping round, overwriting the oldest items
first); ``sample`` draws indices uniformly *with replacement* from the items stored
so far, as the original MADDPG code does. All three functions are pure and jittable;
the buffer is an ordinary pytree, so it can be vmapped over seeds and checkpointed.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    data: Any  # pytree, every leaf [capacity, ...]
    position: jax.Array  # [] int32, where the next item goes
    size: jax.Array  # [] int32, items stored (<= capacity)

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like ``example`` (one item, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"replay: capacity must be >= 1, got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data, jnp.int32(0), jnp.int32(0))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Append a batch of items (every leaf ``[M, ...]``, ``M <= capacity``), oldest
    items overwritten first once the buffer is full."""
    capacity = buffer.capacity
    m = jax.tree.leaves(batch)[0].shape[0]
    if m > capacity:  # a scatter with repeated indices would keep an arbitrary item
        raise ValueError(f"replay: cannot add {m} items to a buffer of capacity {capacity}")
    index = (buffer.position + jnp.arange(m)) % capacity
    data = jax.tree.map(lambda store, x: store.at[index].set(x.astype(store.dtype)), buffer.data, batch)
    return ReplayBuffer(
        data=data,
        position=(buffer.position + m) % capacity,
        size=jnp.minimum(buffer.size + m, capacity),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_shape: int | tuple,
           part: tuple | None = None) -> Any:
    """Items drawn uniformly with replacement from the stored ones, every leaf
    ``[*batch_shape, ...]``. (An empty buffer returns copies of its zero-filled first slot.)

    ``part=(k, parts)``: only the k-th of ``parts`` equal slices of the last batch axis
    (``k`` may be traced), read without the rest: devices that share a key and each
    take their part hold between them the batch one device would draw."""
    batch_shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
    size = math.prod(batch_shape)
    index = jax.random.randint(key, (size,), 0, jnp.maximum(buffer.size, 1)).reshape(batch_shape)
    if part is not None:
        k, parts = part
        if batch_shape[-1] % parts:
            raise ValueError(f"replay: a batch of {batch_shape[-1]} does not split into {parts} "
                             "equal parts")
        width = batch_shape[-1] // parts
        index = jax.lax.dynamic_slice_in_dim(index, k * width, width, axis=index.ndim - 1)
    return jax.tree.map(lambda store: store[index], buffer.data)
