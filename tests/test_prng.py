"""ctde.prng draws exactly what jax.random draws (it only computes the hash faster)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde import prng

SHAPES = [(), (1,), (7, 3), (1024, 4, 5), (3, 1, 2, 2)]
KEYS = [jax.random.PRNGKey(0), jax.random.PRNGKey(12345), jax.random.PRNGKey(2**31 - 1)]


def same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("shape", SHAPES)
def test_draws_equal_jax_random_bit_for_bit(shape):
    for key in KEYS:
        same(prng.bits(key, shape), jax.random.bits(key, shape, jnp.uint32))
        same(prng.uniform(key, shape), jax.random.uniform(key, shape))
        same(prng.uniform(key, shape, -2.5, 3.0), jax.random.uniform(key, shape, minval=-2.5, maxval=3.0))
        same(prng.normal(key, shape), jax.random.normal(key, shape))
        same(prng.gumbel(key, shape), jax.random.gumbel(key, shape))


def test_split_and_categorical_equal_jax_random():
    logits = jax.random.normal(KEYS[1], (64, 4, 6))
    for key in KEYS:
        for num in (1, 2, 3, 64):
            same(prng.split(key, num), jax.random.split(key, num))
        same(prng.categorical(key, logits), jax.random.categorical(key, logits))
        same(prng.categorical(key, logits, axis=1), jax.random.categorical(key, logits, axis=1))


def test_equal_under_jit_and_vmap():
    keys = jax.random.split(KEYS[0], 8)

    def ours(k):
        return prng.gumbel(k, (16, 5)), prng.normal(k, (3,)), prng.split(k, 3)

    def theirs(k):
        return jax.random.gumbel(k, (16, 5)), jax.random.normal(k, (3,)), jax.random.split(k, 3)

    for a, b in zip(jax.jit(jax.vmap(ours))(keys), jax.jit(jax.vmap(theirs))(keys), strict=True):
        same(a, b)


def test_other_keys_fall_back_to_jax_random():
    key = jax.random.key(3, impl="rbg")
    same(jax.random.key_data(prng.split(key, 2)), jax.random.key_data(jax.random.split(key, 2)))
    same(prng.uniform(key, (5,)), jax.random.uniform(key, (5,)))
    typed = jax.random.key(3)  # a typed Threefry key takes jax.random's own path
    same(prng.gumbel(typed, (4,)), jax.random.gumbel(typed, (4,)))


def test_gumbel_statistics():
    g = np.asarray(prng.gumbel(KEYS[0], (200_000,)))
    assert abs(g.mean() - np.euler_gamma) < 0.01
    assert abs(g.std() - np.pi / np.sqrt(6)) < 0.01


def test_parts_of_a_draw_are_its_slices():
    key = KEYS[1]
    whole = {"bits": prng.bits(key, (12, 5)), "uniform": prng.uniform(key, (12, 5)),
             "gumbel": prng.gumbel(key, (12, 5))}
    for name, fn in (("bits", prng.bits), ("uniform", prng.uniform), ("gumbel", prng.gumbel)):
        parts = [fn(key, (4, 5), part=(k, 3)) for k in range(3)]
        same(jnp.concatenate(parts), whole[name])
        same(jax.jit(lambda k, fn=fn: fn(key, (4, 5), part=(k, 3)))(1), parts[1])  # traced index
    rbg = jax.random.key(5, impl="rbg")  # other keys: a slice of jax.random's whole draw
    same(prng.gumbel(rbg, (4, 5), part=(2, 3)), jax.random.gumbel(rbg, (12, 5))[8:])
