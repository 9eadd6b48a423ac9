"""Returns of a policy in a jittable environment: the performance axis of Figures 5, 6 and 11.

`episode_returns` runs ``num_envs`` environments for ``steps`` steps under a policy and averages
the game's returns of the episodes that finish; `host_episode_returns` does the same in a pool of
host-stepped (envpool) environments, one jitted `host_actor` call a step. `epsilon_greedy` and
`sampled` turn a network's outputs into such a policy (Section 6.1: epsilon-greedy with epsilon
0.01; actor-critic agents and their students: actions sampled from the softmax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.envs import EnvSpec

Policy = Callable[[jax.Array, jax.Array], jax.Array]  # (obs [n, ...], key) -> actions [n]
HostActor = Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]  # (obs, key) -> (actions, key)


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


def host_actor(policy_of: Callable[[Any], Policy]) -> Callable:
    """``act(params, obs, key) -> (actions, next key)``, jitted: ``policy_of(params)`` on a host
    batch of observations with a fresh subkey (split as the actor-critic host loop splits it), so
    a host loop makes one device call a step. Bind params with `functools.partial`."""

    @jax.jit
    def act(params, obs, key):
        key, key_act = jax.random.split(key)
        return policy_of(params)(obs, key_act), key

    return act


def host_episode_returns(
    act: HostActor, spec: Any, key: jax.Array, num_envs: int, steps: int, seed: int
) -> float:
    """Mean game return of the episodes that finish in ``steps`` steps of ``num_envs`` host-stepped
    environments (``spec.vector(num_envs, seed)``, e.g. envpool ProcGen) under ``act(obs, key) ->
    (actions, key)`` from ``key`` (nan if none finishes). Deterministic given (seed, key)."""
    env = spec.vector(num_envs, seed)
    try:
        obs = env.reset()
        total, count = 0.0, 0
        for _ in range(steps):
            action, key = act(obs, key)
            obs, _, terminated, truncated, info = env.step(np.asarray(action))
            done = terminated | truncated
            total += float(np.sum(info["episode_return"][done]))
            count += int(np.sum(done))
    finally:
        env.close()
    return total / count if count else float("nan")


__all__ = ["HostActor", "Policy", "episode_returns", "epsilon_greedy", "host_actor",
           "host_episode_returns", "sampled"]  # fmt: skip
