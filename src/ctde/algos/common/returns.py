"""Advantage and return estimators, as reverse ``lax.scan``s over time.

Conventions (time-major, any trailing batch shape ``...``):
- ``reward[t]``, ``terminated[t]``, ``done[t]`` describe the transition s_t -> s_{t+1};
  ``done = terminated | truncated`` ends the episode.
- ``next_value[t]`` is V(s_{t+1}) of the *same* episode (for a truncated episode: the
  value of its final observation), so a time limit is bootstrapped and a termination
  is not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def generalized_advantage_estimate(
    reward, value, next_value, terminated, done, gamma: float, lam: float
):
    """GAE (Schulman et al. 2016).

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}

    Args: arrays ``[T, ...]``; ``terminated``/``done`` broadcastable to ``reward``.
    Returns: (advantage, return = advantage + value), both ``[T, ...]``.
    """
    not_terminated = 1.0 - jnp.asarray(terminated, jnp.float32)
    not_done = 1.0 - jnp.asarray(done, jnp.float32)
    delta = reward + gamma * not_terminated * next_value - value

    def backward(next_advantage, x):
        delta_t, not_done_t = x
        advantage = delta_t + gamma * lam * not_done_t * next_advantage
        return advantage, advantage

    _, advantage = jax.lax.scan(
        backward,
        jnp.zeros_like(delta[-1]),
        (delta, jnp.broadcast_to(not_done, delta.shape)),
        reverse=True,
    )
    return advantage, advantage + value


def lambda_return(reward, next_value, terminated, done, bootstrap, gamma: float, lam: float):
    """TD(lambda) targets (the recursive form used by COMA and LICA).

        y_t = r_t + gamma * (1 - terminated_t) * ((1 - lam) * V(s_{t+1}) + lam * y_{t+1})

    where the recursion is cut at episode ends (``done_t``: y_{t+1} is replaced by
    V(s_{t+1})) and at the end of the data by ``bootstrap`` = V(s_T).
    """
    not_terminated = 1.0 - jnp.asarray(terminated, jnp.float32)
    done = jnp.broadcast_to(jnp.asarray(done, bool), reward.shape)

    def backward(next_return, x):
        r, v_next, not_term, d = x
        blended = jnp.where(d, v_next, (1.0 - lam) * v_next + lam * next_return)
        y = r + gamma * not_term * blended
        return y, y

    _, targets = jax.lax.scan(
        backward,
        bootstrap,
        (reward, next_value, jnp.broadcast_to(not_terminated, reward.shape), done),
        reverse=True,
    )
    return targets
