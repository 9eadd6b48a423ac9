"""Returns of a policy in a jittable environment: the performance axis of Figures 5, 6 and 11.

`episode_returns` runs ``num_envs`` environments for ``steps`` steps under a policy and averages
the game's returns of the episodes that finish; `epsilon_greedy` and `sampled` turn a network's
outputs into such a policy (Section 6.1: epsilon-greedy with epsilon 0.01; actor-critic agents
and their students: actions sampled from the softmax).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from tdgen.envs import EnvSpec

Policy = Callable[[jax.Array, jax.Array], jax.Array]  # (obs [n, ...], key) -> actions [n]


def epsilon_greedy(values_fn: Callable[[jax.Array], jax.Array], epsilon: float) -> Policy:
    """Greedy on ``values_fn(obs) [n, A]`` with probability 1 - epsilon, else uniform."""

    def policy(obs, key):
        values = values_fn(obs)
        key_explore, key_random = jax.random.split(key)
        greedy = jnp.argmax(values, axis=-1)
        random = jax.random.randint(key_random, greedy.shape, 0, values.shape[-1])
        explore = jax.random.uniform(key_explore, greedy.shape) < epsilon
        return jnp.where(explore, random, greedy).astype(jnp.int32)

    return policy


def sampled(logits_fn: Callable[[jax.Array], jax.Array]) -> Policy:
    """Actions drawn from softmax(``logits_fn(obs)``)."""

    def policy(obs, key):
        return jax.random.categorical(key, logits_fn(obs)).astype(jnp.int32)

    return policy


def episode_returns(
    policy: Policy, env: EnvSpec, key: jax.Array, num_envs: int, steps: int
) -> jax.Array:
    """Mean game return of the episodes that finish in ``steps`` steps of ``num_envs``
    environments (nan if none finishes). Pure: jit it with the policy closed over."""
    key, key_reset = jax.random.split(key)
    obs, env_state = env.reset_batch(key_reset, num_envs)

    def step(carry, key):
        obs, env_state, total, count = carry
        key_act, key_env = jax.random.split(key)
        action = policy(obs, key_act)
        obs, env_state, _, done, info = env.step_batch(key_env, env_state, action)
        total = total + jnp.sum(jnp.where(done, info["episode_return"], 0.0))
        return (obs, env_state, total, count + jnp.sum(done)), None

    init = (obs, env_state, jnp.float32(0.0), jnp.int32(0))
    (_, _, total, count), _ = jax.lax.scan(step, init, jax.random.split(key, steps))
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


__all__ = ["Policy", "episode_returns", "epsilon_greedy", "sampled"]
