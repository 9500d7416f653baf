"""JaxMARL's recurrent MAPPO on MPE simple_spread, timed (run by recurrent_throughput.py in an
interpreter that has ``jaxmarl`` installed; this project's code is not imported).

The ``jaxmarl`` package has no baselines, so this is a re-creation of the training loop of
JaxMARL's ``baselines/MAPPO/mappo_rnn_mpe.py`` with its building blocks: JaxMARL's env,
``MPELogWrapper`` and each agent's world state (all agents' observations concatenated),
agents batchified into one actor axis ``[N * B]``; actor and critic Dense(FC) -> flax
``nn.GRUCell`` stepped by ``nn.scan`` (carry reset where done) -> Dense(GRU) -> head;
T-step rollouts, GAE on the global done, E epochs over M minibatches of whole actor
sequences; PPO's clipped objective with per-minibatch advantage normalisation and entropy,
clipped value loss; Adam with global-norm clipping and a linearly annealed learning rate.
Left out: the per-update wandb callback. Seeds run as our runner runs them: one after
another on a CPU (``lax.map``; ``vmap`` over seeds of this loop hung on jax 0.10.2's CPU
backend), side by side on an accelerator (``vmap``, as JaxMARL's own scripts do).

    python _jaxmarl_mappo_rnn.py SEEDS STEPS_PER_SEED NUM_ENVS NUM_STEPS EPOCHS MINIBATCHES FC GRU

Prints one JSON line: compile and run seconds, env-steps/s over all seeds, the matrix-product
FLOPs per env step (``_common.matmul_flops``, the benchmarks' counter, as for ours), the jax
version.
"""

import json
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxmarl
import numpy as np
import optax
from _common import matmul_flops
from flax.linen.initializers import constant, orthogonal
from jaxmarl.wrappers.baselines import MPELogWrapper

SEEDS, STEPS, NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES, FC, GRU = (int(float(a)) for a in sys.argv[1:9])
LR, GAMMA, LAMBDA, CLIP, ENT, VF, MAX_NORM = 2e-3, 0.99, 0.95, 0.2, 0.01, 0.5, 10.0


class GRUOverTime(nn.Module):
    """flax's GRU cell scanned over time (inputs [T, A, d]), carry zeroed where reset."""

    @nn.compact
    def __call__(self, carry, inputs):
        def cell(module, h, x_reset):
            x, reset = x_reset
            h = jnp.where(reset[:, None], 0.0, h)
            return nn.GRUCell(GRU)(h, x)

        scan = nn.scan(cell, variable_broadcast="params", split_rngs={"params": False})
        return scan(self, carry, inputs)


class Recurrent(nn.Module):
    outputs: int
    head_gain: float

    @nn.compact
    def __call__(self, h, x, resets):
        x = nn.relu(nn.Dense(FC, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x))
        h, y = GRUOverTime()(h, (x, resets))
        y = nn.relu(nn.Dense(GRU, kernel_init=orthogonal(2), bias_init=constant(0.0))(y))
        return h, nn.Dense(self.outputs, kernel_init=orthogonal(self.head_gain),
                           bias_init=constant(0.0))(y)


def make_train():
    env = MPELogWrapper(jaxmarl.make("MPE_simple_spread_v3"))
    agents, n = env.agents, env.num_agents
    actors = n * NUM_ENVS
    updates = STEPS // (NUM_STEPS * NUM_ENVS)
    actor, critic = Recurrent(env.action_space(agents[0]).n, 0.01), Recurrent(1, 1.0)

    def batchify(d):  # {agent: [B, ...]} -> [N * B, ...]
        return jnp.concatenate([d[a] for a in agents], axis=0)

    def world_state(obs):  # every actor sees all agents' observations: [N * B, N * obs]
        joint = jnp.concatenate([obs[a] for a in agents], axis=-1)
        return jnp.tile(joint, (n, 1))

    def schedule(count):
        return LR * (1.0 - (count // (MINIBATCHES * EPOCHS)) / updates)

    tx = optax.chain(optax.clip_by_global_norm(MAX_NORM), optax.adam(schedule, eps=1e-5))

    def train(key):
        key, k_a, k_c, k_env = jax.random.split(key, 4)
        h0 = jnp.zeros((actors, GRU))
        obs_dim = env.observation_space(agents[0]).shape[0]
        params = (actor.init(k_a, h0, jnp.zeros((1, actors, obs_dim)), jnp.zeros((1, actors), bool)),
                  critic.init(k_c, h0, jnp.zeros((1, actors, n * obs_dim)), jnp.zeros((1, actors), bool)))
        opts = (tx.init(params[0]), tx.init(params[1]))
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_env, NUM_ENVS))

        def update(carry, _):
            params, opts, env_state, obs, done, hs, key = carry
            start_hs = hs

            def env_step(c, _):
                env_state, obs, done, (h_a, h_c), key = c
                key, k_act, k_step = jax.random.split(key, 3)
                o, ws = batchify(obs), world_state(obs)
                h_a, logits = actor.apply(params[0], h_a, o[None], done[None])
                h_c, value = critic.apply(params[1], h_c, ws[None], done[None])
                logits, value = logits[0], value[0, :, 0]
                action = jax.random.categorical(k_act, logits)
                log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
                env_act = {a: action[i * NUM_ENVS:(i + 1) * NUM_ENVS] for i, a in enumerate(agents)}
                obs2, env_state, reward, dones, info = jax.vmap(env.step)(
                    jax.random.split(k_step, NUM_ENVS), env_state, env_act)
                step = (done, jnp.tile(dones["__all__"], n), action, value, batchify(reward),
                        log_prob, o, ws)
                return (env_state, obs2, batchify(dones), (h_a, h_c), key), step

            (env_state, obs, done, hs, key), traj = jax.lax.scan(
                env_step, (env_state, obs, done, hs, key), None, NUM_STEPS)
            first, global_done, action, value, reward, old_log_prob, o, ws = traj
            _, last_value = critic.apply(params[1], hs[1], world_state(obs)[None], done[None])

            def gae_step(c, t):
                adv, next_value = c
                d, v, r = t
                delta = r + GAMMA * next_value * (1 - d) - v
                adv = delta + GAMMA * LAMBDA * (1 - d) * adv
                return (adv, v), adv

            _, advantage = jax.lax.scan(gae_step, (jnp.zeros(actors), last_value[0, :, 0]),
                                        (global_done, value, reward), reverse=True)
            target = advantage + value

            def actor_loss(p, h, mb):
                o, first, action, old_log_prob, adv = mb
                _, logits = actor.apply(p, h, o, first)
                log_p = jax.nn.log_softmax(logits)
                log_prob = jnp.take_along_axis(log_p, action[..., None], -1)[..., 0]
                ratio = jnp.exp(log_prob - old_log_prob)
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv)
                entropy = -(jnp.exp(log_p) * log_p).sum(-1)
                return -surrogate.mean() - ENT * entropy.mean()

            def critic_loss(p, h, mb):
                ws, first, old_value, tgt = mb
                _, v = critic.apply(p, h, ws, first)
                v = v[..., 0]
                clipped = old_value + jnp.clip(v - old_value, -CLIP, CLIP)
                return VF * 0.5 * jnp.maximum((v - tgt) ** 2, (clipped - tgt) ** 2).mean()

            def epoch(c, key):
                params, opts = c
                perm = jax.random.permutation(key, actors)
                size = actors // MINIBATCHES

                def split(x, axis):  # minibatches of whole actor sequences
                    x = jnp.take(x, perm, axis=axis)
                    x = x.reshape(*x.shape[:axis], MINIBATCHES, size, *x.shape[axis + 1:])
                    return jnp.moveaxis(x, axis, 0)

                seq = jax.tree.map(lambda x: split(x, 1),
                                   (o, first, action, old_log_prob, advantage, ws, value, target))
                h_start = jax.tree.map(lambda x: split(x, 0), start_hs)

                def minibatch(c, mb):
                    params, opts = c
                    (o, first, action, old_lp, adv, ws, old_v, tgt), (h_a, h_c) = mb
                    g_a = jax.grad(actor_loss)(params[0], h_a, (o, first, action, old_lp, adv))
                    g_c = jax.grad(critic_loss)(params[1], h_c, (ws, first, old_v, tgt))
                    u_a, opt_a = tx.update(g_a, opts[0], params[0])
                    u_c, opt_c = tx.update(g_c, opts[1], params[1])
                    return ((optax.apply_updates(params[0], u_a), optax.apply_updates(params[1], u_c)),
                            (opt_a, opt_c)), None

                return jax.lax.scan(minibatch, (params, opts), (seq, h_start))[0], None

            key, k_epochs = jax.random.split(key)
            (params, opts), _ = jax.lax.scan(epoch, (params, opts), jax.random.split(k_epochs, EPOCHS))
            return (params, opts, env_state, obs, done, hs, key), env_state.returned_episode_returns.mean()

        carry = (params, opts, env_state, obs, jnp.zeros(actors, bool), (h0, h0), key)
        _, returns = jax.lax.scan(update, carry, None, updates)
        return returns

    return train, updates


def main():
    train, updates = make_train()
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    side_by_side = jax.default_backend() != "cpu"
    run = jax.jit(jax.vmap(train) if side_by_side else lambda keys: jax.lax.map(train, keys))
    t0 = time.perf_counter()
    compiled = run.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    returns = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    env_steps = SEEDS * updates * NUM_STEPS * NUM_ENVS
    flops_per_step = matmul_flops(train, keys[0]) / (updates * NUM_STEPS * NUM_ENVS)
    print(json.dumps({"compile_s": compile_s, "train_s": run_s, "env_steps_per_s": env_steps / run_s,
                      "matmul_flops_per_env_step": flops_per_step,
                      "matmul_gflops_per_s": flops_per_step * env_steps / run_s / 1e9,
                      "final_return": float(returns[:, -1].mean()), "jax": jax.__version__}))


if __name__ == "__main__":
    main()
