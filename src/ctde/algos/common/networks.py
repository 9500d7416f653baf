"""All network code: MLP torsos, policy heads and value heads (flax.linen).

Orthogonal initialisation as in MAPPO: gain sqrt(2) in hidden layers, 0.01 for the
policy output (near-uniform initial policy) and 1 for value outputs.
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


# --- recurrent networks: one step at a time, (carry, x, first) -> (carry, out) -----------


class GRUTorso(nn.Module):
    """An MLP encoder followed by a GRU cell. The carry ``[..., gru_size]`` restarts
    from zeros where ``first`` (the observation starts an episode)."""

    hidden: Sequence[int]
    gru_size: int
    activation: str = "relu"
    layer_norm_input: bool = False

    @nn.compact
    def __call__(self, carry, x, first):
        lead = x.shape[:-1]
        x = MLP(self.hidden, self.activation, self.layer_norm_input)(x.reshape(-1, x.shape[-1]))
        carry = jnp.where(first.reshape(-1, 1), 0.0, carry.reshape(-1, carry.shape[-1]))
        carry, y = nn.GRUCell(self.gru_size, name="gru")(carry, x)
        return carry.reshape(*lead, -1), y.reshape(*lead, -1)


class RecurrentCategoricalPolicy(nn.Module):
    num_actions: int
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False

    @nn.compact
    def __call__(self, carry, obs, first):
        carry, y = GRUTorso(self.hidden, self.gru_size, self.activation, self.layer_norm_input)(
            carry, obs, first)
        return carry, dense(self.num_actions, gain=0.01, name="logits")(y)


class RecurrentGaussianPolicy(nn.Module):
    action_dim: int
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False
    init_log_std: float = -0.5

    @nn.compact
    def __call__(self, carry, obs, first):
        carry, y = GRUTorso(self.hidden, self.gru_size, self.activation, self.layer_norm_input)(
            carry, obs, first)
        mean = dense(self.action_dim, gain=0.01, name="mean")(y)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return carry, (mean, log_std)


class RecurrentValueNetwork(nn.Module):
    hidden: Sequence[int] = (64,)
    gru_size: int = 64
    activation: str = "relu"
    layer_norm_input: bool = False
    num_values: int = 1  # as in ValueNetwork

    @nn.compact
    def __call__(self, carry, x, first):
        carry, y = GRUTorso(self.hidden, self.gru_size, self.activation, self.layer_norm_input)(
            carry, x, first)
        return carry, value_head(self.num_values)(y)
