"""The rollout of recurrent decentralised actors (COMA, LICA) and the iteration around it.

Batches are fixed-length rollouts of T steps from B envs that reset themselves, not whole
episodes: the actors' carries cross batch boundaries and restart at each episode's first
step. Every step records o_{t+1}, s_{t+1} and the actions available there as they were before
the auto-reset, so the learner can bootstrap on the same episode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ctde.algos.common import actors
from ctde.algos.common.episodes import episode_sums


class VecEnv(NamedTuple):
    """A training env's functions over B envs."""

    step: Any
    reset: Any
    avail: Any  # available actions
    final_avail: Any  # available actions at info["final_state"], a state of the unwrapped env
    state: Any  # global state


def vectorise(env, raw_env) -> VecEnv:
    """``env`` the training env (``training_env(raw_env)``), ``raw_env`` the env it wraps."""
    return VecEnv(jax.vmap(env.step), jax.vmap(env.reset), jax.vmap(env.avail_actions),
                  jax.vmap(raw_env.avail_actions), jax.vmap(env.global_state))


class Transition(NamedTuple):
    """One rollout step for every env ``[B, ...]`` (``[T, B, ...]`` once stacked)."""

    obs: jax.Array  # [B, N, obs_dim] o_t
    state: jax.Array  # [B, state_dim] s_t
    avail: jax.Array  # [B, N, A]
    action: jax.Array  # [B, N] u_t ([B, N, d] for continuous actions)
    prev_action: jax.Array  # [B, N, A] one-hot u_{t-1} (or u_{t-1}; zeros at an episode's start)
    reward: jax.Array  # [B, N] per agent, or what the rollout's ``reward`` makes of it (LICA: [B])
    terminated: jax.Array  # [B]
    done: jax.Array  # [B] terminated or truncated
    alive: jax.Array  # [B, N]
    first: jax.Array  # [B]
    actor_h: jax.Array  # [B, N, H] actor GRU state entering o_t (zeroed at first)
    final_obs: jax.Array  # [B, N, obs_dim] o_{t+1} of the same episode
    final_state: jax.Array  # [B, state_dim] s_{t+1} of the same episode
    final_avail: jax.Array  # [B, N, A] available actions at s_{t+1} of the same episode


def rollout(ls, envs: VecEnv, num_steps: int, policy, *, env_action=None, reward=None,
            alongside=None):
    """``num_steps`` steps of every env from the learner state ``ls`` (a NamedTuple with
    ``params``, ``env_state``, ``obs``, ``alive``, ``first``, ``actor_carry`` and ``key`` over
    B envs): ``(ls after, (Transition [T, B, ...], episode info [T, B]))``.

    ``policy(params, carry, obs, avail, key) -> (action, next carry)``: the actors' step, on
    carries already restarted where an episode starts. ``env_action(action)``: what the env
    is given (the action itself by default). ``reward(reward [B, N])``: what is recorded (the
    per-agent rewards by default). ``alongside(ls, next_ls) -> next_ls``: other recurrent state
    stepped with the actors (COMA's IAC critics).
    """
    num_envs = ls.first.shape[0]

    def env_step(ls, _):
        key, k_act, k_env = jax.random.split(ls.key, 3)
        avail = envs.avail(ls.env_state)
        carry = actors.restart(ls.actor_carry, ls.first)
        action, next_carry = policy(ls.params, carry, ls.obs, avail, k_act)
        next_obs, env_state, r, terminated, truncated, info = envs.step(
            jax.random.split(k_env, num_envs), ls.env_state,
            action if env_action is None else env_action(action))
        done = terminated | truncated
        transition = Transition(
            obs=ls.obs, state=envs.state(ls.env_state), avail=avail, action=action,
            prev_action=carry.prev_action, reward=r if reward is None else reward(r),
            terminated=terminated, done=done, alive=ls.alive, first=ls.first, actor_h=carry.h,
            final_obs=info["final_obs"], final_state=info["final_global_state"],
            final_avail=envs.final_avail(info["final_state"]),
        )
        next_ls = ls._replace(
            env_state=env_state, obs=next_obs, first=done, key=key, actor_carry=next_carry,
            alive=jnp.where(done[:, None], True, info["alive"].astype(bool)),
        )
        if alongside is not None:
            next_ls = alongside(ls, next_ls)
        return next_ls, (transition, {"episode_done": info["episode_done"], "episode": info["episode"]})

    return jax.lax.scan(env_step, ls, None, num_steps)


def make_update(env, epsilon, rollout, learn):
    """One iteration: collect a batch with the current actors at exploration floor
    ``epsilon(update_step)``, then ``learn(ls, batch, eps, key)`` on it. ``rollout(ls, eps)``
    returns ``(ls, (batch, episode info))``."""

    def update(ls):
        eps = epsilon(ls.update_step)
        ls, (batch, info) = rollout(ls, eps)
        key, k_learn = jax.random.split(ls.key)
        ls, stats = learn(ls._replace(key=key), batch, eps, k_learn)
        ls = ls._replace(update_step=ls.update_step + 1)
        return ls, {"episode_sums": episode_sums(info, env.teams, env.team_names, env.metrics),
                    "losses": stats}

    return update
