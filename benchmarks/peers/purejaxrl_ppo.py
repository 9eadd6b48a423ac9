"""A minimal fully-jitted PPO on gymnax MinAtar in PureJaxRL's style: the peer of peer_ppo.py.

PureJaxRL is not on PyPI, so this is written from its design: ``make_train(config)`` returns
``train(key)``, a ``lax.scan`` over PPO iterations; each iteration is a ``lax.scan`` rollout of
vectorised gymnax steps, GAE by a reverse scan, and a ``lax.scan`` of epochs x minibatches with
optax Adam; no host work.

    python benchmarks/peers/purejaxrl_ppo.py --updates 200 --network shared

Compiles ``jax.jit(train)`` ahead of time, runs it once, and prints the run's wall time and
frames/s (compilation excluded).
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax


def parse() -> argparse.Namespace:
    """The command line: environment, PureJaxRL's PPO sizes and the network."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=10, help="PPO iterations")
    p.add_argument("--env", default="Breakout-MinAtar")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--network", choices=["purejaxrl", "shared"], default="purejaxrl",
                   help="purejaxrl: separate tanh actor and critic trunks (PureJaxRL's "
                        "ActorCritic); shared: one ReLU trunk for both heads (tdgen's PPO MLP)")  # fmt: skip
    p.add_argument("--lr", type=float, default=5e-3)
    return p.parse_args()


class ActorCritic(nn.Module):
    """Policy logits and value from two tanh trunks (PureJaxRL) or one shared ReLU trunk."""

    num_actions: int
    hidden: int = 64
    shared: bool = False  # one ReLU trunk for both heads instead of two tanh trunks

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)

        def trunk(h, name):
            for i in range(2):
                h = nn.Dense(self.hidden, name=f"{name}{i}")(h)
                h = nn.relu(h) if self.shared else nn.tanh(h)
            return h

        if self.shared:
            pi_in = v_in = trunk(x, "trunk")
        else:
            pi_in, v_in = trunk(x, "pi"), trunk(x, "v")
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(pi_in)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(v_in)
        return logits, value[:, 0]


def make_train(cfg: argparse.Namespace):
    """``init(key) -> state``, ``run(state, n) -> (state, metrics)`` and ``train(key)``."""
    env, env_params = gymnax.make(cfg.env)
    n_actions = env.action_space(env_params).n
    net = ActorCritic(n_actions, cfg.hidden, cfg.network == "shared")
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(cfg.lr, eps=1e-5))
    batch = cfg.num_envs * cfg.num_steps
    mb_size = batch // cfg.minibatches
    gamma, lam, clip, ent_coef, vf_coef = 0.99, 0.95, 0.2, 0.01, 0.5

    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key):
        k_net, k_env, key = jax.random.split(key, 3)
        obs_shape = env.observation_space(env_params).shape
        params = net.init(k_net, jnp.zeros((1, *obs_shape)))
        opt_state = tx.init(params)
        obs, env_state = v_reset(jax.random.split(k_env, cfg.num_envs), env_params)
        return (params, opt_state, env_state, obs, key)

    def loss_fn(params, mb):
        obs, act, old_logp, old_v, adv, ret = mb
        logits, v = net.apply(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, act[:, None], axis=1)[:, 0]
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        v_clipped = old_v + jnp.clip(v - old_v, -clip, clip)
        v_loss = 0.5 * jnp.maximum((v - ret) ** 2, (v_clipped - ret) ** 2).mean()
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ratio = jnp.exp(logp - old_logp)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv).mean()
        return pg + vf_coef * v_loss - ent_coef * entropy, (pg, v_loss, entropy)

    def update(state, _):
        params, opt_state, env_state, obs, key = state

        def env_step(carry, _):
            env_state, obs, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits, v = net.apply(params, obs)
            act = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), act[:, None], axis=1)[:, 0]
            obs2, env_state, rew, term, trunc, _ = v_step(
                jax.random.split(k_step, cfg.num_envs), env_state, act, env_params
            )
            done = jnp.logical_or(term, trunc).astype(jnp.float32)  # truncation as an end
            return (env_state, obs2, key), (obs, act, logp, v, rew, done)

        (env_state, obs, key), traj = jax.lax.scan(
            env_step, (env_state, obs, key), None, cfg.num_steps
        )
        t_obs, t_act, t_logp, t_v, t_rew, t_done = traj
        _, last_v = net.apply(params, obs)

        def gae_step(carry, x):
            gae, next_v = carry
            v, rew, done = x
            delta = rew + gamma * next_v * (1 - done) - v
            gae = delta + gamma * lam * (1 - done) * gae
            return (gae, v), gae

        _, adv = jax.lax.scan(
            gae_step, (jnp.zeros_like(last_v), last_v), (t_v, t_rew, t_done), reverse=True
        )
        ret = adv + t_v
        data = (t_obs, t_act, t_logp, t_v, adv, ret)
        data = jax.tree.map(lambda x: x.reshape((batch, *x.shape[2:])), data)

        def epoch(carry, _):
            params, opt_state, key = carry
            key, k_perm = jax.random.split(key)
            perm = jax.random.permutation(k_perm, batch)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((cfg.minibatches, mb_size, *x.shape[1:])), data
            )

            def minibatch(carry, mb):
                params, opt_state = carry
                (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            (params, opt_state), losses = jax.lax.scan(minibatch, (params, opt_state), mbs)
            return (params, opt_state, key), losses

        (params, opt_state, key), losses = jax.lax.scan(
            epoch, (params, opt_state, key), None, cfg.epochs
        )
        metrics = {"loss": losses.mean(), "reward_per_step": t_rew.mean(),
                   "episodes": t_done.sum()}  # fmt: skip
        return (params, opt_state, env_state, obs, key), metrics

    def run(state, n: int):
        return jax.lax.scan(update, state, None, n)

    def train(key):
        return run(init(key), cfg.updates)

    return init, run, train


def main() -> None:
    """Compile, run once, print the rate."""
    cfg = parse()
    _, _, train = make_train(cfg)
    frames = cfg.updates * cfg.num_envs * cfg.num_steps
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    fn = jax.jit(train).lower(key).compile()
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = jax.block_until_ready(fn(key))
    wall = time.perf_counter() - start
    print(f"compiled in {compiled:.1f} s; run {wall:.1f} s, {frames / wall:,.0f} frames/s, "
          f"last reward/step {float(metrics['reward_per_step'][-1]):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
