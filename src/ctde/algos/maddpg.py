"""MADDPG: multi-agent deep deterministic policy gradient (Lowe et al. 2017, "Multi-Agent
Actor-Critic for Mixed Cooperative-Competitive Environments").

Every agent i has its own deterministic actor mu_i(o_i) and its own centralised critic
Q_i(x, a_1..a_N), x = (o_1..o_N): separate critics let each agent have its own reward,
so the same learner plays cooperative, competitive and mixed games. No parameters are
shared: each network is stacked on a leading agent axis and ``jax.vmap``ped. Per
iteration (Algorithm 1):

    1. B parallel envs take T steps with a_i = mu_i(o_i) + exploration
       (uniformly random actions during a warm-up); (x, a, r, x') go to the replay buffer D
    2. one gradient step per ``update_every`` env steps, every agent at once, on S samples:
         critic  L(theta_i) = E[(Q_i(x, a_1..a_N) - y_i)^2],
                 y_i = r_i + gamma (1 - terminated) Q_i'(x', a'_1..a'_N),  a'_j = mu'_j(o'_j)
         actor   grad J(mu_i) = E[grad mu_i(o_i) grad_{a_i} Q_i(x, a_1..a_i..a_N)],
                 a_i = mu_i(o_i), the other actions from D
         targets theta_i' <- tau theta_i + (1 - tau) theta_i'

Discrete actions: the actor outputs logits, the env gets the categorical sample
argmax(logits + g), g ~ Gumbel(0, 1), and the buffer stores its one-hot, so the critics
are fitted at one-hot actions. The target actions a'_j and the policy gradient's a_i
are then one-hots too (the value at which the critics were fitted), and a discrete
gradient estimator (``gradient_estimator``, the variants compared by Tilbury et al.
2023, "Revisiting the Gumbel-Softmax in MADDPG") gives a_i a gradient: straight-through
Gumbel-softmax (default), with an annealed temperature, Gumbel-Rao Monte Carlo, or the
gapped straight-through estimator; or ``"gs"``, the original code's relaxed sample
softmax((logits + g) / temperature) for both. Continuous actions are tanh-squashed into
[-1, 1] (mapped onto the env's box) with Gaussian noise, or, with ``soft_actions``, are
the relaxed sample itself: what the original code fed MPE, which reads the vector as
forces (MPE's continuous action mode).

Variants, all settings of ``Config``:
- policy inference (Sec. 4.2): agent i fits approximations mu_hat_i^j of the others'
  policies to their buffered actions and uses their targets in y_i;
- DDPG / independent learners: ``team_algos=("ddpg",)``: the critic sees only the
  agent's own observation and action, Q_i(o_i, a_i);
- teams (``env.teams``), each with its own learner: "maddpg", "ddpg", "random" (uniform
  random actions) or "frozen" (acts greedily, never updated), e.g. MADDPG predators
  against DDPG prey on ``simple_tag`` with ``team_algos=("maddpg", "ddpg")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ctde import prng
from ctde.algos.common import checks, replay
from ctde.algos.common import distributions as dist
from ctde.algos.common.episodes import episode_sums
from ctde.algos.common.networks import MLP, CategoricalPolicy, GaussianPolicy, value_head
from ctde.algos.common.types import Trainer
from ctde.envs.core import MultiAgentEnv
from ctde.envs.wrappers import training_env

CAPABILITIES = {
    "discrete_actions": True,  # Gumbel-softmax relaxation
    "continuous_actions": True,
    "competitive": True,  # one critic per agent, each on its own reward; per-team learners
    "needs_global_state": False,  # x = all agents' observations
    "recurrent": False,
}

TEAM_ALGOS = ("maddpg", "ddpg", "random", "frozen")

#: Discrete gradient estimators (Tilbury et al. 2023). All but "gs" put the one-hot of the
#: categorical sample forward, where the critics were fitted, and differ in the gradient:
#:   st    straight-through Gumbel-softmax: the relaxed sample's gradient
#:   tags  st with the temperature annealed linearly (temperature_start -> temperature_end)
#:   grmc  Gumbel-Rao Monte Carlo: the mean gradient of K relaxed samples conditioned on
#:         the sampled action (Paulus et al. 2021; lower variance)
#:   gst   gapped straight-through: the gradient of a deterministic softmax whose logits
#:         are moved so the sampled action leads by a gap (Fan et al. 2022; no relaxation noise)
#:   gs    the relaxed sample itself forward and back (the original code; its critics are
#:         then evaluated off the one-hots they are fitted on)
ESTIMATORS = ("st", "tags", "grmc", "gst", "gs")


@dataclasses.dataclass(frozen=True)
class Config:
    """MADDPG settings. Defaults follow the paper's MPE experiments (Lowe et al. 2017,
    Sec. 5 and appendix; the original code's defaults where the paper is silent): Adam
    with lr 0.01, gamma 0.95, batch 1024, tau 0.01, two hidden layers of 64 ReLU units,
    a gradient step every 100 env steps, a 1e6 replay buffer, each gradient tensor's norm
    clipped at 0.5, and a 1e-3 penalty on the actor's pre-activation outputs."""

    num_envs: int = 64  # B: parallel environments
    rollout_steps: int = 25  # T: steps per env per iteration (B * T env steps per update())
    update_every: int = 100  # env steps per gradient step (the paper's update ratio)
    batch_size: int = 1024  # S: transitions sampled per gradient step
    buffer_size: int = 1_000_000  # replay capacity (transitions)
    warmup_steps: int = 25_600  # uniformly random actions, no learning, for this many env
    #                             steps (1024 * 25: when the original code first updates)
    actor_lr: float = 1e-2
    critic_lr: float = 1e-2
    gamma: float = 0.95
    tau: float = 0.01  # soft target update rate
    max_grad_norm: float = 0.5  # gradient norm clip (see grad_clip)
    grad_clip: str = "tensor"  # "tensor": each parameter tensor's norm on its own (the original
    #                            code); "global": the norm of each agent's whole gradient
    actor_reg: float = 1e-3  # penalty on the actor's squared pre-activations (original code)
    exploration_std: float = 0.1  # continuous: Gaussian noise std on actions in [-1, 1]
    gradient_estimator: str = "st"  # discrete: one of ESTIMATORS (docs/algorithms.md)
    gumbel_temperature: float = 1.0  # discrete: relaxation temperature (all but "tags")
    temperature_start: float = 2.5  # "tags": the temperature at the start of training,
    temperature_end: float = 0.5  # annealed linearly to this one (Tilbury et al.'s MPE setting)
    temperature_anneal_steps: int = 500_000  # "tags": over this many env steps
    gumbel_rao_samples: int = 5  # "grmc": K conditional Gumbel draws averaged in the gradient
    gst_gap: float = 1.0  # "gst": the gap kept between the chosen logit and the others
    soft_actions: bool = False  # continuous: act with the Gumbel-softmax sample itself
    #                             (the original code on MPE); its noise is the exploration
    policy_inference: bool = False  # Sec. 4.2: targets use learned approximations mu_hat
    inference_lr: float = 1e-2
    inference_entropy: float = 1e-3  # lambda: entropy bonus of the approximations
    team_algos: tuple[str, ...] = ()  # one of TEAM_ALGOS per env team; () = all "maddpg"
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"

    def __post_init__(self):
        checks.at_least(self, "maddpg", 1, "num_envs", "rollout_steps", "update_every", "batch_size",
                        "buffer_size")
        checks.at_least(self, "maddpg", 0, "warmup_steps")
        if self.steps_per_update % self.update_every:
            raise ValueError(
                f"maddpg: update_every ({self.update_every}) must divide num_envs * rollout_steps "
                f"({self.num_envs} * {self.rollout_steps} = {self.steps_per_update})"
            )
        if self.buffer_size < self.batch_size:
            raise ValueError(
                f"maddpg: the replay buffer (buffer_size {self.buffer_size}) is smaller than a "
                f"batch (batch_size {self.batch_size})"
            )
        if self.buffer_size < self.steps_per_update:
            raise ValueError(
                f"maddpg: the replay buffer (buffer_size {self.buffer_size}) cannot hold one "
                f"iteration's num_envs * rollout_steps = {self.steps_per_update} transitions"
            )
        checks.one_of(self, "maddpg", "gradient_estimator", ESTIMATORS)
        checks.at_least(self, "maddpg", 1, "temperature_anneal_steps", "gumbel_rao_samples")
        checks.positive(self, "maddpg", "temperature_start", "temperature_end", "gst_gap")
        checks.positive(self, "maddpg", "actor_lr", "critic_lr", "inference_lr", "gumbel_temperature",
                        "max_grad_norm")
        checks.at_least(self, "maddpg", 0, "actor_reg", "exploration_std", "inference_entropy")
        checks.within(self, "maddpg", 0, 1, "gamma")
        checks.within(self, "maddpg", 0, 1, "tau", open_low=True)
        bad = [a for a in self.team_algos if a not in TEAM_ALGOS]
        if bad:
            raise ValueError(
                f"maddpg: team_algos entries must be one of {', '.join(TEAM_ALGOS)}, got {bad[0]!r}"
            )
        checks.one_of(self, "maddpg", "grad_clip", ("tensor", "global"))
        checks.network(self, "maddpg")

    @property
    def steps_per_update(self) -> int:
        """Environment steps (of all agents at once) collected per iteration."""
        return self.num_envs * self.rollout_steps

    @property
    def gradient_steps(self) -> int:
        """Gradient steps per iteration, at one per ``update_every`` env steps."""
        return self.steps_per_update // self.update_every


class Params(NamedTuple):
    """Per-agent networks, each stacked on a leading agent axis ``[N, ...]``."""

    actor: Any  # mu_i
    critic: Any  # Q_i
    approx: Any  # mu_hat_i^j, [N, N, ...] (None without policy inference)


class LearnerState(NamedTuple):
    params: Params
    target: Params  # mu_i', Q_i', mu_hat_i^j'
    opt: Params  # an optimiser state per network
    buffer: replay.ReplayBuffer
    env_state: Any  # [B] batched environment state
    obs: jax.Array  # [B, N, obs_dim]
    key: jax.Array
    env_steps: jax.Array  # [] transitions collected so far (all envs)
    update_step: jax.Array


class Transition(NamedTuple):
    """One replay item (a ``[M]`` batch axis in front when batched)."""

    obs: jax.Array  # [N, obs_dim] x = (o_1..o_N)
    action: jax.Array  # [N, A] one-hot (discrete) or in [-1, 1] (continuous)
    reward: jax.Array  # [N]
    next_obs: jax.Array  # [N, obs_dim] x' of the same episode (its final obs at a time limit)
    terminated: jax.Array  # [] no bootstrap through a termination
    avail: jax.Array  # [N, A] available actions at x (discrete action masks)
    next_avail: jax.Array  # [N, A] available actions at x'


# --- the paper's losses ----------------------------------------------------------------


def critic_target(reward, terminated, next_q, gamma):
    """The critic's regression target

        y_i = r_i + gamma * (1 - terminated) * Q_i'(x', a'_1..a'_N)

    Shapes: ``reward``, ``next_q`` ``[S, N]``; ``terminated`` ``[S]``. A time limit is not a
    termination, so truncated episodes are bootstrapped (``x'`` is their final observation).
    """
    not_terminated = 1.0 - terminated.astype(reward.dtype)[:, None]
    return reward + gamma * not_terminated * next_q


def critic_loss(q, target):
    """L(theta_i) = E_{x,a,r,x' ~ D}[(Q_i(x, a_1..a_N) - y_i)^2], one per agent.

    Shapes: ``q``, ``target`` ``[S, N]`` -> ``[N]``. ``target`` is held constant.
    """
    return jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=0)


def policy_objective(q_at_policy_action):
    """J(mu_i) = E_{x,a ~ D}[Q_i(x, a_1..a_i..a_N)] at a_i = mu_i(o_i), one per agent.

    Its gradient is the paper's deterministic policy gradient by the chain rule,
    grad J(mu_i) = E[grad mu_i(o_i) grad_{a_i} Q_i(x, a_1..a_N) | a_i = mu_i(o_i)].
    Shape: ``[S, N]`` -> ``[N]``.
    """
    return jnp.mean(q_at_policy_action, axis=0)


def policy_inference_objective(log_likelihood, entropy, lam):
    """Sec. 4.2: J(phi_i^j) = E_{o_j, a_j ~ D}[log mu_hat_i^j(a_j | o_j) + lambda H(mu_hat_i^j)],
    agent i's approximation of agent j's policy. Shapes: ``[S, N, N]`` -> ``[N, N]``."""
    return jnp.mean(log_likelihood + lam * entropy, axis=0)


def clip_gradients(kind: str, max_norm: float) -> optax.GradientTransformation:
    """Gradient-norm clipping at ``max_norm``. ``"tensor"``: every parameter tensor's norm
    on its own, g * max_norm / max(|g|, max_norm), as the original code does
    (``U.minimize_and_clip``: ``tf.clip_by_norm`` per variable); ``"global"``: the norm of
    all the gradients of the parameters it is given together."""
    if kind == "global":
        return optax.clip_by_global_norm(max_norm)

    def clip(g):
        return g * (max_norm / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(g))), max_norm))

    return optax.stateless(lambda grads, params=None: jax.tree.map(clip, grads))


def soft_update(target, online, tau):
    """theta' <- tau * theta + (1 - tau) * theta' (every leaf)."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def gumbel_softmax(key, logits, temperature, hard=False, part=None):
    """The Gumbel-softmax (concrete) relaxation of a categorical sample (Jang et al. 2017;
    Maddison et al. 2017): softmax((logits + g) / temperature), g ~ Gumbel(0, 1).
    ``hard``: the one-hot of its argmax in the forward pass, the relaxed gradient in the
    backward pass (straight-through). ``part`` as in ``prng.gumbel`` (this device's rows
    of a batch split over devices). Shape ``[..., A]``."""
    g = prng.gumbel(key, logits.shape, part)
    soft = jax.nn.softmax((logits + g) / temperature, axis=-1)
    if not hard:
        return soft
    one_hot = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=soft.dtype)
    return soft + jax.lax.stop_gradient(one_hot - soft)


def categorical_one_hot(key, logits, part=None):
    """The one-hot of a categorical sample, argmax(logits + g), g ~ Gumbel(0, 1): the same
    draw as ``gumbel_softmax(key, ...)``'s argmax. ``part`` as in ``prng.gumbel``."""
    sample = jnp.argmax(logits + prng.gumbel(key, logits.shape, part), axis=-1)
    return jax.nn.one_hot(sample, logits.shape[-1], dtype=logits.dtype)


def conditional_gumbel(key, logits, one_hot, samples, part=None):
    """K draws of Gumbel noise g_k ``[..., K, A]`` conditioned on argmax(logits + g_k) being
    the sampled action ``one_hot`` (Paulus et al. 2021, "Rao-Blackwellizing the
    Straight-Through Gumbel-Softmax Gradient Estimator"). Given the argmax D, the largest
    perturbed logit is Gumbel(log Z), Z = sum exp(logits): z_D = log Z - log E_D; each
    other z_j is Gumbel(logits_j) truncated below it: z_j = -log(exp(-z_D) + exp(-logits_j) E_j),
    E ~ Exp(1). Returns g_k = z - logits, held constant (no gradient)."""
    logits = jax.lax.stop_gradient(logits)[..., None, :]
    d = one_hot[..., None, :]
    shape = (*one_hot.shape[:-1], samples, one_hot.shape[-1])
    tiny = np.finfo(np.float32).tiny
    log_e = jnp.log(-jnp.log(prng.uniform(key, shape, tiny, 1.0, part)))  # log E, E ~ Exp(1)
    top = jax.nn.logsumexp(logits, axis=-1, keepdims=True) - jnp.sum(d * log_e, -1, keepdims=True)
    z = jnp.where(d > 0, top, -jnp.logaddexp(-top, log_e - logits))
    return z - logits


def gumbel_rao(key, logits, one_hot, temperature, samples, part=None):
    """Gumbel-Rao Monte Carlo: the sampled action ``one_hot`` forward; backward, the mean
    gradient of K relaxed samples softmax((logits + g_k) / temperature) with g_k drawn
    conditioned on that action (``conditional_gumbel``). Its expected gradient is
    straight-through's, with lower variance. Shape ``[..., A]``."""
    noise = conditional_gumbel(key, logits, one_hot, samples, part)
    relaxed = jax.nn.softmax((logits[..., None, :] + noise) / temperature, axis=-1).mean(-2)
    return relaxed + jax.lax.stop_gradient(one_hot - relaxed)


def gapped_straight_through(logits, one_hot, temperature, gap):
    """The gapped straight-through estimator (Fan et al. 2022, "Training Discrete Deep
    Generative Models via Gapped Straight-Through Estimator"): the sampled action
    ``one_hot`` forward; backward, the gradient of softmax((logits + m) / temperature), a
    deterministic stand-in for the relaxed sample: the constant m raises the sampled
    action's logit to the largest logit and lowers each other logit to at least ``gap``
    below it. Shape ``[..., A]``."""
    lg = jax.lax.stop_gradient(logits)
    top = jnp.max(lg, axis=-1, keepdims=True)
    chosen = jnp.sum(one_hot * lg, axis=-1, keepdims=True)
    m = one_hot * (top - chosen) - (1 - one_hot) * jax.nn.relu(lg + gap - top)
    relaxed = jax.nn.softmax((logits + m) / temperature, axis=-1)
    return relaxed + jax.lax.stop_gradient(one_hot - relaxed)


def annealed_temperature(env_steps, start, end, steps):
    """Linear annealing: ``start`` at 0 env steps, ``end`` from ``steps`` on."""
    return start + (end - start) * jnp.minimum(env_steps / steps, 1.0)


def policy_sample(config: Config, key, logits, temperature, part=None):
    """The action a ~ pi(logits) that agent i's critic is differentiated at, with
    ``config.gradient_estimator``'s gradient (``ESTIMATORS``); ``soft_actions`` always
    gets the relaxed sample, which is what their env executes. Shape ``[S, ..., A]``."""
    estimator = "gs" if config.soft_actions else config.gradient_estimator
    if estimator in ("st", "tags", "gs"):
        return gumbel_softmax(key, logits, temperature, estimator != "gs", part)
    k_sample, k_rao = prng.split(key)
    one_hot = categorical_one_hot(k_sample, logits, part)
    if estimator == "grmc":
        return gumbel_rao(k_rao, logits, one_hot, temperature, config.gumbel_rao_samples, part)
    return gapped_straight_through(logits, one_hot, temperature, config.gst_gap)


def joint_with_own_action(own, others):
    """The joint action a^i that agent i's critic evaluates, for every agent i:
    a^i_j = own_j if j == i else others_j. With policy inference, ``own`` is mu_i'(o'_i)
    and ``others[:, i, j]`` agent i's model mu_hat_i^j'(o'_j) of agent j. (The policy
    gradient's a^i, one changed action on a shared joint action, is computed inside the
    critic: ``centralised_q_values(..., own_actions=...)``.)

    Shapes: ``own [S, N, A]``; ``others [S, N, A]`` (shared by every critic) or
    ``[S, N(i), N(j), A]`` (per critic) -> ``[S, N(i), N(j), A]``.
    """
    n = own.shape[-2]
    if others.ndim == own.ndim:
        others = others[:, None]
    return jnp.where(jnp.eye(n, dtype=bool)[:, :, None], own[:, None], others)


def centralised_q_values(q_apply, params, sees, obs, actions, own_actions=None):
    """Q_i(x, a^i) for every agent i, each critic with its own parameters ``params [N, ...]``.

    Critic i reads every agent j's (o_j, a^i_j) but ignores those of agents it does not
    see (``sees [N, N]``: all for MADDPG, only itself for DDPG). ``actions``: one joint
    action ``[S, N, A]`` for every critic, or one per critic ``[S, N(i), N(j), A]``.
    ``own_actions [S, N, A]`` (with a shared joint action): critic i evaluates it with
    agent i's own action replaced by ``own_actions[:, i]``, the policy gradient's a^i.
    ``q_apply(params_i, x [S, N*d], a [S, N, A], sees_i [N], own)`` is one critic, ``own``
    ``None`` or ``(one_hot_i [N], delta [S, A])``: add ``delta`` to agent i's action.
    ``obs [S, N, d]`` -> ``[S, N]``.
    """
    shared = actions.ndim == obs.ndim
    if own_actions is not None and not shared:
        raise ValueError("own_actions needs one joint action shared by every critic")
    x = obs.reshape(obs.shape[0], -1)  # the same input for every critic
    own, own_axes = None, None
    if own_actions is not None:  # (one-hot of agent i, its action's change)
        own, own_axes = (jnp.eye(obs.shape[-2]), own_actions - actions), (0, 1)
    q = jax.vmap(q_apply, in_axes=(0, None, None if shared else 1, 0, own_axes), out_axes=1)
    return q(params, x, actions, sees, own)


class Critic(nn.Module):
    """Q_i(x, a_1..a_N): an MLP on the concatenation (x, a), whose first layer drops the
    agents critic i does not see (``sees``) by zeroing their weights: every critic then
    reads the same input, so all critics' first layers are one matrix product. The layer
    is applied in two parts, W [x; a] = W_x x + W_a a: the policy gradient evaluates Q_i
    with agent i's action changed by delta, which by linearity adds W_i delta (agent i's
    rows of W_a) at the buffer's joint action. Only that product then depends on the
    actor, so only it is differentiated, never the gradient of the whole input."""

    hidden: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x, actions, sees, own=None):
        """``x [S, N*d]``, ``actions [S, N, A]``, ``sees [N]``, ``own`` ``(one_hot [N],
        delta [S, A])`` or None -> ``[S]``."""
        n, a_dim = actions.shape[-2:]
        d = x.shape[-1] // n
        width = self.hidden[0]
        kernel = self.param("kernel", nn.initializers.orthogonal(np.sqrt(2.0)),
                            (n * (d + a_dim), width))
        bias = self.param("bias", nn.initializers.zeros, (width,))
        w_x = kernel[:n * d] * jnp.repeat(sees, d)[:, None]
        w_a = kernel[n * d:] * jnp.repeat(sees, a_dim)[:, None]  # [N * A, H]
        h = x @ w_x + actions.reshape(-1, n * a_dim) @ w_a + bias
        if own is not None:  # + W_i delta, W_i = agent i's A rows of w_a
            one_hot, delta = own
            h = h + delta @ jnp.einsum("j,jah->ah", one_hot, w_a.reshape(n, a_dim, width))
        h = MLP(self.hidden[1:], self.activation)(getattr(nn, self.activation)(h))
        return value_head(1)(h)


# --- the algorithm ---------------------------------------------------------------------


def agent_roles(config: Config, env: MultiAgentEnv) -> dict[str, np.ndarray]:
    """Per-agent ``[N]`` flags from ``config.team_algos``: who learns, who has a centralised
    critic, who plays uniformly at random. ValueError if the teams do not match the env."""
    algos = config.team_algos or ("maddpg",) * env.num_teams
    if len(algos) != env.num_teams:
        raise ValueError(
            f"maddpg: team_algos has {len(algos)} entries but {env.name} has {env.num_teams} "
            f"team(s) ({', '.join(env.team_names)}): give one of {', '.join(TEAM_ALGOS)} per team"
        )
    per_agent = np.array([algos[t] for t in np.asarray(env.teams)])
    return {
        "learns": np.isin(per_agent, ("maddpg", "ddpg")),
        "centralised": per_agent == "maddpg",
        "random": per_agent == "random",
    }


def make_train(config: Config, env: MultiAgentEnv, batch_axis: str | None = None) -> Trainer:
    """Build MADDPG's pure ``init``, ``update`` and ``act`` for ``env``.

    ``batch_axis``: the name of a mapped axis (``shard_map``) whose devices share one
    learner: each holds the same state, collects the same transitions, and computes the
    gradients of its own slice of every batch; the slices' gradients are averaged
    (``pmean``), so together the devices take the gradient step one device would take
    on the whole batch (up to floating-point rounding) in a fraction of the time."""
    roles = agent_roles(config, env)
    base_env, env = env, training_env(env)
    n, a_dim, d = env.num_agents, env.action_dim, env.obs_dim
    discrete = env.discrete
    space = env.action_space
    if config.soft_actions and discrete:
        raise ValueError(f"maddpg: soft_actions needs continuous actions; {env.name} has discrete "
                         "ones (try --env.continuous_actions true)")
    relaxed = discrete or config.soft_actions  # actions are (relaxed) one-hots
    estimator = config.gradient_estimator

    def squash(pre):  # a continuous head -> an action the critics see
        return jax.nn.softmax(pre, axis=-1) if config.soft_actions else jnp.tanh(pre)

    learns, random_agent = roles["learns"], roles["random"]
    # sees[i, j]: whether agent i's critic gets (o_j, a_j); a DDPG critic sees only its own.
    sees = jnp.asarray(roles["centralised"][:, None] | np.eye(n, dtype=bool), jnp.float32)
    eye = jnp.eye(n, dtype=bool)

    # Networks (common/networks): a linear head of width A on a 2-layer MLP gives the
    # actor's logits (discrete, soft actions) or pre-tanh action; Q_i is a scalar head.
    actor = CategoricalPolicy(a_dim, config.hidden, config.activation)
    critic = Critic(config.hidden, config.activation)
    approx = (CategoricalPolicy if discrete else GaussianPolicy)(a_dim, config.hidden, config.activation)

    # Per-agent parameters [N, ...] applied to the agent axis -2 of the inputs.
    actor_out = jax.vmap(actor.apply, in_axes=(0, -2), out_axes=-2)  # [..., N, A]
    # mu_hat_i^j(o_j): params [N(i), N(j), ...], obs [..., N(j), d] -> [..., N(i), N(j), ...]
    approx_out = jax.vmap(jax.vmap(approx.apply, in_axes=(0, -2), out_axes=-2),
                          in_axes=(0, None), out_axes=-3)

    def critic_values(critic_params, obs, actions, own_actions=None):  # -> [S, N]
        return centralised_q_values(critic.apply, critic_params, sees, obs, actions, own_actions)

    def batch_part():
        """This device's part ``(k, parts)`` of every batch (None: a device takes it all)."""
        if batch_axis is None:
            return None
        return jax.lax.axis_index(batch_axis), jax.lax.axis_size(batch_axis)

    def policy_action(pre, avail, key, temperature):
        """The differentiable action a_i the critics see for a batch ``[S, ...]`` (noise
        drawn for this device's rows of the batch, as a single device draws them):
        discrete, a sample of the masked logits with the configured estimator's gradient;
        soft actions, the relaxed sample their env executes; else tanh of the head."""
        if not relaxed:
            return jnp.tanh(pre)
        return policy_sample(config, key, dist.masked_logits(pre, avail), temperature, batch_part())

    def target_policy_action(pre, avail, key):
        """a'_j = mu_j'(o'_j) for the targets, which need no gradient: the one-hot of a
        categorical sample (discrete, as the buffer's actions), or ``policy_action``."""
        if discrete and estimator != "gs":
            return categorical_one_hot(key, dist.masked_logits(pre, avail), batch_part())
        return policy_action(pre, avail, key, config.gumbel_temperature)

    def temperature_at(env_steps):
        """The relaxation temperature after ``env_steps`` (annealed for "tags")."""
        if discrete and estimator == "tags":
            return annealed_temperature(env_steps, config.temperature_start, config.temperature_end,
                                        config.temperature_anneal_steps)
        return jnp.float32(config.gumbel_temperature)

    def behaviour(actor_params, obs, avail, key, explore, use_random):
        """Actions for ``obs [..., N, d]``: (buffer action [..., N, A], env action).
        ``explore [N]``: add exploration noise; ``use_random [..., N]``: uniform instead."""
        k_explore, k_random = prng.split(key)
        pre = actor_out(actor_params, obs)
        if discrete:
            logits = dist.masked_logits(pre, avail)
            sampled = dist.categorical_sample(k_explore, logits)  # = argmax(logits + Gumbel)
            greedy = jnp.argmax(logits, axis=-1)
            uniform = dist.categorical_sample(k_random, dist.masked_logits(jnp.zeros_like(pre), avail))
            action = jnp.where(use_random, uniform, jnp.where(explore, sampled, greedy))
            return jax.nn.one_hot(action, a_dim), action
        if config.soft_actions:  # a point of the simplex, read by the env as forces
            mu = jax.nn.softmax(pre / config.gumbel_temperature, axis=-1)
            noisy = gumbel_softmax(k_explore, pre, config.gumbel_temperature)
            uniform = gumbel_softmax(k_random, jnp.zeros_like(pre), config.gumbel_temperature)
        else:
            mu = jnp.tanh(pre)
            noisy = jnp.clip(mu + config.exploration_std * prng.normal(k_explore, mu.shape),
                             -1, 1)
            uniform = prng.uniform(k_random, mu.shape, -1.0, 1.0)
        action = jnp.where(use_random[..., None], uniform, jnp.where(explore[:, None], noisy, mu))
        unit = action if config.soft_actions else (action + 1.0) / 2  # in [0, 1]
        return action, space.low + unit * (space.high - space.low)

    def full_avail(avail):  # continuous envs report [.., N, 1]: widen to [.., N, A]
        return jnp.broadcast_to(avail, (*avail.shape[:-1], a_dim))

    def batch_mean(tree):
        """The mean over the devices that share the batch, as one flat vector: an
        all-reduce per leaf costs several times more on CPU (~380 vs 70 us for 8 leaves)."""
        if batch_axis is None:
            return tree
        flat, unravel = ravel_pytree(tree)
        return unravel(jax.lax.pmean(flat, batch_axis))

    def optimizer(lr):
        return optax.chain(clip_gradients(config.grad_clip, config.max_grad_norm), optax.adam(lr))

    # vmapped over the agent axis: each agent's gradients are clipped on their own.
    actor_tx, critic_tx = optimizer(config.actor_lr), optimizer(config.critic_lr)
    approx_tx = optimizer(config.inference_lr)
    step_envs = jax.vmap(env.step)
    reset_envs = jax.vmap(env.reset)
    avail_of = jax.vmap(env.avail_actions)
    raw_avail_of = jax.vmap(base_env.avail_actions)  # of info["final_state"] (unwrapped)

    def init(key) -> LearnerState:
        key, k_actor, k_critic, k_approx, k_env = jax.random.split(key, 5)
        obs, env_state = reset_envs(jax.random.split(k_env, config.num_envs))
        critic_in = (jnp.zeros((n, 1, n * d)), jnp.zeros((n, 1, n, a_dim)), sees)
        actor_params = init_per_agent(actor, jax.random.split(k_actor, n), obs[0])
        critic_params = init_per_agent(critic, jax.random.split(k_critic, n), critic_in)
        approx_params = None
        if config.policy_inference:  # [N(i), N(j), ...]
            keys = jax.random.split(k_approx, (n, n))
            approx_params = stack([init_per_agent(approx, keys[i], obs[0]) for i in range(n)])
        params = Params(actor_params, critic_params, approx_params)
        opt = Params(
            jax.vmap(actor_tx.init)(actor_params),
            jax.vmap(critic_tx.init)(critic_params),
            None if approx_params is None else jax.vmap(jax.vmap(approx_tx.init))(approx_params),
        )
        avail = jnp.ones((n, a_dim), bool)
        example = Transition(
            obs=obs[0], action=jnp.zeros((n, a_dim)), reward=jnp.zeros(n), next_obs=obs[0],
            terminated=jnp.bool_(False), avail=avail, next_avail=avail,
        )
        return LearnerState(
            params=params,
            target=jax.tree.map(jnp.copy, params),  # own buffers: the runner donates the state
            opt=opt,
            buffer=replay.init(example, config.buffer_size),
            env_state=env_state,
            obs=obs,
            key=key,
            env_steps=jnp.int32(0),
            update_step=jnp.int32(0),
        )

    def rollout(ls: LearnerState):
        warming_up = ls.env_steps < config.warmup_steps
        use_random = jnp.asarray(random_agent) | (jnp.asarray(learns) & warming_up)  # [N]

        def env_step(carry, _):
            env_state, obs, key = carry
            key, k_act, k_env = prng.split(key, 3)
            avail = full_avail(avail_of(env_state))
            # learners explore; frozen agents act greedily
            action, env_action = behaviour(ls.params.actor, obs, avail, k_act, learns, use_random)
            next_obs, env_state, reward, terminated, truncated, info = step_envs(
                prng.split(k_env, config.num_envs), env_state, env_action
            )
            next_avail = full_avail(raw_avail_of(info["final_state"]))
            transition = Transition(obs, action, reward, info["final_obs"], terminated, avail,
                                    next_avail)
            episode_info = {"episode_done": info["episode_done"], "episode": info["episode"]}
            return (env_state, next_obs, key), (transition, episode_info)

        carry = (ls.env_state, ls.obs, ls.key)
        return jax.lax.scan(env_step, carry, None, config.rollout_steps)

    def target_actions(target: Params, batch: Transition, key):
        """The joint next action a'^i critic i bootstraps from: a'_j = mu'_j(o'_j), the same
        for every critic ``[S, N, A]``, or with inference agent i's approximations
        mu_hat_i^j'(o'_j) of the others ``[S, N(i), N(j), A]``."""
        k_own, k_approx = prng.split(key)
        own = target_policy_action(actor_out(target.actor, batch.next_obs), batch.next_avail, k_own)
        if not config.policy_inference:
            return own
        out = approx_out(target.approx, batch.next_obs)
        if discrete:
            inferred = target_policy_action(out, batch.next_avail[:, None], k_approx)
        else:
            inferred = squash(out[0])  # the approximation's mean action
        return joint_with_own_action(own, inferred)  # agent i uses its own mu_i' for itself

    def masked_update(tx, grads, opt, params, mask):
        """An optax step per agent, kept only where ``mask [N...]`` (learning agents)."""
        vmapped = jax.vmap(tx.update)
        if mask.ndim == 2:  # approximations [N, N, ...]
            vmapped = jax.vmap(vmapped)
        updates, new_opt = vmapped(grads, opt, params)
        new_params = optax.apply_updates(params, updates)
        return select(mask, new_params, params), select(mask, new_opt, opt)

    def gradient_step(carry, inputs, temperature):
        params, target, opt = carry
        batch, key = inputs  # S transitions from D
        k_target, k_actor = prng.split(key)
        stats = {}

        # Sec. 4.2: fit mu_hat_i^j to agent j's buffered actions (+ lambda * entropy).
        approx_params, approx_opt = params.approx, opt.approx
        if config.policy_inference:

            def inference_loss(p):
                out = approx_out(p, batch.obs)  # [S, N(i), N(j), A]
                if discrete:
                    logits = dist.masked_logits(out, batch.avail[:, None])
                    taken = jnp.argmax(batch.action, axis=-1)[:, None]
                    log_lik = dist.categorical_log_prob(logits, jnp.broadcast_to(taken, logits.shape[:-1]))
                    entropy = dist.categorical_entropy(logits)
                else:
                    mean, log_std = out
                    log_lik = dist.gaussian_log_prob(squash(mean), log_std[None], batch.action[:, None])
                    entropy = dist.gaussian_entropy(log_std[None], log_lik.shape)
                objective = policy_inference_objective(log_lik, entropy, config.inference_entropy)
                off_diagonal = ~eye  # agent i needs no model of itself
                return -jnp.sum(objective * off_diagonal), jnp.sum(log_lik.mean(0) * off_diagonal)

            (_, log_lik), grads = batch_mean(
                jax.value_and_grad(inference_loss, has_aux=True)(approx_params))
            infer_mask = np.asarray(roles["centralised"])[:, None] & ~np.eye(n, dtype=bool)
            approx_params, approx_opt = masked_update(approx_tx, grads, opt.approx, approx_params,
                                                      infer_mask)
            stats["approx_log_likelihood"] = log_lik / max(n * (n - 1), 1)

        # Critic: regress Q_i(x, a) on y_i, bootstrapped from the target networks.
        next_q = critic_values(target.critic, batch.next_obs, target_actions(target, batch, k_target))
        y = critic_target(batch.reward, batch.terminated, next_q, config.gamma)

        def total_critic_loss(p):
            per_agent = critic_loss(critic_values(p, batch.obs, batch.action), y)
            return per_agent.sum(), per_agent  # agent i's parameters get only its own term

        (_, c_loss), grads = batch_mean(
            jax.value_and_grad(total_critic_loss, has_aux=True)(params.critic))
        critic_params, critic_opt = masked_update(critic_tx, grads, opt.critic, params.critic, learns)

        # Actor: ascend Q_i (the updated critic, as in the original code) at a_i = mu_i(o_i),
        # the other agents' actions from the buffer.
        def total_actor_loss(p):
            pre = actor_out(p, batch.obs)  # [S, N, A]
            a_pi = policy_action(pre, batch.avail, k_actor, temperature)
            objective = policy_objective(critic_values(critic_params, batch.obs, batch.action, a_pi))
            penalty = jnp.mean(pre**2, axis=(0, 2))  # [N]
            return jnp.sum(-objective + config.actor_reg * penalty), objective

        (_, q_pi), grads = batch_mean(
            jax.value_and_grad(total_actor_loss, has_aux=True)(params.actor))
        actor_params, actor_opt = masked_update(actor_tx, grads, opt.actor, params.actor, learns)

        params = Params(actor_params, critic_params, approx_params)
        target = soft_update(target, params, config.tau)
        opt = Params(actor_opt, critic_opt, approx_opt)
        stats.update(per_team({"critic_loss": c_loss, "policy_q": q_pi}))
        return (params, target, opt), stats

    def per_team(per_agent: dict) -> dict:
        """Means over learning agents, and per learning team when there are several."""
        out = {}
        teams = np.asarray(env.teams)
        for name, value in per_agent.items():
            if learns.any():
                out[name] = value[learns].mean()
            if env.num_teams > 1:
                for k, team in enumerate(env.team_names):
                    members = (teams == k) & learns
                    if members.any():
                        out[f"{name}_{team}"] = value[members].mean()
        return out

    def update(ls: LearnerState):
        (env_state, obs, key), (traj, info) = rollout(ls)
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), traj)  # [T * B, ...]
        buffer = replay.add(ls.buffer, flat)
        env_steps = ls.env_steps + config.steps_per_update
        key, k_sample, k_learn = prng.split(key, 3)
        # Every batch of this iteration at once: the buffer itself then stays out of the
        # gradient loop (a large loop operand that lives on afterwards would be copied).
        batches = replay.sample(buffer, k_sample, (config.gradient_steps, config.batch_size),
                                batch_part())
        carry = (ls.params, ls.target, ls.opt)
        temperature = temperature_at(env_steps)
        learned, stats = jax.lax.scan(
            lambda c, x: gradient_step(c, x, temperature), carry,
            (batches, prng.split(k_learn, config.gradient_steps)),
        )
        # Learning starts once the warm-up has filled the buffer with a batch or more.
        ready = env_steps >= max(config.warmup_steps, config.batch_size)
        params, target, opt = select(ready, learned, carry)
        ls = LearnerState(params, target, opt, buffer, env_state, obs, key, env_steps,
                          ls.update_step + 1)
        metrics = {
            "episode_sums": episode_sums(info, env.teams, env.team_names, env.metrics),
            "losses": jax.tree.map(jnp.mean, stats),
        }
        return ls, metrics

    def act(params: Params, obs, carry, key, deterministic=False, avail=None):
        """Decentralised execution: each agent acts on its own observation ``obs [N, d]``
        (with any leading batch axes). Exploration noise unless ``deterministic``; agents
        of a "random" team always act uniformly at random. Returns (env actions, carry)."""
        if avail is None:
            avail = jnp.ones((*obs.shape[:-1], a_dim), bool)
        explore = np.zeros(n, bool) if deterministic else learns
        use_random = jnp.broadcast_to(random_agent, obs.shape[:-1])
        _, env_action = behaviour(params.actor, obs, full_avail(avail), key, explore, use_random)
        return env_action, carry

    def init_carry(batch_shape=()):
        return None  # feed-forward actors: no recurrent state

    return Trainer(config, env, init, update, act, init_carry, config.steps_per_update)


def init_per_agent(module, keys, inputs):
    """``module``'s parameters for each agent (``keys [N]``; ``inputs [N, ...]``, or a tuple
    of such for several arguments), stacked on a leading agent axis. An init-time loop
    rather than a vmap: a batched orthogonal initialiser (a batched QR) inside jit can
    deadlock XLA's CPU thread pool (jaxlib 0.10)."""
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    return stack([module.init(keys[i], *(x[i] for x in args)) for i in range(len(keys))])


def stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def select(mask, on_true, on_false):
    """Tree-wise ``where`` with a leading-axes mask (a scalar, ``[N]`` or ``[N, N]``)."""
    mask = jnp.asarray(mask)

    def pick(x, y):
        m = mask.reshape(mask.shape + (1,) * (jnp.ndim(x) - mask.ndim))
        return jnp.where(m, x, y)

    return jax.tree.map(pick, on_true, on_false)
