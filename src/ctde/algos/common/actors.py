"""Recurrent decentralised actors as COMA (Foerster et al. 2018, Sec. 5) and LICA use them.

Every agent runs the same GRU policy (parameters shared) over its own action-observation
history: at step t it reads (o^a_t, u^a_{t-1} one-hot, a's id one-hot) and outputs logits over
its actions. Unavailable actions get probability 0; the exploration floor mixes the softmax
with a uniform distribution over the available actions,

    pi^a(u | tau^a) = (1 - eps) softmax(logits)_u + eps / |available|,

with eps annealed linearly (COMA: 0.5 -> 0.02). The actor's carry is (GRU state, own previous
action one-hot); both restart from zeros at an episode's first step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ctde import prng
from ctde.algos.common import distributions as dist
from ctde.algos.common.networks import one_hot_ids


class ActorCarry(NamedTuple):
    """What a recurrent actor carries from one step to the next, ``[..., N, ...]``."""

    h: jax.Array  # [..., N, gru_size]
    prev_action: jax.Array  # [..., N, A] one-hot of the agent's previous action (zeros at start)


def initial_carry(batch_shape, num_agents: int, gru_size: int, num_actions: int) -> ActorCarry:
    return ActorCarry(jnp.zeros((*batch_shape, num_agents, gru_size)),
                      jnp.zeros((*batch_shape, num_agents, num_actions)))


def restart(carry: ActorCarry, first) -> ActorCarry:
    """Zero the carry of envs whose observation starts an episode (``first [...]``)."""
    return jax.tree.map(lambda x: jnp.where(first[..., None, None], 0.0, x), carry)


def actor_input(obs, prev_action):
    """(o^a_t, u^a_{t-1} one-hot, a's id one-hot): ``[..., N, obs_dim + A + N]``."""
    n = obs.shape[-2]
    return jnp.concatenate([obs, prev_action, one_hot_ids(n, obs.shape[:-2])], axis=-1)


def exploration_floor(logits, avail, eps):
    """pi = (1 - eps) softmax(logits over available actions) + eps / |available| on the
    available actions, 0 on the others. ``logits, avail [..., A]`` -> probabilities ``[..., A]``."""
    avail = avail.astype(bool)
    probs = jax.nn.softmax(dist.masked_logits(logits, avail), axis=-1)
    uniform = avail / jnp.maximum(avail.sum(-1, keepdims=True), 1)
    return jnp.where(avail, (1.0 - eps) * probs + eps * uniform, 0.0)


def log_probs(probs):
    """log pi with unavailable actions (probability 0) at a finite, very negative value, so
    sampling never picks them and no NaN enters a gradient."""
    return jnp.where(probs > 0, jnp.log(jnp.maximum(probs, 1e-30)), dist.MASKED_LOGIT)


def sample(key, probs, deterministic: bool = False):
    """Actions ``[...]`` drawn from ``probs [..., A]`` (the most probable when deterministic)."""
    if deterministic:
        return jnp.argmax(probs, axis=-1).astype(jnp.int32)
    return prng.categorical(key, log_probs(probs)).astype(jnp.int32)


def linear_epsilon(env_steps, start: float, finish: float, anneal_steps: int):
    """eps decays linearly from ``start`` to ``finish`` over ``anneal_steps`` env steps."""
    if anneal_steps <= 0:
        return jnp.float32(finish)
    frac = jnp.minimum(env_steps / anneal_steps, 1.0)
    return jnp.float32(start + (finish - start) * frac)


def periodic_copy(target, online, step, every: int):
    """The target network schedule of COMA and LICA: after every ``every``-th critic step
    (``step`` counts steps done, including this one) the target becomes a copy of the online
    network; otherwise it is kept."""
    copy = (step % every) == 0
    return jax.tree.map(lambda t, o: jnp.where(copy, o, t), target, online)


def taken(values, action):
    """values ``[..., A]`` at the integer ``action [...]``."""
    return jnp.take_along_axis(values, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def successor_actions(key, actor, actor_params, hs, final_obs, action, done, final_avail, eps):
    """u_{t+1} for every step of a rollout ``[T, B, N]``: the next action taken in the same
    episode, or, where the data ends or the episode ended at t (a time limit cut it), one
    sampled from the actors at s_{t+1} of that episode, so every TD(lambda) bootstrap
    Q(s_{t+1}, u_{t+1}) is on the same episode.

    ``hs [T, B, N, H]``: the actor's GRU states after each step; ``final_obs`` o_{t+1} of the
    same episode; ``action [T, B, N]`` the actions taken; ``done [T, B, 1]``;
    ``final_avail [T, B, N, A]``.
    """
    num_actions = final_avail.shape[-1]
    x_next = actor_input(final_obs, jax.nn.one_hot(action, num_actions))
    # One step from each step's carry (no restart): o_{t+1}'s logits in the same episode.
    next_logits = actor.apply(actor_params, hs, x_next, jnp.zeros(x_next.shape[:-1], bool))[1]
    sampled = sample(key, exploration_floor(next_logits, final_avail, eps))
    taken_next = jnp.concatenate([action[1:], sampled[-1:]])
    return jnp.where(done, sampled, taken_next)
