"""COMA: counterfactual multi-agent policy gradients (Foerster et al. 2018, AAAI), and the
paper's baselines IAC-V, IAC-Q, central-V and central-QV as one machinery with a critic choice.

Decentralised actors: one GRU policy shared by all agents over (o^a_t, u^a_{t-1}, a), with the
exploration floor pi = (1 - eps) softmax + eps / |available| (``algos/common/actors.py``).
Critics (``Config.critic``):

    coma        Q(s, o^a, a, u^{-a}, u_{t-1}) -> |A| values, one per action of agent a
                advantage A^a = Q(s, u) - sum_u' pi^a(u' | tau^a) Q(s, (u^{-a}, u'))
    central_qv  the same Q and a V(s, o^a, a, u_{t-1});      advantage Q(s, u) - V(s)
    central_v   V(s, o^a, a, u_{t-1});                       advantage the TD error
    iac_q       a GRU Q(tau^a, .) over the actor's inputs;   advantage Q(tau^a, u^a) - sum pi Q
    iac_v       a GRU V(tau^a) over the actor's inputs;      advantage the TD error

Per iteration (Algorithm 1):

    1. collect T steps from B parallel envs with the current actors              (rollout)
    2. TD(lambda) targets y_t from the target critic on the actions taken
    3. critic steps on (y_t - Q(s_t, u_t))^2: one per time step, from T down to 1 (the
       paper's order; ``critic_updates = "batch"``: one step on the whole batch); the target
       critic is reset to the critic every ``target_update_every`` critic steps
    4. one actor step on -sum_a A^a log pi^a(u^a | tau^a) over alive agent-steps, with the
       advantage from the updated critic (not differentiated)

Batches are fixed-length rollouts of T steps from B envs that reset themselves, not whole
episodes: no env idles after its episode ends and no padding is trained on. Episodes cross
batch boundaries, so the actors' carries (and IAC critics') carry over, and every step's
TD(lambda) target has a correct bootstrap: Q-hat(s_{t+1}, u_{t+1}) of the same episode, with
u_{t+1} the action taken, or, where the data ends or an episode is cut by its time limit, a
joint action sampled from the actors at s_{t+1}. Terminations (a win, a loss) are never
bootstrapped through; time limits are. A dead agent can only take the no-op (its only
available action, probability 1) and its steps are left out of the actor loss.

Rewards are per agent (``[N]``); each critic row a learns agent a's return, which on the
cooperative tasks is the team's.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ctde.algos import registry
from ctde.algos.common import actors, checks, networks, recurrent
from ctde.algos.common.actors import taken
from ctde.algos.common.networks import (
    RecurrentCategoricalPolicy,
    RecurrentValueNetwork,
    ValueNetwork,
    one_hot_ids,
)
from ctde.algos.common.recurrent import Transition
from ctde.algos.common.returns import lambda_return
from ctde.algos.common.types import Trainer
from ctde.envs.core import MultiAgentEnv
from ctde.envs.wrappers import training_env

CAPABILITIES = {
    "discrete_actions": True,
    "continuous_actions": False,  # the counterfactual sums over a discrete action set
    "competitive": False,
    "cooperative_only": True,  # one critic of the team's return: refuses envs with teams
    "needs_global_state": True,
    "recurrent": True,
}

CRITICS = ("coma", "central_qv", "central_v", "iac_q", "iac_v")

#: Registry names -> the settings that make them (``ctde train iac_q 3m``).
PRESETS = {
    "coma": {"critic": "coma"},
    "central_qv": {"critic": "central_qv"},
    "central_v": {"critic": "central_v"},
    "iac_q": {"critic": "iac_q", "critic_updates": "batch"},
    "iac_v": {"critic": "iac_v", "critic_updates": "batch"},
}


@dataclasses.dataclass(frozen=True)
class Config:
    """COMA settings. Defaults follow the paper (Foerster et al. 2018, Sec. 5 and Algorithm 1):
    TD(lambda) 0.8, gamma 0.99, RMSprop (lr 5e-4, alpha 0.99), a target critic reset every
    150 critic steps, eps 0.5 -> 0.02, batches of 30 parallel episodes' worth of envs, one
    critic step per time step; network sizes and gradient clipping as PyMARL's COMA (a GRU of
    64 after a 64-unit layer; a critic of two 128-unit layers; global norm 10)."""

    critic: str = "coma"  # coma, central_qv, central_v, iac_q or iac_v (module docstring)
    num_envs: int = 30  # B: parallel environments (paper: 30 episodes per batch)
    rollout_steps: int = 32  # T: steps collected per env per iteration
    gamma: float = 0.99
    td_lambda: float = 0.8
    actor_lr: float = 5e-4
    critic_lr: float = 5e-4
    optimizer: str = "rmsprop"  # "rmsprop" (paper) or "adam"
    rmsprop_alpha: float = 0.99  # RMSprop's squared-gradient decay
    optim_eps: float = 1e-5
    max_grad_norm: float = 10.0  # global gradient-norm clip of each network (0: off)
    critic_updates: str = "per_step"  # "per_step": T steps per batch, last step first; "batch"
    target_update_every: int = 150  # C: critic steps between target-critic resets
    epsilon_start: float = 0.5
    epsilon_finish: float = 0.02
    # In env steps. The paper anneals "across 750 training episodes" (20-50 k steps if episodes,
    # ~1 M if Algorithm 1's iterations of 30 episodes); PyMARL's COMA anneals over 100 k steps.
    epsilon_anneal_steps: int = 100_000
    ent_coef: float = 0.0  # entropy bonus (not in the paper)
    hidden: tuple[int, ...] = (64,)  # actor layers before the GRU (and IAC critics')
    gru_size: int = 64
    critic_hidden: tuple[int, ...] = (128, 128)  # centralised critics' MLP
    activation: str = "relu"

    def __post_init__(self):
        algo = "coma"
        checks.one_of(self, algo, "critic", CRITICS)
        checks.at_least(self, algo, 1, "num_envs", "rollout_steps", "target_update_every", "gru_size")
        checks.positive(self, algo, "actor_lr", "critic_lr", "optim_eps")
        checks.within(self, algo, 0, 1, "gamma", "td_lambda", "rmsprop_alpha", "epsilon_start",
                      "epsilon_finish")
        checks.at_least(self, algo, 0, "max_grad_norm", "epsilon_anneal_steps", "ent_coef")
        checks.one_of(self, algo, "optimizer", ("rmsprop", "adam"))
        checks.one_of(self, algo, "critic_updates", ("per_step", "batch"))
        checks.network(self, algo)
        if not self.critic_hidden or any(w < 1 for w in self.critic_hidden):
            raise ValueError(f"{algo}: critic_hidden must be positive layer widths, got "
                             f"{self.critic_hidden}")
        if self.recurrent_critic and self.critic_updates == "per_step":
            raise ValueError(f"{algo}: critic {self.critic} is recurrent and trains on whole "
                             "sequences: critic_updates must be 'batch'")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def recurrent_critic(self) -> bool:
        return self.critic.startswith("iac")

    @property
    def q_critic(self) -> bool:
        return self.critic in ("coma", "central_qv", "iac_q")

    @property
    def v_critic(self) -> bool:
        return self.critic in ("central_qv", "central_v", "iac_v")


class Params(NamedTuple):
    actor: Any
    critic: dict  # {"q": ..., "v": ...}: the critics this variant has


class LearnerState(NamedTuple):
    params: Params
    target_critic: dict
    actor_opt: Any
    critic_opt: Any
    env_state: Any  # [B]
    obs: jax.Array  # [B, N, obs_dim]
    alive: jax.Array  # [B, N] whether each agent acts at obs
    first: jax.Array  # [B] obs starts an episode
    actor_carry: actors.ActorCarry  # [B, N, ...] entering obs
    critic_h: jax.Array  # [B, N, gru_size] IAC critics' GRU state (size 0 otherwise)
    key: jax.Array
    update_step: jax.Array
    critic_steps: jax.Array  # critic gradient steps so far (the target schedule's clock)


# --- the paper's terms ---------------------------------------------------------------------


def critic_input(state, obs, joint_action, prev_joint_action):
    """The efficient critic's input for every agent a (Sec. 4, Fig. 1c), ``[..., N, d]``:

        (s, o^a, a's id, u^{-a} one-hot with a's own slot zeroed, u_{t-1} one-hot of all agents)

    ``state [..., S]``, ``obs [..., N, o]``, ``joint_action``/``prev_joint_action [..., N, A]``
    one-hot. Its output is Q(s, (u^{-a}, u')) for every action u' of a.
    """
    n, num_actions = joint_action.shape[-2:]
    batch = obs.shape[:-2]
    others = jnp.ones((n, n, 1)) - jnp.eye(n)[:, :, None]  # [a, b, 1]: b != a
    u_minus_a = (joint_action[..., None, :, :] * others).reshape(*batch, n, n * num_actions)
    return jnp.concatenate([
        jnp.broadcast_to(state[..., None, :], (*batch, n, state.shape[-1])),
        obs,
        one_hot_ids(n, batch),
        u_minus_a,
        jnp.broadcast_to(prev_joint_action.reshape(*batch, 1, n * num_actions),
                         (*batch, n, n * num_actions)),
    ], axis=-1)


def state_value_input(state, obs, prev_joint_action):
    """central-V's input for every agent a: (s, o^a, a's id, u_{t-1}) ``[..., N, d]``."""
    n, num_actions = prev_joint_action.shape[-2:]
    batch = obs.shape[:-2]
    return jnp.concatenate([
        jnp.broadcast_to(state[..., None, :], (*batch, n, state.shape[-1])),
        obs,
        one_hot_ids(n, batch),
        jnp.broadcast_to(prev_joint_action.reshape(*batch, 1, n * num_actions),
                         (*batch, n, n * num_actions)),
    ], axis=-1)


def counterfactual_baseline(q_values, probs):
    """b^a = sum_u' pi^a(u' | tau^a) Q(s, (u^{-a}, u')): ``[..., N, A]`` x2 -> ``[..., N]``."""
    return jnp.sum(probs * q_values, axis=-1)


def counterfactual_advantage(q_values, probs, action):
    """A^a(s, u) = Q(s, u) - sum_u' pi^a(u' | tau^a) Q(s, (u^{-a}, u'))  (Eq. 4), ``[..., N]``."""
    return taken(q_values, action) - counterfactual_baseline(q_values, probs)


def td_error(reward, value, next_value, terminated, gamma):
    """delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t): central-V's and IAC-V's
    advantage. ``terminated`` broadcastable to ``reward``."""
    return reward + gamma * (1.0 - terminated) * next_value - value


def policy_gradient_loss(advantage, log_prob_taken, alive):
    """-sum_a A^a log pi^a(u^a | tau^a), averaged over alive agent-steps; the advantage is a
    constant (not differentiated)."""
    mask = alive.astype(jnp.float32)
    objective = jax.lax.stop_gradient(advantage) * log_prob_taken * mask
    return -objective.sum() / jnp.maximum(mask.sum(), 1.0)


# --- the algorithm ---------------------------------------------------------------------------


def make_train(config: Config, env: MultiAgentEnv) -> Trainer:
    """Build the pure ``init``, ``update`` and ``act`` of COMA (or a baseline) for ``env``."""
    registry.check_env(config.critic, env)
    raw_env = env
    env = training_env(env)
    n, num_actions = env.num_agents, env.action_space.n
    gru = config.gru_size
    actor = RecurrentCategoricalPolicy(num_actions, config.hidden, gru, config.activation)
    nets = {}
    if config.recurrent_critic:
        outputs = num_actions if config.q_critic else 1
        nets["q" if config.q_critic else "v"] = RecurrentValueNetwork(
            config.hidden, gru, config.activation, num_values=outputs)
    else:
        if config.q_critic:
            nets["q"] = ValueNetwork(config.critic_hidden, config.activation, num_values=num_actions)
        if config.v_critic:
            nets["v"] = ValueNetwork(config.critic_hidden, config.activation)

    def optimizer(lr):
        clip = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
        if config.optimizer == "rmsprop":
            return optax.chain(*clip, optax.rmsprop(lr, decay=config.rmsprop_alpha, eps=config.optim_eps))
        return optax.chain(*clip, optax.adam(lr, eps=config.optim_eps))

    actor_tx, critic_tx = optimizer(config.actor_lr), optimizer(config.critic_lr)
    envs = recurrent.vectorise(env, raw_env)
    one_hot = lambda u: jax.nn.one_hot(u, num_actions)  # noqa: E731

    def rows(first, x):  # first [...] -> [..., N] for networks over agent rows x [..., N, d]
        return jnp.broadcast_to(first[..., None], x.shape[:-1])

    def unroll(network, params, h0, xs, firsts):
        """A recurrent network over ``xs [T, ..., N, d]`` from ``h0``, restarting where
        ``firsts [T, ...]``: (hidden states after each step, outputs), both ``[T, ...]``."""
        return networks.unroll(network, params, h0, xs, rows(firsts, xs))

    def one_step_from(network, params, hs, xs):
        """Each step's successor in the same episode at once: the network one step from the
        hidden states ``hs [T, ...]`` on ``xs`` (no restart)."""
        return network.apply(params, hs, xs, jnp.zeros(xs.shape[:-1], bool))[1]

    # --- critics over a batch ``[..., B, N, ...]`` ------------------------------------------

    def centralised_inputs(state, obs, joint_action, prev_joint):
        x = {}
        if "q" in nets:
            x["q"] = critic_input(state, obs, one_hot(joint_action), prev_joint)
        if "v" in nets:
            x["v"] = state_value_input(state, obs, prev_joint)
        return x

    def centralised_values(params, x):
        return {k: nets[k].apply(params[k], x[k]) for k in x}

    def init(key) -> LearnerState:
        key, k_actor, k_critic, k_env = jax.random.split(key, 4)
        obs, env_state = envs.reset(jax.random.split(k_env, config.num_envs))
        carry = actors.initial_carry((config.num_envs,), n, gru, num_actions)
        x_actor = actors.actor_input(obs, carry.prev_action)
        first = jnp.ones(config.num_envs, bool)
        actor_params = actor.init(k_actor, carry.h, x_actor, rows(first, x_actor))
        keys = dict(zip(("q", "v"), jax.random.split(k_critic), strict=True))
        if config.recurrent_critic:
            critic_params = {k: nets[k].init(keys[k], carry.h, x_actor, rows(first, x_actor))
                             for k in nets}
        else:
            x = centralised_inputs(envs.state(env_state), obs, jnp.zeros((config.num_envs, n), jnp.int32),
                                   carry.prev_action)
            critic_params = {k: nets[k].init(keys[k], x[k]) for k in nets}
        return LearnerState(
            params=Params(actor_params, critic_params),
            target_critic=jax.tree.map(jnp.copy, critic_params),  # its own buffers
            actor_opt=actor_tx.init(actor_params),
            critic_opt=critic_tx.init(critic_params),
            env_state=env_state,
            obs=obs,
            alive=jnp.ones((config.num_envs, n), bool),
            first=first,
            actor_carry=carry,
            critic_h=jnp.zeros((config.num_envs, n, gru if config.recurrent_critic else 0)),
            key=key,
            update_step=jnp.int32(0),
            critic_steps=jnp.int32(0),
        )

    def epsilon(update_step):
        return actors.linear_epsilon(update_step * config.steps_per_update, config.epsilon_start,
                                     config.epsilon_finish, config.epsilon_anneal_steps)

    def policy_step(params: Params, carry, obs, avail, key, eps, deterministic=False):
        """Every agent's action from pi^a with the exploration floor eps, and its next carry."""
        x = actors.actor_input(obs, carry.prev_action)
        h, logits = actor.apply(params.actor, carry.h, x, jnp.zeros(obs.shape[:-1], bool))
        action = actors.sample(key, actors.exploration_floor(logits, avail, eps), deterministic)
        return action, actors.ActorCarry(h, one_hot(action))

    def iac_critic_step(ls: LearnerState, next_ls: LearnerState):
        """The IAC critic's GRU steps with the actors, on their inputs, restarting with them."""
        (name, net), = nets.items()
        carry = actors.restart(ls.actor_carry, ls.first)
        x_actor = actors.actor_input(ls.obs, carry.prev_action)
        h = jnp.where(ls.first[:, None, None], 0.0, ls.critic_h)
        h, _ = net.apply(ls.params.critic[name], h, x_actor, jnp.zeros(x_actor.shape[:-1], bool))
        return next_ls._replace(critic_h=h)

    def rollout(ls: LearnerState, eps):
        """(ls, ((the batch, the IAC critic's GRU state entering it), episode info))."""
        critic_h0 = jnp.where(ls.first[:, None, None], 0.0, ls.critic_h)
        ls, (traj, info) = recurrent.rollout(
            ls, envs, config.rollout_steps, functools.partial(policy_step, eps=eps),
            alongside=iac_critic_step if config.recurrent_critic else None)
        return ls, ((traj, critic_h0), info)

    def learn(ls: LearnerState, batch: tuple[Transition, jax.Array], eps, key):
        traj, critic_h0 = batch
        params = ls.params
        actions_1h = one_hot(traj.action)  # [T, B, N, A]
        terminated = traj.terminated[..., None].astype(jnp.float32)  # [T, B, 1]
        done = traj.done[..., None]

        # The actors over the batch, and u_{t+1}: the next action taken in the same episode,
        # or one sampled at s_{t+1} where the data ends or a time limit cut the episode.
        x_actor = actors.actor_input(traj.obs, traj.prev_action)
        def policy_logits(actor_params):  # one pass: its pull-back gives the actor gradient
            hs, logits = unroll(actor, actor_params, traj.actor_h[0], x_actor, traj.first)
            return logits, hs

        logits, pull_back, hs = jax.vjp(policy_logits, params.actor, has_aux=True)
        probs = actors.exploration_floor(logits, traj.avail, eps)  # [T, B, N, A]
        x_next_actor = actors.actor_input(traj.final_obs, actions_1h)
        next_action = actors.successor_actions(key, actor, params.actor, hs, traj.final_obs,
                                               traj.action, done, traj.final_avail, eps)

        if config.recurrent_critic:  # the IAC critics read the actors' inputs
            x_now = x_next = None
        else:
            x_now = centralised_inputs(traj.state, traj.obs, traj.action, traj.prev_action)
            x_next = centralised_inputs(traj.final_state, traj.final_obs, next_action, actions_1h)

        def critic_values(critic_params, h0, next_only=False):
            """{"q": [T, B, N, A], "v": [T, B, N]} at s_t and at s_{t+1} (same episode)."""
            if config.recurrent_critic:
                (name, net), = nets.items()
                hs_c, now = unroll(net, critic_params[name], h0, x_actor, traj.first)
                nxt = one_step_from(net, critic_params[name], hs_c, x_next_actor)
                return {name: now}, {name: nxt}
            now = None if next_only else centralised_values(critic_params, x_now)
            return now, centralised_values(critic_params, x_next)

        # TD(lambda) targets from the target critic on the actions taken (Sec. 4).
        _, target_next = critic_values(ls.target_critic, critic_h0, next_only=True)
        targets = {}
        for name, values in target_next.items():
            v_next = taken(values, next_action) if name == "q" else values  # [T, B, N]
            targets[name] = lambda_return(traj.reward, v_next, terminated, done, v_next[-1],
                                          config.gamma, config.td_lambda)

        def critic_loss(critic_params, x, action, y):
            """Mean of (y - Q(s, u))^2 (and (y - V(s))^2) over the rows given."""
            if config.recurrent_critic:
                values, _ = critic_values(critic_params, critic_h0)
            else:
                values = centralised_values(critic_params, x)
            loss = 0.0
            for name, v in values.items():
                v = taken(v, action) if name == "q" else v
                loss = loss + jnp.mean((y[name] - v) ** 2)
            return loss

        def critic_step(carry, batch):
            critic_params, opt, target, steps = carry
            loss, grads = jax.value_and_grad(critic_loss)(critic_params, *batch)
            updates, opt = critic_tx.update(grads, opt, critic_params)
            critic_params = optax.apply_updates(critic_params, updates)
            steps = steps + 1
            target = actors.periodic_copy(target, critic_params, steps, config.target_update_every)
            return (critic_params, opt, target, steps), loss

        carry = (params.critic, ls.critic_opt, ls.target_critic, ls.critic_steps)
        if config.critic_updates == "per_step":  # Algorithm 1: for t = T down to 1
            carry, critic_losses = jax.lax.scan(
                critic_step, carry, (x_now, traj.action, targets), reverse=True)
        else:
            carry, critic_losses = critic_step(carry, (x_now, traj.action, targets))
        critic_params, critic_opt, target_critic, critic_steps = carry

        # Advantages from the updated critic.
        now, nxt = critic_values(critic_params, critic_h0)
        if config.critic in ("coma", "iac_q"):
            advantage = counterfactual_advantage(now["q"], probs, traj.action)
        elif config.critic == "central_qv":
            advantage = taken(now["q"], traj.action) - now["v"]
        else:
            advantage = td_error(traj.reward, now["v"], nxt["v"], terminated, config.gamma)

        def actor_loss(logits):
            probs = actors.exploration_floor(logits, traj.avail, eps)
            log_probs = actors.log_probs(probs)
            loss = policy_gradient_loss(advantage, taken(log_probs, traj.action), traj.alive)
            entropy = -jnp.sum(probs * log_probs, -1)
            mask = traj.alive.astype(jnp.float32)
            entropy = (entropy * mask).sum() / jnp.maximum(mask.sum(), 1.0)
            return loss - config.ent_coef * entropy, entropy

        (loss, entropy), d_logits = jax.value_and_grad(actor_loss, has_aux=True)(logits)
        grads, = pull_back(d_logits)
        updates, actor_opt = actor_tx.update(grads, ls.actor_opt, params.actor)
        actor_params = optax.apply_updates(params.actor, updates)
        alive = traj.alive.astype(jnp.float32)
        stats = {
            "critic_loss": jnp.mean(critic_losses),
            "actor_loss": loss,
            "entropy": entropy,
            "advantage_abs": (jnp.abs(advantage) * alive).sum() / jnp.maximum(alive.sum(), 1.0),
            "epsilon": eps,
        }
        return ls._replace(
            params=Params(actor_params, critic_params), target_critic=target_critic,
            actor_opt=actor_opt, critic_opt=critic_opt, critic_steps=critic_steps,
        ), stats

    update = recurrent.make_update(env, epsilon, rollout, learn)

    def act(params: Params, obs, carry, key, deterministic=False, avail=None):
        """Decentralised execution: agent a acts on its own o^a, previous action and GRU state
        (``carry`` from ``init_carry`` at an episode's start). Stochastic actions keep the
        final exploration floor. Returns (actions ``[..., N]``, carry)."""
        if avail is None:
            avail = jnp.ones((*obs.shape[:-1], num_actions), bool)
        return policy_step(params, carry, obs, avail, key, config.epsilon_finish, deterministic)

    def init_carry(batch_shape=()):
        return actors.initial_carry(batch_shape, n, gru, num_actions)

    return Trainer(config, env, init, update, act, init_carry, config.steps_per_update)
