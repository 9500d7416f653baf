"""MADDPG: hand-worked critic targets and policy gradients, Gumbel-softmax, learning,
determinism, teams and config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.algos import maddpg
from ctde.envs import make

# --- the paper's terms, by hand -----------------------------------------------------------


def test_critic_target_bootstraps_unless_terminated():
    # y = r + gamma (1 - terminated) Q'(x', a'): 1 + 0.5 * 3 = 2.5 and -2 + 0.5 * 4 = 0;
    # a terminated row keeps only r.
    reward = jnp.array([[1.0, -2.0], [1.0, -2.0]])
    next_q = jnp.array([[3.0, 4.0], [3.0, 4.0]])
    y = maddpg.critic_target(reward, jnp.array([False, True]), next_q, 0.5)
    np.testing.assert_allclose(y, [[2.5, 0.0], [1.0, -2.0]])


def test_critic_loss_is_a_per_agent_mean_squared_error():
    q = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    y = jnp.array([[0.0, 2.0], [1.0, 1.0]])
    # agent 0: (1^2 + 2^2) / 2 = 2.5;  agent 1: (0 + 3^2) / 2 = 4.5
    np.testing.assert_allclose(maddpg.critic_loss(q, y), [2.5, 4.5])
    grad = jax.grad(lambda q: maddpg.critic_loss(q, q + 1.0).sum())(q)
    np.testing.assert_allclose(grad, -jnp.ones_like(q))  # the target is held constant


def linear_q(w, x, actions, sees, own=None):
    """A linear critic on (x, a) that zeroes the weights of agents it does not see, with
    agent i's action changed the slow way, in the input (maddpg.Critic does it by linearity)."""
    n, a_dim = actions.shape[-2:]
    mask = jnp.concatenate([jnp.repeat(sees, x.shape[-1] // n), jnp.repeat(sees, a_dim)])
    if own is not None:
        one_hot, delta = own
        actions = actions + one_hot[:, None] * delta[:, None, :]
    return jnp.concatenate([x, actions.reshape(len(x), -1)], axis=-1) @ (w * mask)


@pytest.mark.parametrize("centralised", [True, False])
def test_policy_gradient_flows_through_own_action_only(centralised):
    # Two agents, one observation and one action each: mu_i(o_i) = tanh(theta_i o_i) with
    # theta = (0.5, -0.25), o = (1, 2); linear critics on (o_0, o_1, a_0, a_1) with weights
    # w_0 = (0, 0, 2, 3), w_1 = (0, 0, 5, 7); buffered actions b = (0.1, 0.2).
    obs = jnp.array([[[1.0], [2.0]]])  # [S=1, N=2, d=1]
    buffered = jnp.array([[[0.1], [0.2]]])  # [S, N, A=1]
    w = jnp.array([[0.0, 0.0, 2.0, 3.0], [0.0, 0.0, 5.0, 7.0]])
    sees = jnp.ones((2, 2)) if centralised else jnp.eye(2)  # MADDPG vs DDPG critics

    def objective(theta):
        mu = jnp.tanh(theta[None, :, None] * obs)
        q = maddpg.centralised_q_values(linear_q, w, sees, obs, buffered, own_actions=mu)
        return maddpg.policy_objective(q)

    theta = jnp.array([0.5, -0.25])
    t = np.tanh(0.5)
    # J_0 = 2 mu_0 + 3 b_1, J_1 = 5 b_0 + 7 mu_1 (mu_1 = -tanh 0.5); a DDPG critic sees no b.
    expected = [2 * t + 0.6, 0.5 - 7 * t] if centralised else [2 * t, -7 * t]
    np.testing.assert_allclose(objective(theta), expected, rtol=1e-6)
    # dJ_i/dtheta_i = w_ii (1 - tanh^2) o_i: 2 (1 - t^2) * 1 and 7 (1 - t^2) * 2. No cross
    # terms: critic 1 sees agent 0's *buffered* action, not mu_0.
    grad = jax.grad(lambda th: objective(th).sum())(theta)
    np.testing.assert_allclose(grad, [2 * (1 - t**2), 14 * (1 - t**2)], rtol=1e-6)


def test_critic_changes_one_agents_action_by_linearity_exactly_as_in_its_input():
    """maddpg.Critic adds W_i delta to its first layer instead of rebuilding the input: the
    same Q values and the same gradients as the critic on the changed joint action."""
    critic = maddpg.Critic((16, 16), "relu")
    n, d, a_dim, s = 3, 4, 2, 7
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(k[0], (s, n * d))
    actions = jax.random.normal(k[1], (s, n, a_dim))
    own = jax.random.normal(k[2], (s, a_dim))
    one_hot = jnp.eye(n)[1]  # the changed agent: 1

    def slow(p, own, sees):  # the changed joint action as the critic's input
        return critic.apply(p, x, actions.at[:, 1].set(own), sees).sum()

    def fast(p, own, sees):
        return critic.apply(p, x, actions, sees, (one_hot, own - actions[:, 1])).sum()

    for sees in (jnp.ones(n), one_hot):  # MADDPG, DDPG (agent 1's critic)
        params = critic.init(k[3], x, actions, sees)
        np.testing.assert_allclose(fast(params, own, sees), slow(params, own, sees), rtol=1e-5)
        for argnum in (0, 1):
            g_fast = jax.grad(fast, argnum)(params, own, sees)
            g_slow = jax.grad(slow, argnum)(params, own, sees)
            for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_slow), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # a DDPG critic ignores the agents it does not see, whatever their entries
    params = critic.init(k[3], x, actions, jnp.eye(n)[1])
    q = critic.apply(params, x, actions, jnp.eye(n)[1])
    others = actions.at[:, 0].set(5.0).at[:, 2].set(-3.0)
    np.testing.assert_array_equal(critic.apply(params, x.at[:, :d].set(9.0), others, jnp.eye(n)[1]), q)


def test_joint_action_per_critic_takes_its_own_agents_action():
    own = jnp.arange(6.0).reshape(1, 3, 2)  # [S, N, A]
    others = -jnp.ones((1, 3, 3, 2))  # critic i's model of every agent j
    joint = np.asarray(maddpg.joint_with_own_action(own, others))
    for i in range(3):
        np.testing.assert_array_equal(joint[0, i, i], own[0, i])
        assert np.all(np.delete(joint[0, i], i, axis=0) == -1)


def test_ddpg_critic_ignores_the_other_agents():
    key = jax.random.PRNGKey(0)
    w = jax.random.normal(key, (3, 3 * (4 + 2)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3, 4))
    joint = jax.random.normal(jax.random.PRNGKey(2), (5, 3, 3, 2))

    def q(obs, joint, sees):
        return maddpg.centralised_q_values(linear_q, w, sees, obs, joint).sum()

    grad = jax.jit(jax.grad(q, argnums=(0, 1)))
    g_obs, g_act = grad(obs, joint, jnp.eye(3))
    # critic i's gradient reaches only (o_i, a_i): the others' entries are exactly zero
    assert np.all(np.asarray(g_obs) != 0)  # each o_i reaches its own critic
    mask = np.eye(3, dtype=bool)[None, :, :, None]
    assert np.all(np.asarray(g_act)[np.broadcast_to(~mask, g_act.shape)] == 0)
    assert np.all(np.asarray(g_act)[np.broadcast_to(mask, g_act.shape)] != 0)
    g_obs_c, _ = grad(obs, joint, jnp.ones((3, 3)))
    assert not np.allclose(g_obs_c, g_obs)  # a centralised critic sees everyone


def test_policy_inference_objective_and_soft_update():
    log_lik = jnp.array([[[-1.0, -2.0]], [[-3.0, -4.0]]])  # [S=2, N=1, N=2]
    entropy = jnp.array([[[1.0, 0.5]], [[1.0, 0.5]]])
    # mean over S of log p + 0.1 H: (-2 + 0.1, -3 + 0.05)
    np.testing.assert_allclose(maddpg.policy_inference_objective(log_lik, entropy, 0.1),
                               [[-1.9, -2.95]], rtol=1e-6)
    target = maddpg.soft_update({"w": jnp.zeros(2)}, {"w": jnp.array([1.0, -2.0])}, 0.01)
    np.testing.assert_allclose(target["w"], [0.01, -0.02])


def test_gradient_clipping_per_tensor_as_the_original_code():
    grads = {"w": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}  # norms 5 and 0.5
    tensor = maddpg.clip_gradients("tensor", 1.0)
    out, _ = tensor.update(grads, tensor.init(grads))
    np.testing.assert_allclose(out["w"], [0.6, 0.8], rtol=1e-6)  # norm 5 -> 1
    np.testing.assert_allclose(out["b"], [0.3, 0.4], rtol=1e-6)  # norm 0.5 < 1: unchanged
    whole = maddpg.clip_gradients("global", 1.0)
    out, _ = whole.update(grads, whole.init(grads))
    scale = 1.0 / np.sqrt(25.0 + 0.25)  # the norm of both tensors together -> 1
    np.testing.assert_allclose(out["w"], [3.0 * scale, 4.0 * scale], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [0.3 * scale, 0.4 * scale], rtol=1e-6)


def test_gumbel_softmax_hard_sample_is_the_categorical_sample():
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1]] * 4))
    key = jax.random.PRNGKey(3)
    w = jnp.array([1.0, 2.0, 3.0])

    @jax.jit
    def draws(logits):
        soft = maddpg.gumbel_softmax(key, logits, 1.0)
        hard = maddpg.gumbel_softmax(key, logits, 1.0, hard=True)
        categorical = jax.random.categorical(key, logits)
        g_soft = jax.grad(lambda lg: (maddpg.gumbel_softmax(key, lg, 0.5) @ w).sum())(logits)
        g_hard = jax.grad(lambda lg: (maddpg.gumbel_softmax(key, lg, 0.5, True) @ w).sum())(logits)
        return soft, hard, categorical, g_soft, g_hard

    soft, hard, categorical, g_soft, g_hard = draws(logits)
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(hard, jax.nn.one_hot(jnp.argmax(soft, -1), 3))
    # what the env executes (a categorical sample) is the same draw's argmax
    np.testing.assert_array_equal(jnp.argmax(hard, -1), categorical)
    # straight-through: the relaxed sample's gradient
    np.testing.assert_allclose(g_hard, g_soft, rtol=1e-5)


def test_conditional_gumbel_keeps_the_sample_and_the_gumbel_softmax_mean():
    # Rao-Blackwellisation: averaged over the sampled action D, the relaxed sample under
    # noise conditioned on D has the unconditional Gumbel-softmax mean; the largest
    # perturbed logit is Gumbel(log Z) whatever D is (here log Z = 0: mean = Euler's gamma).
    rows, tau = 20_000, 0.7
    logits = jnp.broadcast_to(jnp.log(jnp.array([0.6, 0.3, 0.1])), (rows, 3))
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    one_hot = maddpg.categorical_one_hot(k[0], logits)
    noise = maddpg.conditional_gumbel(k[1], logits, one_hot, 2)  # [rows, K=2, A]
    perturbed = logits[:, None] + noise
    np.testing.assert_array_equal(jnp.argmax(perturbed, -1),
                                  jnp.broadcast_to(jnp.argmax(one_hot, -1)[:, None], (rows, 2)))
    conditional = jax.nn.softmax(perturbed / tau, -1).mean((0, 1))
    unconditional = maddpg.gumbel_softmax(k[2], logits, tau).mean(0)
    np.testing.assert_allclose(conditional, unconditional, atol=0.01)
    assert float(perturbed.max(-1).mean()) == pytest.approx(np.euler_gamma, abs=0.03)
    np.testing.assert_allclose(one_hot.mean(0), [0.6, 0.3, 0.1], atol=0.015)


def test_gumbel_rao_is_the_sample_forward_and_the_mean_relaxed_gradient_back():
    logits = jnp.array([[0.5, -1.0, 0.2, 0.0]] * 3)
    w = jnp.array([1.0, -2.0, 0.5, 3.0])
    k_sample, k_rao = jax.random.split(jax.random.PRNGKey(1))
    one_hot = maddpg.categorical_one_hot(k_sample, logits)
    out = maddpg.gumbel_rao(k_rao, logits, one_hot, 0.5, 4)
    np.testing.assert_array_equal(out, one_hot)
    noise = maddpg.conditional_gumbel(k_rao, logits, one_hot, 4)

    def slow(lg):  # the mean over the K relaxed samples, written out
        return sum(jax.nn.softmax((lg + noise[:, j]) / 0.5, -1) @ w for j in range(4)).sum() / 4

    fast = jax.grad(lambda lg: (maddpg.gumbel_rao(k_rao, lg, one_hot, 0.5, 4) @ w).sum())(logits)
    np.testing.assert_allclose(fast, jax.grad(slow)(logits), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "logits,sampled,moved",
    [
        # the sampled action (2) is raised to the top logit, the others lowered to 2 - 1 or less
        ([2.0, 1.0, 0.5], 2, [1.0, 1.0, 2.0]),
        # the sampled action is already the top: only the runner-up within the gap moves
        ([0.5, 2.0, 1.8], 1, [0.5, 2.0, 1.0]),
    ],
)
def test_gapped_straight_through_hand_worked(logits, sampled, moved):
    logits, w = jnp.array([logits]), jnp.array([1.0, -2.0, 3.0])
    one_hot = jax.nn.one_hot(jnp.array([sampled]), 3)
    out = maddpg.gapped_straight_through(logits, one_hot, 1.0, 1.0)
    np.testing.assert_array_equal(out, one_hot)
    p = np.exp(moved) / np.exp(moved).sum()  # d(p . w)/d logits = p * (w - p . w)
    grad = jax.grad(lambda lg: (maddpg.gapped_straight_through(lg, one_hot, 1.0, 1.0) @ w).sum())(logits)
    np.testing.assert_allclose(grad[0], p * (np.asarray(w) - p @ np.asarray(w)), rtol=1e-5)


def test_annealed_temperature_hand_worked():
    # 2.5 -> 0.5 over 500 k env steps: 1.5 halfway, 0.5 from then on
    for steps, expected in [(0, 2.5), (250_000, 1.5), (500_000, 0.5), (2_000_000, 0.5)]:
        assert float(maddpg.annealed_temperature(steps, 2.5, 0.5, 500_000)) == pytest.approx(expected)


@pytest.mark.parametrize("estimator", maddpg.ESTIMATORS)
def test_critics_are_differentiated_at_one_hots_unless_relaxed(estimator):
    # The buffer stores the one-hots of what the env executed, so the critics are fitted
    # at one-hots: every estimator but "gs" (the original code's relaxed sample) queries
    # them there, at a categorical sample of the policy. The default is straight-through.
    assert maddpg.Config().gradient_estimator == "st"
    rows = 20_000
    logits = jnp.broadcast_to(jnp.log(jnp.array([0.5, 0.3, 0.2])), (rows, 3))
    config = maddpg.Config(gradient_estimator=estimator)
    action = maddpg.policy_sample(config, jax.random.PRNGKey(2), logits, 1.0)
    one_hot = np.all((action == 0) | (action == 1)) and np.all(action.sum(-1) == 1)
    assert one_hot == (estimator != "gs")
    sampled = jax.nn.one_hot(jnp.argmax(action, -1), 3)  # the action itself, if one-hot
    np.testing.assert_allclose(sampled.mean(0), [0.5, 0.3, 0.2], atol=0.015)  # a sample of pi
    def first_action(lg):
        return maddpg.policy_sample(config, jax.random.PRNGKey(2), lg, 1.0)[:, 0].sum()

    grad = jax.grad(first_action)(logits)
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0  # and a gradient through it
    soft = maddpg.policy_sample(maddpg.Config(gradient_estimator=estimator, soft_actions=True),
                                jax.random.PRNGKey(2), logits, 1.0)
    assert not np.all((soft == 0) | (soft == 1))  # soft actions: the relaxed sample they execute


# --- the whole learner ------------------------------------------------------------------

def compiled(trainer):
    """The trainer with ``init`` and ``update`` compiled once."""
    init = jax.jit(trainer.init).lower(jax.random.PRNGKey(0)).compile()
    update = jax.jit(trainer.update).lower(init(jax.random.PRNGKey(0))).compile()
    return trainer._replace(init=init), update


IDENTITY = dict(num_envs=16, rollout_steps=10, update_every=10, batch_size=256, buffer_size=10_000,
                warmup_steps=480)


@pytest.fixture(scope="module")
def identity_learner():
    """MADDPG on the continuous identity task; one compiled update shared by the tests."""
    env = make("identity", num_agents=2, num_actions=2, continuous_actions=True)
    return env, *compiled(maddpg.make_train(maddpg.Config(**IDENTITY), env))


def train(trainer, update, updates, seed):
    state = trainer.init(jax.random.PRNGKey(seed))
    for _ in range(updates):
        state, metrics = update(state)
    return state, metrics


def test_learns_the_continuous_identity_task(identity_learner):
    env, trainer, update = identity_learner
    state, metrics = train(trainer, update, 30, seed=0)
    sums = metrics["episode_sums"]
    assert float(sums["return"] / sums["episodes"]) > -0.5  # random play: about -6.7
    # decentralised execution: every agent outputs its own cue
    obs, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(7), 64))
    actions, _ = jax.jit(trainer.act, static_argnums=4)(state.params, obs, None,
                                                         jax.random.PRNGKey(0), True)
    cue = obs[..., :2]  # the observation is (cue, time)
    assert float(jnp.mean((actions - cue) ** 2)) < 0.02  # random play: 0.67


def test_same_seed_same_result_and_different_seed_differs(identity_learner):
    _, trainer, update = identity_learner
    a, _ = train(trainer, update, 4, seed=1)  # warm-up is 3 updates: learning has begun
    b, _ = train(trainer, update, 4, seed=1)
    c, _ = train(trainer, update, 4, seed=2)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y)
               for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(c.params), strict=True))
    first, _ = train(trainer, update, 1, seed=1)  # warm-up: random actions, no learning
    initial = trainer.init(jax.random.PRNGKey(1))
    for x, y in zip(jax.tree.leaves(first.params), jax.tree.leaves(initial.params), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "settings",
    [
        {},  # straight-through, per-tensor clipping
        {"gradient_estimator": "grmc"},
        pytest.param({"gradient_estimator": "tags", "temperature_anneal_steps": 1600},
                     marks=pytest.mark.slow),
        pytest.param({"gradient_estimator": "gst"}, marks=pytest.mark.slow),
        pytest.param({"gradient_estimator": "gs"}, marks=pytest.mark.slow),
        pytest.param({"grad_clip": "global"}, marks=pytest.mark.slow),
    ],
    ids=["default", "grmc", "tags", "gst", "gs", "global_clip"],
)
def test_learns_the_discrete_identity_task(settings):
    env = make("identity", num_agents=2, num_actions=4)
    trainer, update = compiled(maddpg.make_train(maddpg.Config(**IDENTITY, **settings), env))
    state, metrics = train(trainer, update, 12, seed=0)
    sums = metrics["episode_sums"]
    assert float(sums["accuracy"] / sums["episodes"]) > 0.9  # random play: 0.25


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"batch_size": 2048, "buffer_size": 1000}, "smaller than a batch"),
        ({"num_envs": 10, "rollout_steps": 25, "update_every": 100}, "must divide"),
        ({"buffer_size": 1024, "batch_size": 1024}, "cannot hold one iteration"),
        ({"team_algos": ("maddpg", "ppo")}, "team_algos entries must be one of"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"tau": 0.0}, "tau must be in"),
        ({"actor_lr": 0.0}, "actor_lr must be > 0"),
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"grad_clip": "layer"}, "grad_clip must be one of tensor, global"),
        ({"gradient_estimator": "rebar"}, "gradient_estimator must be one of st, tags, grmc"),
        ({"gumbel_rao_samples": 0}, "gumbel_rao_samples must be >= 1"),
        ({"temperature_end": 0.0}, "temperature_end must be > 0"),
    ],
)
def test_invalid_config_is_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        maddpg.Config(**bad)


def test_team_split_must_match_the_env():
    with pytest.raises(ValueError, match="team_algos has 1 entries but simple_tag has 2 team"):
        maddpg.make_train(maddpg.Config(team_algos=("maddpg",)), make("simple_tag"))
    with pytest.raises(ValueError, match="has 1 team"):
        maddpg.make_train(maddpg.Config(team_algos=("maddpg", "ddpg")), make("identity"))
    with pytest.raises(ValueError, match="soft_actions needs continuous actions"):
        maddpg.make_train(maddpg.Config(soft_actions=True), make("simple_tag"))
    roles = maddpg.agent_roles(maddpg.Config(team_algos=("ddpg", "random")), make("simple_tag"))
    np.testing.assert_array_equal(roles["learns"], [True, True, True, False])
    np.testing.assert_array_equal(roles["centralised"], [False] * 4)
    np.testing.assert_array_equal(roles["random"], [False, False, False, True])
