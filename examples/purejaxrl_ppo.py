"""A PureJaxRL-style PPO on gymnax CartPole, measured by tdgen's Probe inside its lax.scan.

    python examples/purejaxrl_ppo.py [--updates 40] [--probe-every 10]

The whole run is one pure function, `make_train(config)(key) -> metrics` (Lu et al. 2022,
PureJaxRL's ppo.py: `_env_step` and `_update_epoch` as scan bodies, explicit carries). After each
update `Probe.on_schedule` measures the policy on the first k samples of the rollout just used,
with the optimiser state after the update and PPO's per-sample clipped surrogate as the loss:
dormant units, feature rank, norms, gradient norm, policy churn (total variation) and the update
rank of the policy ("policy" reduction). Off schedule it returns NaNs (one `lax.cond`), so the
metrics come out stacked over updates like every other PureJaxRL metric, jitted once.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen.interference import Probe

MEASURES = ("dormant", "active", "features", "param_norm", "grad_norm", "churn", "update_rank")


class ActorCritic(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x):
        pi = nn.tanh(nn.Dense(64)(x))
        pi = nn.tanh(nn.Dense(64)(pi))
        v = nn.tanh(nn.Dense(64)(x))
        v = nn.tanh(nn.Dense(64)(v))
        return nn.Dense(self.num_actions)(pi), nn.Dense(1)(v)[..., 0]


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    value: jax.Array
    logprob: jax.Array


def make_train(config: dict):
    env, env_params = gymnax.make("CartPole-v1")
    net = ActorCritic(env.action_space(env_params).n)
    n_envs, n_steps, k = config["num_envs"], config["num_steps"], config["probe_k"]
    minibatch = n_envs * n_steps // config["num_minibatches"]
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(config["lr"], eps=1e-5))

    def actor_loss(params, t):  # one sample: PPO's clipped surrogate (Schulman et al. 2017, Eq. 7)
        logits, _ = net.apply(params, t["obs"][None])
        logprob = jax.nn.log_softmax(logits[0])[t["action"]]
        ratio = jnp.exp(logprob - t["logprob"])
        clipped = jnp.clip(ratio, 1 - config["clip"], 1 + config["clip"]) * t["advantage"]
        return -jnp.minimum(ratio * t["advantage"], clipped)

    probe = Probe(lambda p, x: net.apply(p, x)[0], actor_loss, optimizer, model=net,
                  measures=MEASURES, head="policy", reduce="policy", center="none")  # fmt: skip

    def batch_loss(params, t):
        logits, value = net.apply(params, t["obs"])
        logprob = jnp.take_along_axis(jax.nn.log_softmax(logits), t["action"][:, None], 1)[:, 0]
        ratio = jnp.exp(logprob - t["logprob"])
        adv = (t["advantage"] - t["advantage"].mean()) / (t["advantage"].std() + 1e-8)
        clipped = jnp.clip(ratio, 1 - config["clip"], 1 + config["clip"]) * adv
        entropy = -jnp.sum(jax.nn.softmax(logits) * jax.nn.log_softmax(logits), -1).mean()
        value_loss = 0.5 * jnp.mean((value - t["return"]) ** 2)
        return -jnp.minimum(ratio * adv, clipped).mean() + 0.5 * value_loss - 0.01 * entropy

    def train(key):
        key, key_init, key_reset = jax.random.split(key, 3)
        params = net.init(key_init, jnp.zeros((1, *env.observation_space(env_params).shape)))
        opt_state = optimizer.init(params)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(key_reset, n_envs),
                                                        env_params)  # fmt: skip

        def _update_step(carry, update):
            params, opt_state, env_state, obs, key = carry

            def _env_step(carry, _):
                env_state, obs, key = carry
                key, key_act, key_step = jax.random.split(key, 3)
                logits, value = net.apply(params, obs)
                action = jax.random.categorical(key_act, logits)
                logprob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
                obs2, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, (0, 0, 0, None))(
                    jax.random.split(key_step, n_envs), env_state, action, env_params)  # fmt: skip
                done = terminated | truncated  # auto-reset either way, as PureJaxRL's ppo.py
                return (env_state, obs2, key), Transition(obs, action, reward, done, value, logprob)

            (env_state, obs, key), traj = jax.lax.scan(_env_step, (env_state, obs, key), None,
                                                       n_steps)  # fmt: skip
            _, last_value = net.apply(params, obs)

            def _gae(carry, t):
                gae, next_value = carry
                delta = t.reward + config["gamma"] * next_value * (1 - t.done) - t.value
                gae = delta + config["gamma"] * config["lam"] * (1 - t.done) * gae
                return (gae, t.value), gae

            _, advantage = jax.lax.scan(_gae, (jnp.zeros_like(last_value), last_value), traj,
                                        reverse=True)  # fmt: skip
            data = {"obs": traj.obs, "action": traj.action, "logprob": traj.logprob,
                    "advantage": advantage, "return": advantage + traj.value}  # fmt: skip
            data = jax.tree.map(lambda x: x.reshape(n_envs * n_steps, *x.shape[2:]), data)

            def _update_epoch(carry, _):
                params, opt_state, key = carry
                key, key_perm = jax.random.split(key)
                perm = jax.random.permutation(key_perm, n_envs * n_steps)
                shuffled = jax.tree.map(
                    lambda x: x[perm].reshape(-1, minibatch, *x.shape[1:]), data
                )

                def _minibatch(carry, t):
                    params, opt_state = carry
                    loss, grads = jax.value_and_grad(batch_loss)(params, t)
                    updates, opt_state = optimizer.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), loss

                (params, opt_state), loss = jax.lax.scan(_minibatch, (params, opt_state), shuffled)
                return (params, opt_state, key), loss

            (params, opt_state, key), loss = jax.lax.scan(
                _update_epoch, (params, opt_state, key), None, config["epochs"])  # fmt: skip
            sample = jax.tree.map(lambda x: x[:k], data)  # the probe's k rollout samples
            metrics = probe.on_schedule(update, config["probe_every"], params, opt_state, sample)
            metrics["charts/episode_done_reward"] = traj.reward.sum() / jnp.maximum(
                traj.done.sum(), 1
            )
            metrics["losses/loss"] = loss.mean()
            return (params, opt_state, env_state, obs, key), metrics

        carry = (params, opt_state, env_state, obs, key)
        _, metrics = jax.lax.scan(_update_step, carry, jnp.arange(1, config["updates"] + 1))
        return metrics

    return train


def main(argv=None) -> dict[str, np.ndarray]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--probe-every", type=int, default=10)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--k", type=int, default=32, help="samples per probe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = {"updates": args.updates, "probe_every": args.probe_every, "num_envs": args.num_envs,
              "num_steps": args.num_steps, "probe_k": args.k, "num_minibatches": 4, "epochs": 4,
              "lr": 2.5e-4, "clip": 0.2, "gamma": 0.99, "lam": 0.95}  # fmt: skip
    metrics = jax.device_get(jax.jit(make_train(config))(jax.random.PRNGKey(args.seed)))
    rank = metrics["interference/update_rank"]
    for i in np.flatnonzero(np.isfinite(rank)):
        print(f"update {i + 1:>4}  return/episode {metrics['charts/episode_done_reward'][i]:6.1f}  "
              f"update rank {rank[i]:.0f}  dormant {metrics['dynamics/dormant_0.025'][i]:.3f}  "
              f"churn {metrics['dynamics/churn'][i]:.4f}")  # fmt: skip
    return metrics


if __name__ == "__main__":
    main()
