"""LICA: learning implicit credit assignment (Zhou et al. 2020, NeurIPS, "Learning Implicit
Credit Assignment for Cooperative Multi-Agent Reinforcement Learning").

Decentralised actors: one GRU policy shared by all agents over (o^a_t, u^a_{t-1}, a)
(``algos/common/actors.py``); pi^a is the softmax over the available actions (unavailable
ones at probability 0, the rest renormalised), optionally with an exploration floor.

The centralised critic is a mixing network over the joint policy vector
p = (p_1, .., p_n), p_a in the simplex over A actions, whose weights come from
hypernetworks of the global state s (no monotonicity constraint: the state multiplies the
action path):

    Q(s, p) = w_2(s) . relu(p W_1(s) + b_1(s)) + b_2(s),   W_1(s) [n A, E], w_2(s) [E]

Per iteration, on one batch:

    1. collect T steps from B parallel envs with the current actors              (rollout)
    2. TD(lambda) targets y_t from the target critic on the one-hot actions taken,
       y_t = r_t + gamma ((1 - lambda) Q-hat(s_{t+1}, u_{t+1}) + lambda y_{t+1})
    3. one critic step on mean (y_t - Q(s_t, onehot(u_t)))^2; the target critic is reset to
       the critic every ``target_update_every`` critic steps
    4. one actor step on -mean_t Q(s_t, pi_1(tau_1), .., pi_n(tau_n)) - xi H / stop(H): the
       critic (just updated) differentiated with respect to every agent's probabilities,
       and the adaptive entropy whose gradient is xi grad H / H (``entropy="plain"``: -xi H)

Batches are fixed-length rollouts of T steps from B envs that reset themselves, with COMA's
bootstrap semantics: Q-hat(s_{t+1}, u_{t+1}) of the same episode, u_{t+1} the action taken,
or, where the data ends or a time limit cut the episode, a joint action sampled from the
actors at s_{t+1}; terminations are never bootstrapped through, time limits are.

The reward is the team's: the mean of the learning agents' rewards. On an env with several
teams (``simple_tag``), ``team_algos`` names which team learns ("lica") and how the others
play: "random" (uniformly at random) or "frozen" (greedily with the initial parameters).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ctde import prng
from ctde.algos import registry
from ctde.algos.common import actors, checks, networks, recurrent
from ctde.algos.common import distributions as dist
from ctde.algos.common.networks import RecurrentCategoricalPolicy, RecurrentGaussianPolicy, dense
from ctde.algos.common.recurrent import Transition
from ctde.algos.common.returns import lambda_return
from ctde.algos.common.types import Trainer
from ctde.envs.core import MultiAgentEnv
from ctde.envs.wrappers import training_env

CAPABILITIES = {
    "discrete_actions": True,
    "continuous_actions": True,  # Gaussian actors; the critic takes the action vectors
    "competitive": False,
    # One critic of one team's return: an env with several teams is refused by make_train
    # unless team_algos names the learning team (the others random or frozen).
    "cooperative_only": False,
    "needs_global_state": True,
    "recurrent": True,
    "shared_policy": False,  # other teams play random or frozen, not self-play of one network
}

TEAM_ALGOS = ("lica", "random", "frozen")
HYPERNETS = ("pymarl2", "official")
ENTROPIES = ("adaptive", "plain")


@dataclasses.dataclass(frozen=True)
class Config:
    """LICA settings. Defaults follow the official configuration (lica.yaml and PyMARL's
    default.yaml of the paper's code): Adam, actor lr 2.5e-3, critic lr 5e-4, global
    gradient-norm clip 10, gamma 0.99, TD(lambda) 0.8, a target critic copied every 200
    critic steps, mixing embed 64 with two-layer hypernetworks, entropy coefficient 0.11
    (lica.yaml's value; its comment suggests 0.06, or 0.03 on 3s5z_vs_3s6z), a GRU of 64
    after a 64-unit layer, batches of 32 envs. The hypernetwork of W_1 has a 64-unit hidden
    layer as PyMARL2's copy sizes it (``hypernet="official"``: a hidden layer of
    E * n * |A| units, as the official code). The official action selector samples the
    softmax without an epsilon floor, hence epsilon 0."""

    num_envs: int = 32  # B: parallel environments (official: 32 episodes per batch)
    rollout_steps: int = 32  # T: steps collected per env per iteration
    gamma: float = 0.99
    td_lambda: float = 0.8
    actor_lr: float = 2.5e-3
    critic_lr: float = 5e-4
    optim_eps: float = 1e-8  # Adam's (PyTorch's default)
    max_grad_norm: float = 10.0  # global gradient-norm clip of each network (0: off)
    target_update_every: int = 200  # critic steps between target-critic copies
    ent_coef: float = 0.11  # xi: the entropy coefficient
    entropy: str = "adaptive"  # "adaptive": xi H / stop(H); "plain": xi H (ablation)
    epsilon_start: float = 0.0  # exploration floor, annealed linearly (0: the plain softmax)
    epsilon_finish: float = 0.0
    epsilon_anneal_steps: int = 100_000  # env steps
    mixing_embed: int = 64  # E: the mixing network's hidden width
    hypernet_hidden: int = 64  # hidden width of the hypernetworks
    hypernet: str = "pymarl2"  # W_1's hypernetwork hidden layer: "pymarl2" (hypernet_hidden)
    #                            or "official" (E * n * |A| units)
    hidden: tuple[int, ...] = (64,)  # actor layers before the GRU
    gru_size: int = 64
    activation: str = "relu"
    team_algos: tuple[str, ...] = ()  # per env team: "lica" (one team), "random" or "frozen"

    def __post_init__(self):
        algo = "lica"
        checks.at_least(self, algo, 1, "num_envs", "rollout_steps", "target_update_every",
                        "gru_size", "mixing_embed", "hypernet_hidden")
        checks.positive(self, algo, "actor_lr", "critic_lr", "optim_eps")
        checks.within(self, algo, 0, 1, "gamma", "td_lambda", "epsilon_start", "epsilon_finish")
        checks.at_least(self, algo, 0, "max_grad_norm", "epsilon_anneal_steps", "ent_coef")
        checks.one_of(self, algo, "entropy", ENTROPIES)
        checks.one_of(self, algo, "hypernet", HYPERNETS)
        checks.network(self, algo)
        bad = [a for a in self.team_algos if a not in TEAM_ALGOS]
        if bad:
            raise ValueError(f"{algo}: team_algos entries must be one of {', '.join(TEAM_ALGOS)}, "
                             f"got {bad[0]!r}")
        if self.team_algos and self.team_algos.count("lica") != 1:
            raise ValueError(f"{algo}: team_algos must name exactly one learning team 'lica', "
                             f"got {', '.join(self.team_algos)}")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_steps


# --- the mixing critic -------------------------------------------------------------------------


class MixingCritic(nn.Module):
    """Q(s, p) = w_2(s) . relu(p W_1(s) + b_1(s)) + b_2(s), the paper's mixing critic.

    ``policies [..., n, A]`` (probabilities or one-hots), ``state [..., S]`` -> Q ``[...]``.
    Hypernetworks of s: W_1 by a two-layer MLP (hidden ``w1_hidden``) to ``[n A, E]``; w_2 by a
    two-layer MLP (hidden ``hidden``) to ``[E]``; b_1 linear to ``[E]``; b_2 a two-layer MLP
    to a scalar. No absolute values: the action path is not constrained to be monotonic.
    """

    embed: int = 64
    hidden: int = 64
    w1_hidden: int = 64

    @nn.compact
    def __call__(self, policies, state):
        n, num_actions = policies.shape[-2:]
        p = policies.reshape(*policies.shape[:-2], n * num_actions)

        def mix(rows):  # rows [R, S + n A]: 2-D products only
            s, p = rows[:, :-n * num_actions], rows[:, -n * num_actions:]
            w1 = dense(self.w1_hidden, name="w1_hidden")(s)
            w1 = dense(n * num_actions * self.embed, gain=1.0, name="w1")(nn.relu(w1))
            b1 = dense(self.embed, gain=1.0, name="b1")(s)
            h = nn.relu(jnp.einsum("rk,rke->re", p, w1.reshape(-1, n * num_actions, self.embed)) + b1)
            w2 = dense(self.embed, gain=1.0, name="w2")(nn.relu(dense(self.hidden, name="w2_hidden")(s)))
            b2 = dense(1, gain=1.0, name="b2")(nn.relu(dense(self.hidden, name="b2_hidden")(s)))
            return jnp.sum(h * w2, axis=-1) + b2[:, 0]

        state = jnp.broadcast_to(state, (*p.shape[:-1], state.shape[-1]))
        return networks.on_rows(mix, jnp.concatenate([state, p], axis=-1))


def mixing_critic(config: Config, num_agents: int, num_actions: int) -> MixingCritic:
    """The critic ``config`` asks for on ``num_agents`` agents with ``num_actions`` each."""
    w1_hidden = (config.mixing_embed * num_agents * num_actions if config.hypernet == "official"
                 else config.hypernet_hidden)
    return MixingCritic(config.mixing_embed, config.hypernet_hidden, w1_hidden)


def critic_parameter_count(config: Config, state_dim: int, num_agents: int, num_actions: int) -> int:
    """The mixing critic's parameter count (shapes only: nothing is allocated)."""
    critic = mixing_critic(config, num_agents, num_actions)
    shapes = jax.eval_shape(critic.init, jax.random.PRNGKey(0),
                            jnp.zeros((1, num_agents, num_actions)), jnp.zeros((1, state_dim)))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


# --- the paper's terms -------------------------------------------------------------------------


def masked_policy(logits, avail, eps=0.0):
    """pi^a: the softmax over the available actions, unavailable ones at probability 0 and
    the rest renormalised (with an exploration floor eps / |available| when eps > 0),
    ``[..., A]``."""
    return actors.exploration_floor(logits, avail, eps)


def entropy(probs, alive):
    """H: the mean over alive agent-steps of -sum_u pi(u) log pi(u); ``probs [..., N, A]``,
    ``alive [..., N]``."""
    per_agent = -jnp.sum(probs * actors.log_probs(probs) * (probs > 0), axis=-1)
    mask = alive.astype(jnp.float32)
    return (per_agent * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def entropy_bonus(h, ent_coef: float, kind: str = "adaptive"):
    """The entropy term the actor maximises: xi H / stop(H) (adaptive: the gradient is
    xi grad H / H, the paper's dH := -xi (log p + 1) / H) or xi H (plain)."""
    if kind == "adaptive":
        return ent_coef * h / jax.lax.stop_gradient(jnp.maximum(h, 1e-8))
    return ent_coef * h


def td_lambda_targets(reward, q_next, terminated, done, gamma: float, lam: float):
    """y_t over a rollout ``[T, B]`` from the target critic's Q-hat(s_{t+1}, u_{t+1}) of the
    same episode, bootstrapped at the end of the data with its last value."""
    return lambda_return(reward, q_next, terminated, done, q_next[-1], gamma, lam)


def critic_loss(q_taken, targets):
    """mean (y_t - Q(s_t, onehot(u_t)))^2, the targets held constant."""
    return jnp.mean((jax.lax.stop_gradient(targets) - q_taken) ** 2)


def actor_loss(q_policy, h, ent_coef: float, kind: str = "adaptive"):
    """-mean_t Q(s_t, pi(tau_t)) - (the entropy term); ``q_policy [T, B]``."""
    return -jnp.mean(q_policy) - entropy_bonus(h, ent_coef, kind)


# --- the algorithm -----------------------------------------------------------------------------


class Params(NamedTuple):
    actor: Any
    critic: Any
    frozen_actor: Any  # the initial actor parameters of "frozen" teams ({} without)


class LearnerState(NamedTuple):
    params: Params
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    env_state: Any  # [B]
    obs: jax.Array  # [B, N, obs_dim]
    alive: jax.Array  # [B, N] whether each agent acts at obs
    first: jax.Array  # [B] obs starts an episode
    actor_carry: actors.ActorCarry  # [B, N, ...] entering obs
    key: jax.Array
    update_step: jax.Array
    critic_steps: jax.Array  # critic gradient steps so far (the target schedule's clock)


def team_roles(config: Config, env: MultiAgentEnv) -> np.ndarray:
    """Per-agent ``[N]`` role from ``config.team_algos`` ("lica", "random", "frozen"); all
    "lica" on a one-team env. A multi-team env without team_algos is refused in one line
    naming the algorithms for competitive envs (``registry.check_env`` cannot see the
    config, hence ``cooperative_only`` is False and the check lives here)."""
    registry.check_env("lica", env)  # the action kind
    if not config.team_algos:
        if env.num_teams > 1:
            raise ValueError(
                f"lica needs a cooperative env with one team ({env.name} has teams "
                f"{', '.join(env.team_names)}); algorithms for competitive envs: "
                f"{', '.join(registry.supporting('competitive'))}; or lica with one learning "
                f"team, e.g. --team-algos {','.join(['lica'] + ['random'] * (env.num_teams - 1))}")
        return np.array(["lica"] * env.num_agents)
    if len(config.team_algos) != env.num_teams:
        raise ValueError(f"lica: team_algos has {len(config.team_algos)} entries but {env.name} "
                         f"has {env.num_teams} team(s) ({', '.join(env.team_names)})")
    return np.array([config.team_algos[t] for t in np.asarray(env.teams)])


def make_train(config: Config, env: MultiAgentEnv) -> Trainer:
    """Build the pure ``init``, ``update`` and ``act`` of LICA for ``env``."""
    roles = team_roles(config, env)
    raw_env = env
    env = training_env(env)
    n, discrete = env.num_agents, env.discrete
    space = env.action_space
    width = space.n if discrete else space.dim  # of an action vector (one-hot or box point)
    if not discrete and config.entropy == "adaptive":
        raise ValueError("lica: entropy='adaptive' divides by H, which a Gaussian's differential "
                         "entropy can make 0 or negative: use --entropy plain for continuous actions")
    learners = np.flatnonzero(roles == "lica")  # static: the agents the critic mixes
    randoms = jnp.asarray(roles == "random")
    frozen = jnp.asarray(roles == "frozen")
    has_frozen = bool(np.any(roles == "frozen"))
    gru = config.gru_size
    if discrete:
        actor = RecurrentCategoricalPolicy(width, config.hidden, gru, config.activation)
    else:
        actor = RecurrentGaussianPolicy(width, config.hidden, gru, config.activation)
    critic = mixing_critic(config, len(learners), width)

    def optimizer(lr):
        clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
        return optax.chain(*clip, optax.adam(lr, eps=config.optim_eps))

    actor_tx, critic_tx = optimizer(config.actor_lr), optimizer(config.critic_lr)
    envs = recurrent.vectorise(env, raw_env)

    def vector(action):
        """What the critic and the actors' inputs see of an action: its one-hot, or the
        continuous action in [-1, 1]^d itself."""
        return jax.nn.one_hot(action, width) if discrete else action

    def env_action(action):
        """Continuous actions live in [-1, 1]^d; the env gets them mapped onto its box."""
        if discrete:
            return action
        return space.low + (space.high - space.low) * (action + 1.0) / 2.0

    def policy_vector(out, avail, eps, noise):
        """pi's output that goes into the critic, differentiable in ``out``: the masked
        probabilities, or the reparameterised action tanh(mean + std * noise)."""
        if discrete:
            return masked_policy(out, avail, eps)
        mean, log_std = out
        return jnp.tanh(mean + jnp.exp(log_std) * noise)

    def sample(key, out, avail, eps, deterministic):
        if discrete:
            return actors.sample(key, masked_policy(out, avail, eps), deterministic)
        mean, log_std = out
        if deterministic:
            return jnp.tanh(mean)
        return policy_vector(out, avail, eps, prng.normal(key, mean.shape))

    def uniform(key, out, avail):
        if discrete:
            return actors.sample(key, masked_policy(jnp.zeros_like(out), avail))
        return prng.uniform(key, out[0].shape, minval=-1.0, maxval=1.0)

    def team(x):  # the learning agents' rows of x [..., N, d]
        return x[..., learners, :]

    def epsilon(update_step):
        return actors.linear_epsilon(update_step * config.steps_per_update, config.epsilon_start,
                                     config.epsilon_finish, config.epsilon_anneal_steps)

    def policy_step(params: Params, carry, obs, avail, key, eps, deterministic):
        """Every agent's action: learners sample pi (greedy when deterministic), "random"
        agents a uniform available action, "frozen" ones their initial actor's greedy one."""
        x = actors.actor_input(obs, carry.prev_action)
        no_restart = jnp.zeros(obs.shape[:-1], bool)
        h, out = actor.apply(params.actor, carry.h, x, no_restart)
        k_act, k_random = jax.random.split(key)
        rows = randoms if discrete else randoms[:, None]  # per agent, over [..., N(, d)]
        action = sample(k_act, out, avail, eps, deterministic)
        action = jnp.where(rows, uniform(k_random, out, avail), action)
        if has_frozen:
            h_frozen, frozen_out = actor.apply(params.frozen_actor, carry.h, x, no_restart)
            action = jnp.where(frozen if discrete else frozen[:, None],
                               sample(k_act, frozen_out, avail, 0.0, True), action)
            h = jnp.where(frozen[:, None], h_frozen, h)
        return action, actors.ActorCarry(h, vector(action))

    def init(key) -> LearnerState:
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        obs, env_state = envs.reset(jax.random.split(k_env, config.num_envs))
        carry = actors.initial_carry((config.num_envs,), n, gru, width)
        x_actor = actors.actor_input(obs, carry.prev_action)
        actor_params = actor.init(k_actor, carry.h, x_actor, jnp.ones(x_actor.shape[:-1], bool))
        critic_params = critic.init(k_critic, team(carry.prev_action), envs.state(env_state))
        return LearnerState(
            params=Params(actor_params, critic_params,
                          jax.tree.map(jnp.copy, actor_params) if has_frozen else {}),
            target_critic=jax.tree.map(jnp.copy, critic_params),  # its own buffers
            actor_opt=actor_tx.init(actor_params),
            critic_opt=critic_tx.init(critic_params),
            env_state=env_state,
            obs=obs,
            alive=jnp.ones((config.num_envs, n), bool),
            first=jnp.ones(config.num_envs, bool),
            actor_carry=carry,
            key=key,
            update_step=jnp.int32(0),
            critic_steps=jnp.int32(0),
        )

    def rollout(ls: LearnerState, eps):
        policy = functools.partial(policy_step, eps=eps, deterministic=False)
        return recurrent.rollout(ls, envs, config.rollout_steps, policy, env_action=env_action,
                                 reward=lambda r: r[:, learners].mean(-1))  # the team's reward

    def learn(ls: LearnerState, traj: Transition, eps, key):
        params = ls.params
        firsts = jnp.broadcast_to(traj.first[..., None], traj.alive.shape)
        x_actor = actors.actor_input(traj.obs, traj.prev_action)

        # The actors' one forward pass over the batch: its hidden states give the bootstrap
        # actions, its pull-back the actor gradient after the critic step (the actor's
        # parameters do not change in between).
        def policy_logits(actor_params):
            hs, logits = networks.unroll(actor, actor_params, traj.actor_h[0], x_actor, firsts)
            return logits, hs

        logits, pull_back, hs = jax.vjp(policy_logits, params.actor, has_aux=True)
        k_next, k_noise = jax.random.split(key)
        done = traj.done[..., None]
        if discrete:
            next_action = actors.successor_actions(k_next, actor, params.actor, hs, traj.final_obs,
                                                   traj.action, done, traj.final_avail, eps)
        else:  # the same bootstraps, the next action a Gaussian sample at s_{t+1}
            x_next = actors.actor_input(traj.final_obs, traj.action)
            next_out = actor.apply(params.actor, hs, x_next, jnp.zeros(x_next.shape[:-1], bool))[1]
            sampled = sample(k_next, next_out, traj.final_avail, eps, False)
            next_action = jnp.where(done[..., None], sampled,
                                    jnp.concatenate([traj.action[1:], sampled[-1:]]))

        # 2. TD(lambda) targets from the target critic on one-hot actions (u_{t+1} of the episode).
        q_next = critic.apply(ls.target_critic, team(vector(next_action)), traj.final_state)
        targets = td_lambda_targets(traj.reward, q_next, traj.terminated, traj.done,
                                    config.gamma, config.td_lambda)

        # 3. One critic step on the batch, before the actor's.
        def critic_objective(critic_params):
            return critic_loss(critic.apply(critic_params, team(vector(traj.action)), traj.state),
                               targets)

        c_loss, grads = jax.value_and_grad(critic_objective)(params.critic)
        updates, critic_opt = critic_tx.update(grads, ls.critic_opt, params.critic)
        critic_params = optax.apply_updates(params.critic, updates)
        critic_steps = ls.critic_steps + 1
        target_critic = actors.periodic_copy(ls.target_critic, critic_params, critic_steps,
                                             config.target_update_every)

        # 4. The actors through the updated critic's gradient with respect to pi_1..pi_n.
        noise = None if discrete else prng.normal(k_noise, traj.action.shape)

        def actor_objective(logits):
            probs = team(policy_vector(logits, traj.avail, eps, noise))  # [T, B, n, A or d]
            q = critic.apply(critic_params, probs, traj.state)
            if discrete:
                h = entropy(probs, traj.alive[..., learners])
            else:  # the Gaussian's entropy (before the tanh), the same for every agent
                h = dist.gaussian_entropy(logits[1])
            return actor_loss(q, h, config.ent_coef, config.entropy), (jnp.mean(q), h)

        (a_loss, (q_pi, h)), d_logits = jax.value_and_grad(actor_objective, has_aux=True)(logits)
        grads, = pull_back(d_logits)
        updates, actor_opt = actor_tx.update(grads, ls.actor_opt, params.actor)
        actor_params = optax.apply_updates(params.actor, updates)
        stats = {"critic_loss": c_loss, "actor_loss": a_loss, "q_policy": q_pi, "entropy": h,
                 "target_mean": jnp.mean(targets), "epsilon": eps}
        return ls._replace(
            params=params._replace(actor=actor_params, critic=critic_params),
            target_critic=target_critic, actor_opt=actor_opt, critic_opt=critic_opt,
            critic_steps=critic_steps,
        ), stats

    update = recurrent.make_update(env, epsilon, rollout, learn)

    def act(params: Params, obs, carry, key, deterministic=False, avail=None):
        """Decentralised execution: agent a acts on its own o^a, previous action and GRU state
        (``carry`` from ``init_carry`` at an episode's start), with the final exploration
        floor when stochastic. Returns (actions ``[..., N]``, carry)."""
        if avail is None:
            avail = jnp.ones((*obs.shape[:-1], width if discrete else 1), bool)
        action, carry = policy_step(params, carry, obs, avail, key, config.epsilon_finish,
                                    deterministic)
        return env_action(action), carry

    def init_carry(batch_shape=()):
        return actors.initial_carry(batch_shape, n, gru, width)

    return Trainer(config, env, init, update, act, init_carry, config.steps_per_update)
