"""All network code: MLP torsos, policy heads and value heads (flax.linen).

Orthogonal initialisation as in MAPPO: gain sqrt(2) in hidden layers, 0.01 for the
policy output (near-uniform initial policy) and 1 for value outputs.

Recurrent modules (``GRUTorso``, ``RecurrentCategoricalPolicy``,
``RecurrentGaussianPolicy``, ``RecurrentValueNetwork``, ``GRUCell``) have two calls on
one parameter tree:

- ``module.apply(params, carry, x, first) -> (carry, out)``: one step (acting). The
  carry ``[..., H]`` restarts from zeros where ``first [...]`` before x is consumed.
- ``unroll(module, params, carry, xs, firsts) -> (carries, outs)`` (the same as
  ``module.apply(params, carry, xs, firsts, method="unroll")``): a whole sequence
  ``xs [T, ..., d]``, ``firsts [T, ...]`` (training). ``carries [T, ..., H]`` holds the
  carry after each step, ``outs [T, ...]`` the outputs. The encoder and the GRU's input
  products run as 2-D products over all T steps at once; only the products with the
  carry run step by step (``gru_scan``, whose gradient is written out likewise).
  ``unroll_reference`` is the same sequence as a loop of one-step calls (tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def dense(features: int, gain: float = np.sqrt(2.0), name: str | None = None) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=nn.initializers.orthogonal(gain),
        bias_init=nn.initializers.zeros,
        name=name,
    )


def on_rows(fn, x):
    """``fn`` applied to ``x [..., d]`` with its leading axes merged into one (``[rows, d]``),
    leading axes restored on every output. Same values; XLA's CPU backend computes the
    weight gradients of 2-D matrix products markedly faster than those of products with
    several batch axes (MAPPO's ``[L, S, N, d]`` minibatches train 1.4x faster)."""
    lead = x.shape[:-1]
    out = fn(x.reshape(-1, x.shape[-1]))
    return jax.tree.map(lambda y: y.reshape(*lead, *y.shape[1:]), out)


class MLP(nn.Module):
    """Hidden layers with a nonlinearity after each (optionally layer-normed input)."""

    hidden: Sequence[int]
    activation: str = "tanh"
    layer_norm_input: bool = False

    @nn.compact
    def __call__(self, x):
        act = getattr(nn, self.activation)
        if self.layer_norm_input:
            x = nn.LayerNorm()(x)
        for width in self.hidden:
            x = act(dense(width)(x))
        return x


class CategoricalPolicy(nn.Module):
    """pi(a | o): logits ``[..., num_actions]``."""

    num_actions: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm_input: bool = False

    @nn.compact
    def __call__(self, obs):
        mlp = MLP(self.hidden, self.activation, self.layer_norm_input)
        return on_rows(lambda x: dense(self.num_actions, gain=0.01, name="logits")(mlp(x)), obs)


class GaussianPolicy(nn.Module):
    """pi(a | o) = N(mean(o), diag(exp(log_std))^2), log_std a free parameter."""

    action_dim: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm_input: bool = False
    init_log_std: float = -0.5

    @nn.compact
    def __call__(self, obs):
        mlp = MLP(self.hidden, self.activation, self.layer_norm_input)
        mean = on_rows(lambda x: dense(self.action_dim, gain=0.01, name="mean")(mlp(x)), obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return mean, log_std


class ValueNetwork(nn.Module):
    """V(x): a scalar per input row, ``[...]``, or ``num_values`` values per row
    ``[..., num_values]`` when it is larger than 1 (one per agent, from an input all agents
    share). The output layer is named ``value_head`` so value normalisation (PopArt) can
    rescale it."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm_input: bool = False
    num_values: int = 1

    @nn.compact
    def __call__(self, x):
        mlp = MLP(self.hidden, self.activation, self.layer_norm_input)
        head = value_head(self.num_values)
        return on_rows(lambda rows: head(mlp(rows)), x)


def value_head(num_values: int):
    """The output layer of a value network: ``[..., H] -> [...]`` (one value) or
    ``[..., num_values]``."""
    layer = dense(num_values, gain=1.0, name="value_head")
    return (lambda h: layer(h)[..., 0]) if num_values == 1 else layer


def one_hot_ids(num_agents: int, batch_shape=()) -> jnp.ndarray:
    """Agent-id one-hots ``[*batch_shape, N, N]`` (appended to shared-network inputs)."""
    return jnp.broadcast_to(jnp.eye(num_agents), (*batch_shape, num_agents, num_agents))


# --- recurrent networks ------------------------------------------------------------------


def _gate_blocks(init, gates: int = 3):
    """A kernel ``[..., gates * H]`` made of ``gates`` blocks ``[..., H]``, each drawn by
    ``init`` as if it were its own layer (flax initialises every gate's kernel apart)."""

    def draw(key, shape, dtype=jnp.float32):
        block = (*shape[:-1], shape[-1] // gates)
        return jnp.concatenate([init(k, block, dtype) for k in jax.random.split(key, gates)], -1)

    return draw


def _gru_gates(hidden_kernel, hidden_bias, h, gx):
    """One step's gates from the restarted carry ``h [R, H]`` and ``gx [R, 3H]``:
    ``(h', r, z, n, W_hn h + b_hn)``."""
    size = h.shape[-1]
    gh = h @ hidden_kernel
    rz = jax.nn.sigmoid(gx[:, : 2 * size] + gh[:, : 2 * size])
    r, z = rz[:, :size], rz[:, size:]
    hn = gh[:, 2 * size:] + hidden_bias
    n = jnp.tanh(gx[:, 2 * size:] + r * hn)
    return (1.0 - z) * n + z * h, r, z, n, hn


def _restart(h, first):
    return jnp.where(first[:, None], 0.0, h)


@jax.custom_vjp
def gru_scan(hidden_kernel, hidden_bias, h0, gx, firsts):
    """The carry-dependent half of a GRU over a sequence (the recurrence itself).

    ``gx [T, R, 3H]``: the input products ``W_i x_t + b_i`` of the r, z and n gates,
    computed beforehand for all time steps; ``h0 [R, H]``; ``firsts [T, R]``: the carry
    restarts from zeros before the step that consumes ``x_t``. Per step only
    ``W_h h [R, H] x [H, 3H]`` and the gates. Returns ``(h_T [R, H], hs [T, R, H])``.

    Its gradient is written out (``_gru_scan_bwd``) so that the backward recurrence, too,
    does per step only what depends on the carry: the weight gradient
    ``dW_h = sum_t h_{t-1}^T dgh_t`` is one 2-D product after it, not T small ones
    accumulated inside it, and the forward pass keeps one array of gates per step
    instead of every intermediate.
    """

    def step(h, inputs):
        gx_t, first_t = inputs
        h = _gru_gates(hidden_kernel, hidden_bias, _restart(h, first_t), gx_t)[0]
        return h, h

    return jax.lax.scan(step, h0, (gx, firsts))


def _gru_scan_fwd(hidden_kernel, hidden_bias, h0, gx, firsts):
    def step(h, inputs):
        gx_t, first_t = inputs
        h, r, z, n, hn = _gru_gates(hidden_kernel, hidden_bias, _restart(h, first_t), gx_t)
        return h, (h, jnp.concatenate([r, z, n, hn], axis=-1))

    h_last, (hs, gates) = jax.lax.scan(step, h0, (gx, firsts))
    return (h_last, hs), (hidden_kernel, h0, hs, gates, firsts)


def _gru_scan_bwd(residuals, cotangents):
    """Reverse recurrence of h' = (1 - z) n + z h on the restarted carry h:
    dn = g (1 - z), dz = g (h - n), da_n = dn (1 - n^2), da_r = da_n hn r (1 - r),
    da_z = dz z (1 - z); dgx = [da_r, da_z, da_n], dgh = [da_r, da_z, da_n r];
    dh = g z + dgh W_h^T, zeroed where the carry restarted."""
    hidden_kernel, h0, hs, gates, firsts = residuals
    d_last, d_hs = cotangents
    size = h0.shape[-1]
    # The restarted carry each step consumed: [T, R, H].
    h_prev = jnp.where(firsts[..., None], 0.0, jnp.concatenate([h0[None], hs[:-1]], axis=0))

    def step(dh, inputs):
        d_h_t, gates_t, h_prev_t, first_t = inputs
        r, z, n, hn = (gates_t[:, i * size:(i + 1) * size] for i in range(4))
        g = dh + d_h_t
        da_n = g * (1.0 - z) * (1.0 - n * n)
        da_r = da_n * hn * r * (1.0 - r)
        da_z = g * (h_prev_t - n) * z * (1.0 - z)
        dgh = jnp.concatenate([da_r, da_z, da_n * r], axis=-1)
        dh = g * z + dgh @ hidden_kernel.T
        return _restart(dh, first_t), jnp.concatenate([da_r, da_z, da_n], axis=-1)

    dh0, dgx = jax.lax.scan(step, d_last, (d_hs, gates, h_prev, firsts), reverse=True)
    rows = dgx.shape[0] * dgx.shape[1]
    r = gates[..., :size]
    dgh = jnp.concatenate([dgx[..., : 2 * size], dgx[..., 2 * size:] * r], axis=-1)
    d_kernel = h_prev.reshape(rows, size).T @ dgh.reshape(rows, 3 * size)
    d_bias = dgh[..., 2 * size:].reshape(rows, size).sum(0)
    return d_kernel, d_bias, dh0, dgx, None


gru_scan.defvjp(_gru_scan_fwd, _gru_scan_bwd)


class GRUCell(nn.Module):
    """flax's GRU cell (``nn.GRUCell``: its equations and initialisation) with the input
    and hidden products kept apart, so that a sequence's input products are one 2-D matrix
    product for all time steps before the recurrence:

        r  = sigmoid(W_ir x + b_ir + W_hr h)
        z  = sigmoid(W_iz x + b_iz + W_hz h)
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    Parameters: ``input_kernel [d, 3H]`` and ``input_bias [3H]`` (gates r, z, n side by
    side), ``hidden_kernel [H, 3H]``, ``hidden_bias [H]`` (b_hn).
    """

    features: int

    @nn.compact
    def unroll(self, carry, xs, firsts):
        """``carry [..., H]``, ``xs [T, ..., d]``, ``firsts [T, ...]`` ->
        ``(hs, hs)``, ``hs [T, ..., H]`` the carry after each step (a GRU's output is its
        carry); the carry restarts from zeros where ``firsts`` (before the step that
        consumes that x)."""
        size, steps, lead = self.features, xs.shape[0], xs.shape[1:-1]
        w_i = self.param("input_kernel", _gate_blocks(nn.initializers.lecun_normal()),
                         (xs.shape[-1], 3 * size))
        b_i = self.param("input_bias", nn.initializers.zeros, (3 * size,))
        w_h = self.param("hidden_kernel", _gate_blocks(nn.initializers.orthogonal()),
                         (size, 3 * size))
        b_hn = self.param("hidden_bias", nn.initializers.zeros, (size,))
        gx = xs.reshape(-1, xs.shape[-1]) @ w_i + b_i  # [T * R, 3H]: one product
        _, hs = gru_scan(w_h, b_hn, carry.reshape(-1, size), gx.reshape(steps, -1, 3 * size),
                         firsts.reshape(steps, -1))
        hs = hs.reshape(steps, *lead, size)
        return hs, hs

    def __call__(self, carry, x, first):
        """One step: ``(carry [..., H], x [..., d], first [...]) -> (carry, carry)``."""
        return _one_step(self.unroll, carry, x, first)


def _one_step(unroll, carry, x, first):
    """A recurrent module's one-step call as its unroll over a sequence of length 1."""
    carries, out = unroll(carry, x[None], first[None])
    return carries[0], out[0]


class GRUTorso(nn.Module):
    """An MLP encoder followed by a GRU. The carry ``[..., gru_size]`` restarts from
    zeros where ``first`` (the observation starts an episode). ``unroll`` encodes every
    time step at once (the encoder and the GRU's input products are 2-D products over
    ``T x rows``); only the carry-dependent products run step by step."""

    hidden: Sequence[int]
    gru_size: int
    activation: str = "relu"
    layer_norm_input: bool = False

    @nn.compact
    def unroll(self, carry, xs, firsts):
        """``(carry [..., H], xs [T, ..., d], firsts [T, ...]) -> (hs, ys)``, both
        ``[T, ..., H]`` (the GRU's output is its carry)."""
        x = on_rows(MLP(self.hidden, self.activation, self.layer_norm_input), xs)
        return GRUCell(self.gru_size, name="gru").unroll(carry, x, firsts)

    def __call__(self, carry, x, first):
        return _one_step(self.unroll, carry, x, first)


class RecurrentCategoricalPolicy(nn.Module):
    """pi(a_t | history): a GRU torso and logits ``[..., num_actions]``."""

    num_actions: int
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False

    @nn.compact
    def unroll(self, carry, obs, firsts):
        """``(carry, obs [T, ..., d], firsts [T, ...]) -> (hs [T, ..., H], logits [T, ..., A])``."""
        hs, y = GRUTorso(self.hidden, self.gru_size, self.activation,
                         self.layer_norm_input).unroll(carry, obs, firsts)
        return hs, on_rows(dense(self.num_actions, gain=0.01, name="logits"), y)

    def __call__(self, carry, obs, first):
        return _one_step(self.unroll, carry, obs, first)


class RecurrentGaussianPolicy(nn.Module):
    """pi(a_t | history) = N(mean, diag(exp(log_std))^2): a GRU torso, the mean
    ``[..., action_dim]`` and a free ``log_std``."""

    action_dim: int
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False
    init_log_std: float = -0.5

    @nn.compact
    def unroll(self, carry, obs, firsts):
        """``-> (hs [T, ..., H], (mean [T, ..., action_dim], log_std [action_dim]))``."""
        hs, y = GRUTorso(self.hidden, self.gru_size, self.activation,
                         self.layer_norm_input).unroll(carry, obs, firsts)
        mean = on_rows(dense(self.action_dim, gain=0.01, name="mean"), y)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return hs, (mean, log_std)

    def __call__(self, carry, obs, first):
        hs, (mean, log_std) = self.unroll(carry, obs[None], first[None])
        return hs[0], (mean[0], log_std)


class RecurrentValueNetwork(nn.Module):
    """V(history): a GRU torso and the value head (``[...]`` or ``[..., num_values]``)."""

    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False
    num_values: int = 1  # as in ValueNetwork

    @nn.compact
    def unroll(self, carry, x, firsts):
        """``(carry, x [T, ..., d], firsts [T, ...]) -> (hs [T, ..., H], values [T, ...])``
        (``[T, ..., num_values]`` with several values)."""
        hs, y = GRUTorso(self.hidden, self.gru_size, self.activation,
                         self.layer_norm_input).unroll(carry, x, firsts)
        return hs, on_rows(value_head(self.num_values), y)

    def __call__(self, carry, x, first):
        return _one_step(self.unroll, carry, x, first)


def unroll(module: nn.Module, params, carry, xs, firsts):
    """A recurrent module over a whole sequence with the parameters of its one-step call:
    ``(carry [..., H], xs [T, ..., d], firsts [T, ...]) -> (carries [T, ..., H], outputs
    [T, ...])``, ``carries[t]`` the carry after step t (``carries[-1]`` continues the
    sequence). Equal to ``unroll_reference`` up to rounding; the work that does not
    depend on the carry runs once for all time steps."""
    return module.apply(params, carry, xs, firsts, method="unroll")


def unroll_reference(module: nn.Module, params, carry, xs, firsts):
    """The slow reference of ``unroll``: the one-step call, step after step."""

    def step(carry, inputs):
        carry, out = module.apply(params, carry, *inputs)
        return carry, (carry, out)

    return jax.lax.scan(step, carry, (xs, firsts))[1]
