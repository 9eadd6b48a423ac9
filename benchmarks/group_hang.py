"""A minimal fully-jitted PPO on gymnax MinAtar, to reproduce (or not) XLA CPU hangs under vmap.

Written from scratch in the PureJaxRL style: ``make_train(config)`` returns ``train(key)`` that
does a ``lax.scan`` over PPO iterations; each iteration is a ``lax.scan`` rollout of vectorised
gymnax steps, GAE by a reverse scan, and a ``lax.scan`` of epochs x minibatches with optax Adam.

    python benchmarks/group_hang.py --seeds 2 --updates 10 --mode vmap
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python benchmarks/group_hang.py --seeds 4

``--mode vmap`` runs ``jax.jit(jax.vmap(train))(keys)``; ``--mode loop`` runs ``jax.jit(train)``
once per seed. ``--segments S`` splits the updates into S jitted calls of updates/S iterations
(the runner state and metrics go through the host in between, like a host event loop).
``--no-async`` sets ``jax_cpu_enable_async_dispatch`` to False. Prints phases with timestamps,
the wall time, frames/s and FINISHED at the end, so a hang is visible from outside.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--updates", type=int, default=10, help="PPO iterations per seed")
    p.add_argument("--mode", choices=["vmap", "loop"], default="vmap")
    p.add_argument("--segments", type=int, default=1, help="jitted calls the updates split into")
    p.add_argument("--no-async", action="store_true", help="jax_cpu_enable_async_dispatch=False")
    p.add_argument("--callback", choices=["none", "update", "step"], default="none",
                   help="jax.debug.callback to the host once per update or per env step "
                        "(PureJaxRL's DEBUG logging)")  # fmt: skip
    p.add_argument("--shard", action="store_true",
                   help="shard the seed axis over jax.devices() (with "
                        "--xla_force_host_platform_device_count)")  # fmt: skip
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


ARGS = parse()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

if ARGS.no_async:
    jax.config.update("jax_cpu_enable_async_dispatch", False)

import flax.linen as nn  # noqa: E402
import gymnax  # noqa: E402
import optax  # noqa: E402


class ActorCritic(nn.Module):
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


HOST_CALLS = [0]


def _host_log(reward, episodes):
    """A host callback like PureJaxRL's DEBUG print: count the calls, print a few."""
    HOST_CALLS[0] += 1
    if HOST_CALLS[0] % 1000 == 1:
        log(
            f"host callback {HOST_CALLS[0]}: reward {float(reward):.3f} episodes {float(episodes):.0f}"
        )


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
            if cfg.callback == "step":
                jax.debug.callback(_host_log, rew.sum(), done.sum())
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
        if cfg.callback == "update":
            jax.debug.callback(_host_log, metrics["reward_per_step"], metrics["episodes"])
        return (params, opt_state, env_state, obs, key), metrics

    def run(state, n: int):
        return jax.lax.scan(update, state, None, n)

    def train(key):
        return run(init(key), cfg.updates)

    return init, run, train


def main() -> None:
    cfg = ARGS
    log(f"jax {jax.__version__} devices={jax.devices()} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
        f" async={jax.config.values['jax_cpu_enable_async_dispatch']} pid={os.getpid()}")  # fmt: skip
    log(f"seeds={cfg.seeds} updates={cfg.updates} mode={cfg.mode} segments={cfg.segments} "
        f"envs={cfg.num_envs}x{cfg.num_steps} epochs={cfg.epochs}x{cfg.minibatches}")  # fmt: skip
    if cfg.updates % cfg.segments:
        sys.exit("--updates must be a multiple of --segments")
    init, run, train = make_train(cfg)
    frames = cfg.seeds * cfg.updates * cfg.num_envs * cfg.num_steps
    keys = jax.random.split(jax.random.PRNGKey(0), cfg.seeds)
    if cfg.shard:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(jax.devices(), ("seed",))
        keys = jax.device_put(keys, NamedSharding(mesh, PartitionSpec("seed")))
        log(f"keys sharded over {len(jax.devices())} devices")

    t_start = time.perf_counter()
    if cfg.segments == 1:
        if cfg.mode == "vmap":
            fn = jax.jit(jax.vmap(train)).lower(keys).compile()
            log(f"compiled in {time.perf_counter() - t_start:.1f}s; running")
            t_run = time.perf_counter()
            _, metrics = jax.block_until_ready(fn(keys))
        else:
            fn = jax.jit(train).lower(keys[0]).compile()
            log(f"compiled in {time.perf_counter() - t_start:.1f}s; running")
            t_run = time.perf_counter()
            outs = []
            for i in range(cfg.seeds):
                outs.append(jax.block_until_ready(fn(keys[i]))[1])
                log(f"seed {i} done")
            metrics = jax.tree.map(lambda *x: jnp.stack(x), *outs)
    else:
        n = cfg.updates // cfg.segments
        wrap = jax.vmap if cfg.mode == "vmap" else (lambda f: f)
        f_init = jax.jit(wrap(init))
        f_run = jax.jit(wrap(lambda s: run(s, n)))
        states = [f_init(keys)] if cfg.mode == "vmap" else [f_init(k) for k in keys]
        f_run = f_run.lower(states[0]).compile()
        log(f"compiled in {time.perf_counter() - t_start:.1f}s; running")
        t_run = time.perf_counter()
        chunks = []
        for seg in range(cfg.segments):
            step = [f_run(s) for s in states]
            states = [s for s, _ in step]
            host = jax.device_get([m for _, m in step])  # a host event between segments
            chunks.append(host)
            log(f"segment {seg + 1}/{cfg.segments} done")
        metrics = {k: [c[i][k] for c in chunks for i in range(len(c))] for k in chunks[0][0]}
    wall = time.perf_counter() - t_run
    rps = jax.device_get(metrics["reward_per_step"])
    log(f"FINISHED run {wall:.1f}s (total {time.perf_counter() - t_start:.1f}s), "
        f"{frames / wall:,.0f} frames/s, {frames} frames, {HOST_CALLS[0]} host callbacks; "
        f"last reward/step {jnp.asarray(rps).reshape(-1)[-1]:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
