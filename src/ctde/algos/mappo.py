"""MAPPO: PPO with a centralised value function (Yu et al. 2022, "The Surprising
Effectiveness of PPO in Cooperative Multi-Agent Games").

Decentralised actor pi(a_i | o_i, i), shared by all agents; centralised critic
V(x_i) trained on value-normalised targets. Per iteration:

    1. collect T steps from B parallel envs with the current policy      (rollout)
    2. GAE advantages from de-normalised values                           (Sec. 4.1)
    3. E epochs over M minibatches of the clipped surrogate objective
       plus the clipped value loss and an entropy bonus                   (Sec. 4.2-4.4)

Dead agents (micro tasks) are left out of the policy loss, its entropy and the advantage
statistics; the critic fits their values too (``fit_dead_values``), since the living
agents' GAE targets bootstrap from them through a death.

The critic input ("state variant", Sec. 4.2) is one of
    CL  concatenated local observations
    EP  the environment-provided global state
    AS  EP plus the agent's own observation (agent-specific global state)
    FP  the env's feature-pruned agent-specific state (envs with ``agent_state``)
and ``independent=True`` gives IPPO (the critic sees the agent's own observation).
Per-agent rewards get per-agent values: each critic input carries the agent's one-hot
id, or, with ``critic_heads`` and an input shared by all agents (CL, EP), the critic reads
it once per env and outputs one value per agent.

Recurrent MAPPO (``recurrent=True``, Sec. 4.5 and appendix): GRU actor and critic; the
rollout is cut into data chunks of ``chunk_length`` steps that are trained as
independent sequences, each starting from the hidden state recorded at its first step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ctde.algos.common import checks, valuenorm
from ctde.algos.common import distributions as dist
from ctde.algos.common.episodes import episode_sums
from ctde.algos.common.networks import (
    CategoricalPolicy,
    GaussianPolicy,
    RecurrentCategoricalPolicy,
    RecurrentGaussianPolicy,
    RecurrentValueNetwork,
    ValueNetwork,
    one_hot_ids,
    unroll,
)
from ctde.algos.common.returns import generalized_advantage_estimate
from ctde.algos.common.types import Trainer
from ctde.envs.core import MultiAgentEnv
from ctde.envs.wrappers import training_env

CAPABILITIES = {
    "discrete_actions": True,
    "continuous_actions": True,
    "competitive": False,  # one shared policy and critic: cooperative tasks
    "needs_global_state": False,  # only for critic_input EP/AS/FP
    "recurrent": True,  # Config.recurrent: GRU actor and critic over data chunks
}


@dataclasses.dataclass(frozen=True)
class Config:
    """MAPPO settings. Defaults follow the paper's MPE settings (Yu et al. 2022,
    appendix tables: gamma 0.99, GAE 0.95, clip 0.2, entropy 0.01, Huber delta 10,
    grad-norm 10, ReLU, input LayerNorm, few epochs) with a higher, linearly annealed
    learning rate and 4 minibatches, which learned fastest per env step on
    simple_spread in our sweep (docs/results.md)."""

    num_envs: int = 64  # B: parallel environments
    rollout_steps: int = 25  # T: steps collected per env per iteration
    num_epochs: int = 5  # E: passes over each batch (few: sample reuse hurts in MARL)
    num_minibatches: int = 4  # M: minibatches per epoch (split over the env axis)
    actor_lr: float = 2e-3
    critic_lr: float = 2e-3
    anneal_lr: bool = True  # decay both learning rates linearly to 0 over total_updates
    # update() calls the learning rates decay over: needed with anneal_lr (make_train refuses
    # 0); `ctde train` sets it from --steps (steps / steps_per_update, rounded up).
    total_updates: int = 0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2  # policy ratio clip
    value_clip_eps: float = 0.2  # value clip around the rollout's prediction (0: off)
    ent_coef: float = 0.01
    max_grad_norm: float = 10.0
    huber_delta: float = 10.0  # Huber value loss; 0 gives the squared error
    value_norm: str = "running"  # "running" mean/std, "popart", or "none"
    value_norm_beta: float = 0.99999
    normalize_advantages: bool = True
    # Fit V on dead agents' rows too: rewards are shared and GAE runs through a death, so
    # the living's targets bootstrap from those values (False: leave them unfitted).
    fit_dead_values: bool = True
    critic_input: str = "CL"  # "CL", "EP", "AS" or "FP"
    # CL/EP: True reads the shared input once per env and outputs a value per agent (about
    # 1/N of the critic's arithmetic); False (default) evaluates it per agent with the
    # agent's one-hot id appended, as AS/FP do, which learned faster on simple_spread.
    critic_heads: bool = False
    independent: bool = False  # IPPO: critic sees only the agent's own observation
    hidden: tuple[int, ...] = (64, 64)  # MLP widths (the encoder before the GRU if recurrent)
    activation: str = "relu"
    layer_norm_input: bool = True
    recurrent: bool = False  # rMAPPO: GRU actor and critic
    gru_size: int = 64
    chunk_length: int = 0  # L: training sequence length (0: the whole rollout)

    def __post_init__(self):
        checks.at_least(self, "mappo", 1, "num_envs", "rollout_steps", "num_epochs", "num_minibatches")
        checks.at_least(self, "mappo", 0, "total_updates")
        if self.chunk_length < 0 or self.rollout_steps % self.chunk_len:
            raise ValueError(
                f"mappo: chunk_length ({self.chunk_length}) must divide rollout_steps "
                f"({self.rollout_steps})"
            )
        if self.num_sequences % self.num_minibatches:
            raise ValueError(
                f"mappo: num_minibatches ({self.num_minibatches}) must divide the number of "
                f"training sequences, num_envs x rollout_steps / chunk_length ({self.num_sequences})"
            )
        if self.recurrent:
            checks.at_least(self, "mappo", 1, "gru_size")
        checks.positive(self, "mappo", "actor_lr", "critic_lr")
        checks.within(self, "mappo", 0, 1, "gamma", "gae_lambda")
        checks.one_of(self, "mappo", "value_norm", ("running", "popart", "none"))
        checks.one_of(self, "mappo", "critic_input", ("CL", "EP", "AS", "FP"))
        checks.network(self, "mappo")

    @property
    def steps_per_update(self) -> int:
        """Environment steps (of all agents at once) collected per iteration."""
        return self.num_envs * self.rollout_steps

    @property
    def chunk_len(self) -> int:
        return self.chunk_length or self.rollout_steps

    @property
    def num_sequences(self) -> int:
        """Training sequences per batch: every env's rollout cut into chunks."""
        return self.num_envs * (self.rollout_steps // max(self.chunk_len, 1))


class Params(NamedTuple):
    actor: Any
    critic: Any


class LearnerState(NamedTuple):
    params: Params
    actor_opt: Any
    critic_opt: Any
    value_norm: valuenorm.ValueNormState
    env_state: Any  # [B] batched environment state
    obs: jax.Array  # [B, N, obs_dim]
    alive: jax.Array  # [B, N] whether each agent acts at obs
    first: jax.Array  # [B] whether obs starts an episode (recurrent state restarts)
    actor_h: jax.Array  # [B, N, gru_size] (size 0 when feed-forward)
    critic_h: jax.Array  # [B, N, gru_size], [B, 1, gru_size] with critic heads
    key: jax.Array
    update_step: jax.Array


class Transition(NamedTuple):
    """One rollout step for every env, ``[B, ...]`` (``[T, B, ...]`` once stacked)."""

    obs: jax.Array  # [B, N, obs_dim]
    critic_state: jax.Array  # [B, state_dim] global state, or [B, N, d] for FP
    avail: jax.Array  # [B, N, A]
    action: jax.Array  # [B, N] or [B, N, d]
    log_prob: jax.Array  # [B, N]
    value: jax.Array  # [B, N] V(x_t), de-normalised
    value_raw: jax.Array  # [B, N] the critic's own output for V(x_t) (normalised space)
    next_value: jax.Array  # [B, N] V(x_{t+1}) of the same episode, de-normalised
    reward: jax.Array  # [B, N]
    terminated: jax.Array  # [B]
    done: jax.Array  # [B]
    alive: jax.Array  # [B, N]
    first: jax.Array  # [B] obs starts an episode
    actor_h: jax.Array  # [B, N, H] hidden states entering this step
    critic_h: jax.Array  # [B, N or 1, H]


# --- the paper's losses ----------------------------------------------------------------


def clipped_surrogate_objective(log_prob, old_log_prob, advantage, clip_eps, mask):
    """PPO's L^CLIP, to be maximised (mean over active agent-steps):

        r = pi(a|o) / pi_old(a|o),   L = E[min(r A, clip(r, 1-eps, 1+eps) A)]

    Shapes: every argument ``[..., N]``.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
    return masked_mean(jnp.minimum(unclipped, clipped), mask)


def clipped_value_loss(value, old_value, target, clip_eps, huber_delta, mask):
    """MAPPO's value loss (Sec. 4.1, normalised space):

        V_clip = V_old + clip(V - V_old, -eps, eps)
        L^V    = E[max(l(V - y), l(V_clip - y))]

    with l the Huber loss (delta ``huber_delta``) or the squared error / 2 when
    ``huber_delta`` is 0, and no clipping when ``clip_eps`` is 0.
    """
    loss = value_error(value - target, huber_delta)
    if clip_eps > 0:
        value_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        loss = jnp.maximum(loss, value_error(value_clipped - target, huber_delta))
    return masked_mean(loss, mask)


def value_error(x, huber_delta):
    """l(x): the Huber loss (delta ``huber_delta``), or x^2 / 2 when ``huber_delta`` is 0."""
    return optax.huber_loss(x, delta=huber_delta) if huber_delta > 0 else 0.5 * x**2


def value_clip_fraction(value, old_value, target, clip_eps, huber_delta, mask):
    """The share of active samples whose value gets no gradient from ``clipped_value_loss``:
    V outside its window ``|V - V_old| > eps`` where the clipped branch is the larger one.
    0 when the parameters that produced ``V_old`` are the ones being trained."""
    if clip_eps <= 0:
        return jnp.zeros((), value.dtype)
    value_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
    larger = value_error(value_clipped - target, huber_delta) > value_error(value - target, huber_delta)
    flat = (jnp.abs(value - old_value) > clip_eps) & larger
    return masked_mean(flat.astype(value.dtype), mask)


def masked_mean(x, mask):
    mask = mask.astype(x.dtype)
    return (x * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def normalize_advantages(advantage, mask, eps: float = 1e-8):
    mean = masked_mean(advantage, mask)
    std = jnp.sqrt(masked_mean((advantage - mean) ** 2, mask))
    return (advantage - mean) / (std + eps)


# --- the algorithm ---------------------------------------------------------------------


def make_train(config: Config, env: MultiAgentEnv) -> Trainer:
    """Build MAPPO's pure ``init``, ``update`` and ``act`` for ``env``."""
    pruned = config.critic_input == "FP" and not config.independent
    if pruned and not hasattr(env, "agent_state"):
        raise ValueError(
            f"mappo: critic_input FP needs an env with agent-specific states (env.agent_state); "
            f"{env.name} has none: use CL, EP or AS"
        )
    if config.anneal_lr and config.total_updates < 1:
        # A schedule without a length would silently train a different algorithm.
        raise ValueError(
            "mappo: anneal_lr needs total_updates, the number of update() calls the learning "
            "rates decay over (ctde train sets it from --steps): set "
            "total_updates, or anneal_lr=False for constant learning rates"
        )
    raw_env = env
    env = training_env(env)
    n = env.num_agents
    discrete = env.discrete
    space = env.action_space
    # With value heads, an input shared by all agents (CL, EP) is read once per env.
    heads = config.critic_heads and not config.independent and config.critic_input in ("CL", "EP")
    critic_rows, num_values = (1, n) if heads else (n, 1)
    net = (config.hidden, config.activation, config.layer_norm_input)
    if config.recurrent:
        rnet = (config.hidden, config.gru_size, config.activation, config.layer_norm_input)
        actor = (RecurrentCategoricalPolicy(space.n, *rnet) if discrete
                 else RecurrentGaussianPolicy(space.dim, *rnet))
        critic = RecurrentValueNetwork(*rnet, num_values=num_values)
    else:
        actor = CategoricalPolicy(space.n, *net) if discrete else GaussianPolicy(space.dim, *net)
        critic = ValueNetwork(*net, num_values=num_values)
    hidden_size = config.gru_size if config.recurrent else 0

    def actor_input(obs):  # [..., N, obs_dim] -> [..., N, obs_dim + N]
        return jnp.concatenate([obs, one_hot_ids(n, obs.shape[:-2])], axis=-1)

    def critic_state(raw_state, global_state):
        """What the critic reads besides observations: the FP agent states ``[N, d]`` or
        the global state ``[state_dim]`` (unused by CL)."""
        return raw_env.agent_state(raw_state, "FP") if pruned else global_state

    def critic_input(obs, cs):
        """obs ``[..., N, obs_dim]``, cs from critic_state -> ``[..., critic_rows, d]``."""
        batch = obs.shape[:-2]
        if heads:
            return obs.reshape(*batch, 1, -1) if config.critic_input == "CL" else cs[..., None, :]
        if config.independent:
            x = obs
        elif pruned:
            x = cs
        elif config.critic_input == "CL":
            x = jnp.broadcast_to(obs.reshape(*batch, 1, -1), (*batch, n, n * env.obs_dim))
        else:
            x = jnp.broadcast_to(cs[..., None, :], (*batch, n, env.state_dim))
            if config.critic_input == "AS":
                x = jnp.concatenate([x, obs], axis=-1)
        return jnp.concatenate([x, one_hot_ids(n, batch)], axis=-1)

    def values(out):  # critic output -> [..., N]
        return out[..., 0, :] if heads else out

    def step_network(network, params, h, x, first):
        """One time step of a network: ``(h, x [..., R, d], first [...]) -> (h, out)`` with
        R rows (agents, or 1 for a critic with heads)."""
        if config.recurrent:
            return network.apply(params, h, x, rows_first(first, x))
        return h, network.apply(params, x)

    def unroll_network(network, params, h0, x, first):
        """A sequence ``x [L, ..., R, d]`` from hidden state ``h0``; restarts where ``first``
        ``[L, ...]``. Feed-forward networks take the whole sequence as one batch; recurrent
        ones run everything that does not depend on the carry for all L steps at once."""
        if not config.recurrent:
            return network.apply(params, x)
        return unroll(network, params, h0, x, rows_first(first, x))[1]

    def rows_first(first, x):  # [...] -> [..., R]
        return jnp.broadcast_to(first[..., None], x.shape[:-1])

    def masked(out, avail):
        return dist.masked_logits(out, avail) if discrete else out

    def sample(key, pi, deterministic=False):
        if discrete:
            action = dist.categorical_sample(key, pi, deterministic)
            return action, dist.categorical_log_prob(pi, action)
        mean, log_std = pi
        action = dist.gaussian_sample(key, mean, log_std, deterministic)
        return action, dist.gaussian_log_prob(mean, log_std, action)

    def log_prob_and_entropy(pi, action):
        if discrete:
            return dist.categorical_log_prob(pi, action), dist.categorical_entropy(pi)
        mean, log_std = pi
        return (
            dist.gaussian_log_prob(mean, log_std, action),
            dist.gaussian_entropy(log_std, mean.shape[:-1]),
        )

    def env_action(action):
        """Continuous policies act in [-1, 1]; map onto the env's box and clip."""
        if discrete:
            return action
        centre, half = (space.high + space.low) / 2, (space.high - space.low) / 2
        return jnp.clip(centre + half * action, space.low, space.high)

    def optimizer(lr):
        if config.anneal_lr:
            total = config.total_updates * config.num_epochs * config.num_minibatches
            lr = optax.linear_schedule(lr, 0.0, total)
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))

    actor_tx, critic_tx = optimizer(config.actor_lr), optimizer(config.critic_lr)
    step_envs = jax.vmap(env.step)
    reset_envs = jax.vmap(env.reset)
    avail_of = jax.vmap(env.avail_actions)
    state_of = jax.vmap(lambda s: critic_state(s.env_state, env.global_state(s)))
    final_state_of = jax.vmap(critic_state)

    def init(key) -> LearnerState:
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        obs, env_state = reset_envs(jax.random.split(k_env, config.num_envs))
        cs = state_of(env_state)
        actor_h = jnp.zeros((config.num_envs, n, hidden_size))
        critic_h = jnp.zeros((config.num_envs, critic_rows, hidden_size))
        first = jnp.ones(config.num_envs, bool)
        actor_x, critic_x = actor_input(obs), critic_input(obs, cs)
        if config.recurrent:
            actor_params = actor.init(k_actor, actor_h, actor_x, rows_first(first, actor_x))
            critic_params = critic.init(k_critic, critic_h, critic_x, rows_first(first, critic_x))
        else:
            actor_params = actor.init(k_actor, actor_x)
            critic_params = critic.init(k_critic, critic_x)
        return LearnerState(
            params=Params(actor_params, critic_params),
            actor_opt=actor_tx.init(actor_params),
            critic_opt=critic_tx.init(critic_params),
            value_norm=valuenorm.init(),
            env_state=env_state,
            obs=obs,
            alive=jnp.ones((config.num_envs, n), bool),
            first=first,
            actor_h=actor_h,
            critic_h=critic_h,
            key=key,
            update_step=jnp.int32(0),
        )

    def denormalized(norm, v):
        return v if config.value_norm == "none" else valuenorm.denormalize(norm, v)

    def rollout(ls: LearnerState):
        params = ls.params

        def env_step(ls: LearnerState, _):
            key, k_act, k_env = jax.random.split(ls.key, 3)
            obs, first = ls.obs, ls.first
            avail = avail_of(ls.env_state)
            cs = state_of(ls.env_state)
            actor_h, out = step_network(actor, params.actor, ls.actor_h, actor_input(obs), first)
            action, log_prob = sample(k_act, masked(out, avail))
            critic_h, v = step_network(critic, params.critic, ls.critic_h, critic_input(obs, cs), first)
            v = values(v)
            next_obs, env_state, reward, terminated, truncated, info = step_envs(
                jax.random.split(k_env, config.num_envs), ls.env_state, env_action(action)
            )
            done = terminated | truncated
            # V(s_{t+1}) of this episode: one more critic step from the new hidden state.
            final_cs = final_state_of(info["final_state"], info["final_global_state"])
            _, v_next = step_network(critic, params.critic, critic_h,
                                     critic_input(info["final_obs"], final_cs), jnp.zeros_like(first))
            v_next = values(v_next)
            transition = Transition(
                obs, cs, avail, action, log_prob, denormalized(ls.value_norm, v), v,
                denormalized(ls.value_norm, v_next), reward, terminated, done, ls.alive,
                ls.first, ls.actor_h, ls.critic_h,
            )
            ls = ls._replace(
                env_state=env_state, obs=next_obs, first=done, actor_h=actor_h, critic_h=critic_h,
                alive=jnp.where(done[:, None], True, info["alive"].astype(bool)), key=key,
            )
            episode_info = {"episode_done": info["episode_done"], "episode": info["episode"]}
            return ls, (transition, episode_info)

        return jax.lax.scan(env_step, ls, None, config.rollout_steps)

    def fitted_values(alive):  # the agent-steps whose value the critic fits
        return alive | config.fit_dead_values

    def learn(ls: LearnerState, traj: Transition, key):
        advantage, target = generalized_advantage_estimate(
            traj.reward, traj.value, traj.next_value,
            traj.terminated[..., None], traj.done[..., None],
            config.gamma, config.gae_lambda,
        )  # [T, B, N]
        norm, critic_params = ls.value_norm, ls.params.critic
        if config.value_norm != "none":
            norm = valuenorm.update(ls.value_norm, target, config.value_norm_beta,
                                    fitted_values(traj.alive))
            if config.value_norm == "popart":
                head = valuenorm.popart_preserve(
                    critic_params["params"]["value_head"], ls.value_norm, norm
                )
                critic_params = {"params": {**critic_params["params"], "value_head": head}}
            target = valuenorm.normalize(norm, target)
        # The clip anchor V_old is what the critic output during the rollout, so the clip
        # window is centred on the prediction of the parameters being trained. With running
        # statistics that is the raw output itself: re-normalising the de-normalised value
        # with the updated statistics would move the anchor by as much as the statistics
        # moved, leaving the prediction outside its window (no gradient). PopArt's rescaled
        # head outputs exactly normalize(new, value) for the rollout's features.
        if config.value_norm == "popart":
            old_value = valuenorm.normalize(norm, traj.value)
        else:
            old_value = traj.value_raw
        if config.normalize_advantages:
            advantage = normalize_advantages(advantage, traj.alive)

        # Cut [T, B] into C chunks of L steps: [L, C * B] independent training sequences.
        length = config.chunk_len
        chunks = config.rollout_steps // length

        def to_sequences(x):
            x = jnp.swapaxes(x.reshape(chunks, length, *x.shape[1:]), 0, 1)  # [L, C, B, ...]
            return x.reshape(length, chunks * x.shape[2], *x.shape[3:])

        batch = jax.tree.map(to_sequences, (traj, advantage, target, old_value))

        def actor_loss(actor_params, mb):
            tr, adv, _, _ = mb  # [L, S, ...]
            out = unroll_network(actor, actor_params, tr.actor_h[0], actor_input(tr.obs), tr.first)
            log_prob, entropy = log_prob_and_entropy(masked(out, tr.avail), tr.action)
            surrogate = clipped_surrogate_objective(log_prob, tr.log_prob, adv, config.clip_eps, tr.alive)
            entropy = masked_mean(entropy, tr.alive)
            approx_kl = masked_mean(tr.log_prob - log_prob, tr.alive)
            return -surrogate - config.ent_coef * entropy, (surrogate, entropy, approx_kl)

        def critic_loss(critic_params, mb):
            tr, _, tgt, old_v = mb
            v = values(unroll_network(critic, critic_params, tr.critic_h[0],
                                      critic_input(tr.obs, tr.critic_state), tr.first))
            fitted = fitted_values(tr.alive)
            loss = clipped_value_loss(v, old_v, tgt, config.value_clip_eps, config.huber_delta, fitted)
            flat = value_clip_fraction(v, old_v, tgt, config.value_clip_eps, config.huber_delta, fitted)
            return loss, flat

        def minibatch_step(carry, mb):
            actor_params, critic_params, actor_opt, critic_opt = carry
            (_, (surrogate, entropy, kl)), g_actor = jax.value_and_grad(actor_loss, has_aux=True)(
                actor_params, mb
            )
            (value_loss, clipped), g_critic = jax.value_and_grad(critic_loss, has_aux=True)(
                critic_params, mb
            )
            updates, actor_opt = actor_tx.update(g_actor, actor_opt, actor_params)
            actor_params = optax.apply_updates(actor_params, updates)
            updates, critic_opt = critic_tx.update(g_critic, critic_opt, critic_params)
            critic_params = optax.apply_updates(critic_params, updates)
            stats = {"policy_objective": surrogate, "entropy": entropy, "approx_kl": kl,
                     "value_loss": value_loss, "value_clip_fraction": clipped}
            return (actor_params, critic_params, actor_opt, critic_opt), stats

        def epoch(carry, key):
            # Shuffle whole sequences into minibatches: [L, S] -> [M, L, S/M].
            perm = jax.random.permutation(key, config.num_sequences)
            per_minibatch = config.num_sequences // config.num_minibatches

            def split(x):
                x = x[:, perm].reshape(length, config.num_minibatches, per_minibatch, *x.shape[2:])
                return jnp.swapaxes(x, 0, 1)

            minibatches = jax.tree.map(split, batch)
            return jax.lax.scan(minibatch_step, carry, minibatches)

        carry = (ls.params.actor, critic_params, ls.actor_opt, ls.critic_opt)
        carry, stats = jax.lax.scan(epoch, carry, jax.random.split(key, config.num_epochs))
        actor_params, critic_params, actor_opt, critic_opt = carry
        stats = jax.tree.map(jnp.mean, stats)
        return ls._replace(
            params=Params(actor_params, critic_params),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            value_norm=norm,
        ), stats

    def update(ls: LearnerState):
        ls, (traj, info) = rollout(ls)
        key, k_learn = jax.random.split(ls.key)
        ls, stats = learn(ls._replace(key=key), traj, k_learn)
        ls = ls._replace(update_step=ls.update_step + 1)
        metrics = {
            "episode_sums": episode_sums(info, env.teams, env.team_names, env.metrics),
            "losses": stats,
        }
        return ls, metrics

    def act(params: Params, obs, carry, key, deterministic=False, avail=None):
        """Decentralised execution: each agent acts on its own observation ``obs [N, obs_dim]``
        (with any leading batch axes) and its own hidden state ``carry [..., N, H]`` (from
        ``init_carry`` at an episode's start). Returns (env actions, carry)."""
        if avail is None:
            avail = jnp.ones((*obs.shape[:-1], env.action_dim), bool)
        no_restart = jnp.zeros(obs.shape[:-2], bool)
        carry, out = step_network(actor, params.actor, carry, actor_input(obs), no_restart)
        action, _ = sample(key, masked(out, avail), deterministic)
        return env_action(action), carry

    def init_carry(batch_shape=()):
        """The actor's hidden state at an episode's start (size 0 when feed-forward)."""
        return jnp.zeros((*batch_shape, n, hidden_size))

    return Trainer(config, env, init, update, act, init_carry, config.steps_per_update)
