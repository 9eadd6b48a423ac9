"""Wrappers over `EnvSpec`: the paper's no-reward control and episode statistics.

Reward wrappers never change the environment's dynamics: for the same key a wrapped and an
unwrapped environment visit the same states, so a zero-reward run differs from a dense one only
in its rewards (the control of Figure 3, Section 5.1).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tdgen import streams
from tdgen.envs.spec import EnvSpec, with_step
from tdgen.errors import InputError


def zero_rewards(spec: EnvSpec) -> EnvSpec:
    """Every reward replaced by 0 (the no-reward control); name suffixed ``+zero_reward``."""

    def step(key, state, action):
        obs, state, reward, done, info = spec.step(key, state, action)
        return obs, state, jnp.zeros_like(reward), done, info

    return with_step(spec, step, suffix="+zero_reward")


def sparsify_rewards(spec: EnvSpec, keep_prob: float) -> EnvSpec:
    """Each reward kept with probability ``keep_prob``, else zeroed; name suffixed ``+sparse<p>``.

    The Bernoulli mask is drawn from ``fold_in(key, 1)`` and the environment gets ``key``
    itself, so the dynamics are exactly those of the unwrapped environment.
    """
    if not 0.0 <= keep_prob <= 1.0:
        raise InputError(f"keep_prob must be in [0, 1], got {keep_prob}")

    def step(key, state, action):
        obs, state, reward, done, info = spec.step(key, state, action)
        keep = jax.random.bernoulli(jax.random.fold_in(key, 1), keep_prob, jnp.shape(reward))
        return obs, state, jnp.where(keep, reward, jnp.zeros_like(reward)), done, info

    return with_step(spec, step, suffix=f"+sparse{keep_prob:g}")


def host_reward_mode(
    score: np.ndarray, mode: str, keep_prob: float, seed: int, step: int
) -> np.ndarray:
    """The reward modes for host-stepped (envpool) games: the reward [n] float32 the agent sees.

    "dense": the score; "zero": 0; "sparse": each reward kept with probability ``keep_prob``,
    from a counter-based draw that depends only on (seed, step).
    """
    if mode == "zero":
        return np.zeros_like(score)
    if mode == "sparse":
        rng = np.random.default_rng([seed, streams.SPARSE, step])
        return np.where(rng.random(score.shape) < keep_prob, score, 0.0).astype(np.float32)
    return score


class EpisodeStatisticsState(NamedTuple):
    """Inner environment state plus the running return and length of the current episode."""

    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


def record_episode_statistics(spec: EnvSpec) -> EnvSpec:
    """Adds ``info["episode_return"]`` and ``info["episode_length"]``, valid where ``done``.

    The return counts the rewards the agent sees (after any reward wrapper applied before this
    one); apply this wrapper first to log the game's own score instead.
    """

    def reset(key):
        obs, env_state = spec.reset(key)
        return obs, EpisodeStatisticsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(key, state, action):
        obs, env_state, reward, done, info = spec.step(key, state.env_state, action)
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        info = {**info, "episode_return": episode_return, "episode_length": episode_length}
        new_state = EpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, episode_return).astype(jnp.float32),
            jnp.where(done, 0, episode_length).astype(jnp.int32),
        )
        return obs, new_state, reward, done, info

    return with_step(spec, step, reset=reset)
