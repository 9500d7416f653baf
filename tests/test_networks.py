"""Recurrent networks: the GRU is flax's GRU, the fast sequence call (``unroll``) equals
the one-step call looped over time, on values and gradients, with episode restarts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos.common import networks

H = 8  # GRU size
T, B, N, D = 7, 3, 2, 5  # time steps, envs, agents, input width


def flax_gru_params(ours, size=H):
    """Our GRUCell parameters as nn.GRUCell's (gates r, z, n side by side in ours)."""
    block = lambda w, i: w[..., i * size:(i + 1) * size]  # noqa: E731
    w_i, b_i, w_h = ours["input_kernel"], ours["input_bias"], ours["hidden_kernel"]
    return {"params": {
        "ir": {"kernel": block(w_i, 0), "bias": block(b_i, 0)},
        "iz": {"kernel": block(w_i, 1), "bias": block(b_i, 1)},
        "in": {"kernel": block(w_i, 2), "bias": block(b_i, 2)},
        "hr": {"kernel": block(w_h, 0)},
        "hz": {"kernel": block(w_h, 1)},
        "hn": {"kernel": block(w_h, 2), "bias": ours["hidden_bias"]},
    }}


def random_params(params, key):
    """Every parameter redrawn (non-zero biases, so a misplaced bias shows)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        tree, [0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])


def sequence(key):
    k_x, k_h = jax.random.split(key)
    xs = jax.random.normal(k_x, (T, B, N, D))
    # Restarts inside the sequence, at different steps for different envs.
    firsts = jnp.zeros((T, B, N), bool).at[2, 0].set(True).at[4, 1].set(True).at[5, 0].set(True)
    return xs, firsts, jax.random.normal(k_h, (B, N, H))


def test_gru_step_hand_worked():
    # d = H = 1, x = 1, h = 2; kernels 0 except W_iz = ln 3; b_hn = 2 ln 3:
    #   r = sigmoid(0) = 0.5, z = sigmoid(ln 3) = 0.75, n = tanh(0.5 * 2 ln 3) = tanh(ln 3) = 0.8
    #   h' = (1 - z) n + z h = 0.25 * 0.8 + 0.75 * 2 = 1.7
    params = {"params": {"input_kernel": jnp.array([[0.0, np.log(3.0), 0.0]]),
                         "input_bias": jnp.zeros(3), "hidden_kernel": jnp.zeros((1, 3)),
                         "hidden_bias": jnp.array([2 * np.log(3.0)])}}
    cell = networks.GRUCell(1)
    h, out = cell.apply(params, jnp.array([[2.0]]), jnp.array([[1.0]]), jnp.array([False]))
    np.testing.assert_allclose(h, [[1.7]], rtol=1e-6)
    np.testing.assert_array_equal(h, out)
    # first: the carry restarts from zeros before the step, h' = 0.25 * 0.8 = 0.2
    h, _ = cell.apply(params, jnp.array([[2.0]]), jnp.array([[1.0]]), jnp.array([True]))
    np.testing.assert_allclose(h, [[0.2]], rtol=1e-6)


def test_gru_cell_equals_flax_gru_cell():
    xs, firsts, h0 = sequence(jax.random.PRNGKey(0))
    cell = networks.GRUCell(H)
    params = random_params(cell.init(jax.random.PRNGKey(1), h0, xs[0], firsts[0]), jax.random.PRNGKey(2))
    hs, _ = networks.unroll(cell, params, h0, xs, firsts)

    @jax.jit
    def flax_steps(flax_params, h):
        out = []
        for t in range(T):
            h, _ = nn.GRUCell(H).apply(flax_params, jnp.where(firsts[t][..., None], 0.0, h), xs[t])
            out.append(h)
        return jnp.stack(out)

    np.testing.assert_allclose(hs, flax_steps(flax_gru_params(params["params"]), h0),
                               rtol=1e-5, atol=1e-6)


def test_gru_initialisation_is_flax_per_gate():
    cell = networks.GRUCell(H)
    params = cell.init(jax.random.PRNGKey(0), jnp.zeros((4, H)), jnp.zeros((4, D)), jnp.zeros(4, bool))
    p = params["params"]
    assert p["input_kernel"].shape == (D, 3 * H) and p["hidden_kernel"].shape == (H, 3 * H)
    for gate in range(3):  # each gate's recurrent kernel is orthogonal on its own, as in flax
        w = p["hidden_kernel"][:, gate * H:(gate + 1) * H]
        np.testing.assert_allclose(w.T @ w, np.eye(H), atol=1e-5)
    np.testing.assert_array_equal(p["input_bias"], 0.0)
    np.testing.assert_array_equal(p["hidden_bias"], 0.0)


MODULES = {
    "categorical": networks.RecurrentCategoricalPolicy(4, (6, 6), H, "relu", True),
    "gaussian": networks.RecurrentGaussianPolicy(3, (6,), H, "tanh"),
    "value": networks.RecurrentValueNetwork((6,), H, "relu", True),
    "values": networks.RecurrentValueNetwork((6,), H, num_values=N),
    "torso": networks.GRUTorso((6,), H),
}


def scalar(outs):
    """A loss that reads every output (and the carries) with unequal weights."""
    leaves = jax.tree.leaves(outs)
    return sum(jnp.sum(jnp.sin(x) * (1.0 + 0.1 * i)) for i, x in enumerate(leaves))


def reference_torso(params, carry, xs, firsts, module):
    """GRUTorso written with flax's own GRU cell, one step after another."""
    p = params["params"]
    mlp = networks.MLP(module.hidden, module.activation, module.layer_norm_input)
    gru = nn.GRUCell(H)
    hs = []
    for t in range(xs.shape[0]):
        x = mlp.apply({"params": p["MLP_0"]}, xs[t])
        carry, _ = gru.apply(flax_gru_params(p["gru"]), jnp.where(firsts[t][..., None], 0.0, carry), x)
        hs.append(carry)
    return jnp.stack(hs)


@pytest.mark.parametrize("name", list(MODULES))
def test_unroll_equals_step_by_step_on_values_and_gradients(name):
    module = MODULES[name]
    xs, firsts, h0 = sequence(jax.random.PRNGKey(3))
    # One parameter tree for both calls: initialised by the one-step call, used by both.
    params = module.init(jax.random.PRNGKey(4), h0, xs[0], firsts[0])
    params = random_params(params, jax.random.PRNGKey(5))
    init_by_unroll = module.init(jax.random.PRNGKey(4), h0, xs, firsts, method="unroll")
    assert jax.tree.structure(init_by_unroll) == jax.tree.structure(params)

    def looped(p, h):
        hs, out = networks.unroll_reference(module, p, h, xs, firsts)
        if name == "gaussian":  # log_std is no sequence: the loop stacks one per step
            out = (out[0], out[1][0])
        return hs, out

    fast = with_gradients(lambda p, h: networks.unroll(module, p, h, xs, firsts))
    slow = with_gradients(looped)
    ((hs_fast, out_fast), g_fast), ((hs_slow, out_slow), g_slow) = fast(params, h0), slow(params, h0)
    assert hs_fast.shape == (T, B, N, H)
    np.testing.assert_allclose(hs_fast, hs_slow, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(out_fast), jax.tree.leaves(out_slow), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Gradients with respect to every parameter and the initial carry.
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_slow), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(float(jnp.abs(g).max()) > 1e-3 for g in jax.tree.leaves(g_fast))


def with_gradients(fn):
    """jit of ``(params, carry) -> (fn's outputs, gradients of scalar(outputs))``."""

    def run(p, h):
        (_, outs), grads = jax.value_and_grad(lambda p, h: (scalar(fn(p, h)), fn(p, h)),
                                              argnums=(0, 1), has_aux=True)(p, h)
        return outs, grads

    return jax.jit(run)


def test_unroll_gradient_equals_flax_gru_autodiff():
    # The reference is flax's nn.GRUCell differentiated by JAX: it shares no code with the
    # written-out backward recurrence (the one-step call above runs it too).
    module = MODULES["torso"]
    xs, firsts, h0 = sequence(jax.random.PRNGKey(6))
    params = random_params(module.init(jax.random.PRNGKey(7), h0, xs[0], firsts[0]),
                           jax.random.PRNGKey(8))
    fast = with_gradients(lambda p, h: networks.unroll(module, p, h, xs, firsts)[0])
    ref = with_gradients(lambda p, h: reference_torso(p, h, xs, firsts, module))
    (hs_fast, g_fast), (hs_ref, g_ref) = fast(params, h0), ref(params, h0)
    np.testing.assert_allclose(hs_fast, hs_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_restart_forgets_the_past():
    # Where first is set, the output equals a fresh start from zeros on the same inputs.
    module = MODULES["categorical"]
    xs, firsts, h0 = sequence(jax.random.PRNGKey(9))
    params = module.init(jax.random.PRNGKey(10), h0, xs[0], firsts[0])
    _, logits = networks.unroll(module, params, h0, xs, firsts)
    fresh = firsts[2:].at[0].set(True)
    _, from_two = networks.unroll(module, params, jnp.ones_like(h0), xs[2:], fresh)
    np.testing.assert_allclose(logits[2:, 0], from_two[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[2:, 1], from_two[:, 1])  # env 1 did not restart at step 2


def test_one_step_call_keeps_its_shapes():
    module = MODULES["gaussian"]
    xs, firsts, h0 = sequence(jax.random.PRNGKey(11))
    params = module.init(jax.random.PRNGKey(12), h0, xs[0], firsts[0])
    h, (mean, log_std) = module.apply(params, h0, xs[0], firsts[0])
    assert h.shape == (B, N, H) and mean.shape == (B, N, 3) and log_std.shape == (3,)
