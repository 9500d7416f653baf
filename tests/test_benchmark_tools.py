"""The benchmarks' own measuring tools (benchmarks/_common.py), against hand counts."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_common", os.path.join(os.path.dirname(__file__), "..", "benchmarks", "_common.py"))
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


def test_matmul_flops_counts_loops_branches_and_gradients():
    x, w = jnp.ones((8, 16)), jnp.ones((16, 16))
    one = 2 * 8 * 16 * 16  # one [8, 16] x [16, 16] product

    def loop(x, w):  # 10 products in a scan, one more in the costlier branch of a cond
        h = jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, 10)[0]
        h = jax.lax.cond(h.sum() > 0, lambda h: h @ w, lambda h: h, h)
        return h.sum()

    assert common.matmul_flops(loop, x, w) == 11 * one
    # The gradient with respect to w: each product's forward, its input gradient (needed to
    # go on backwards) and its weight gradient.
    assert common.matmul_flops(jax.grad(loop, argnums=1), x, w) == 3 * 11 * one
    shapes = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(w.shape, w.dtype))
    assert common.matmul_flops(loop, *shapes) == 11 * one


def test_matmul_flops_refuses_a_loop_of_unknown_length():
    def until(x):
        return jax.lax.while_loop(lambda c: c.sum() < 100, lambda c: c @ jnp.eye(4) + 1, x)

    with pytest.raises(ValueError, match="trip count"):
        common.matmul_flops(until, jnp.ones((4, 4)))
