"""The device replay buffer: add/overwrite order, size, sampling only stored items."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos.common import replay


def items(start, stop):
    values = jnp.arange(start, stop)
    return {"x": jnp.stack([values, values], axis=-1).astype(jnp.float32), "id": values}


def test_add_fills_then_overwrites_the_oldest_first():
    buffer = replay.init({"x": jnp.zeros(2), "id": jnp.int32(0)}, capacity=5)
    assert buffer.capacity == 5 and int(buffer.size) == 0
    buffer = replay.add(buffer, items(0, 3))
    assert (int(buffer.position), int(buffer.size)) == (3, 3)
    np.testing.assert_array_equal(buffer.data["id"], [0, 1, 2, 0, 0])
    buffer = jax.jit(replay.add)(buffer, items(3, 7))  # wraps round: 3, 4 | 5, 6
    assert (int(buffer.position), int(buffer.size)) == (2, 5)
    np.testing.assert_array_equal(buffer.data["id"], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.data["x"][:, 1], [5, 6, 2, 3, 4])
    assert buffer.data["id"].dtype == jnp.int32 and buffer.data["x"].dtype == jnp.float32


def test_sample_draws_only_stored_items_uniformly_with_replacement():
    buffer = replay.add(replay.init({"x": jnp.zeros(2), "id": jnp.int32(0)}, 10), items(0, 3))
    batch = jax.jit(replay.sample, static_argnums=2)(buffer, jax.random.PRNGKey(0), 3000)
    ids = np.asarray(batch["id"])
    assert set(ids) == {0, 1, 2}  # never the empty slots
    np.testing.assert_array_equal(batch["x"][:, 0], ids)  # leaves stay aligned
    assert np.all(np.abs(np.bincount(ids) / 3000 - 1 / 3) < 0.05)
    full = replay.add(buffer, items(3, 13))
    ids = np.asarray(replay.sample(full, jax.random.PRNGKey(1), 4000)["id"])
    assert set(ids) == set(range(3, 13))  # 0..2 were overwritten


def test_vmaps_over_seeds_and_rejects_oversized_batches():
    buffers = jax.vmap(lambda _: replay.init({"x": jnp.zeros(3)}, 4))(jnp.arange(2))
    buffers = jax.vmap(replay.add)(buffers, {"x": jnp.ones((2, 3, 3))})
    np.testing.assert_array_equal(buffers.size, [3, 3])
    with pytest.raises(ValueError, match="cannot add 5 items to a buffer of capacity 4"):
        replay.add(replay.init({"x": jnp.zeros(3)}, 4), {"x": jnp.ones((5, 3))})
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        replay.init({"x": jnp.zeros(3)}, 0)


def test_parts_of_a_batch_put_together_are_the_whole_batch():
    buffer = replay.add(replay.init({"id": jnp.int32(0)}, 100), {"id": jnp.arange(60)})
    key = jax.random.PRNGKey(3)
    whole = replay.sample(buffer, key, (4, 6))["id"]  # 4 batches of 6
    assert whole.shape == (4, 6)
    parts = [replay.sample(buffer, key, (4, 6), part=(k, 3))["id"] for k in range(3)]
    np.testing.assert_array_equal(jnp.concatenate(parts, axis=1), whole)
    traced = jax.jit(lambda k: replay.sample(buffer, key, (4, 6), part=(k, 3))["id"])
    np.testing.assert_array_equal(traced(2), parts[2])
    np.testing.assert_array_equal(replay.sample(buffer, key, 24)["id"], whole.reshape(-1))
    with pytest.raises(ValueError, match="a batch of 6 does not split into 4 equal parts"):
        replay.sample(buffer, key, (4, 6), part=(0, 4))
