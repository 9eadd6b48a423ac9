"""ProcGen-like levels for jittable environments, and the train/test split of level ranges.

A *level* is an integer seed that fixes the whole random stream of an episode (Cobbe et al.
2020): the episode is a deterministic function of its level and the actions taken. `with_levels`
gives any `EnvSpec` levels: the inner reset gets ``fold_in(ROOT, level)`` and step ``t`` of the
episode gets ``fold_in(fold_in(ROOT, level), t + 1)``, whatever key the caller passes; the key
passed to ``step`` only draws the level of the next episode.

A level fixes only the randomness the game has: in gymnax's MinAtar, breakout draws one bit at
reset (the ball starts left or right), so its levels give two distinct episodes per action
sequence; space_invaders draws nothing, so all its levels are the same; asterix and freeway draw
throughout the episode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from tdgen.envs.spec import EnvSpec, with_step
from tdgen.errors import InputError

ROOT_SEED = 0x1E7E15
"""Seed of the ROOT key every level's key is folded from (a key is built inside the functions, so
importing this module does not start JAX)."""
FULL_DISTRIBUTION = 2**31 - 1
"""Levels of the full distribution are drawn from [0, FULL_DISTRIBUTION), as ProcGen's seeds."""


def held_out_levels(num_levels: int, start_level: int, test_num_levels: int) -> tuple[int, int]:
    """(test_start_level, test_num_levels) of the held-out levels for training levels
    [start_level, start_level + num_levels).

    test_num_levels 0 is the full distribution (returned as (0, 0)), the convention of Cobbe et
    al. 2020 and the paper: it overlaps a finite training set with negligible probability.
    test_num_levels > 0 is the disjoint range right after the training levels; it needs a finite
    training set (num_levels > 0).
    """
    for name, value in (
        ("num_levels", num_levels),
        ("start_level", start_level),
        ("test_num_levels", test_num_levels),
    ):
        if value < 0:
            raise InputError(f"{name} must be >= 0, got {value}")
    if test_num_levels == 0:
        return 0, 0
    if num_levels == 0:
        raise InputError(
            "test_num_levels > 0 needs num_levels > 0: training on the full distribution leaves "
            "no disjoint test levels (use test_num_levels=0)"
        )
    test_start = start_level + num_levels
    _check_range(test_start, test_num_levels, "test levels")
    return test_start, test_num_levels


def level_suffix(num_levels: int, start_level: int) -> str:
    """The name suffix of a level range: ``+levels10@0``, or ``+all_levels`` for num_levels 0."""
    return "+all_levels" if num_levels == 0 else f"+levels{num_levels}@{start_level}"


def level_key(level: jax.Array) -> jax.Array:
    """The key of a level, ``fold_in(ROOT, level)``: the inner reset's key."""
    return jax.random.fold_in(jax.random.key(ROOT_SEED), level)


def draw_level(key: jax.Array, num_levels: int, start_level: int) -> jax.Array:
    """A level (int32 scalar): uniform on [start_level, start_level + num_levels), or on
    [0, FULL_DISTRIBUTION) when num_levels is 0."""
    if num_levels == 0:
        return jax.random.randint(key, (), 0, FULL_DISTRIBUTION, dtype=jnp.int32)
    return start_level + jax.random.randint(key, (), 0, num_levels, dtype=jnp.int32)


class LevelState(NamedTuple):
    """Inner environment state, the episode's level and the steps taken in the episode."""

    env_state: Any
    level: jax.Array
    t: jax.Array


def with_levels(spec: EnvSpec, num_levels: int, start_level: int = 0) -> EnvSpec:
    """``spec`` with levels [start_level, start_level + num_levels) (0: the full distribution);
    name suffixed ``+levels<num_levels>@<start_level>`` (or ``+all_levels``).

    Auto-reset: when an episode ends, the next one is ``reset(key)`` with the key passed to
    ``step`` (the inner spec's own reset is discarded). ``info["level"]`` is the level of the
    transition just taken; ``final_observation``, ``terminated`` and ``truncated`` are the inner
    spec's.
    """
    for name, value in (("num_levels", num_levels), ("start_level", start_level)):
        if value < 0:
            raise InputError(f"{name} must be >= 0, got {value}")
    _check_range(start_level, num_levels, "levels")

    def reset(key):
        level = draw_level(key, num_levels, start_level)
        obs, env_state = spec.reset(level_key(level))
        return obs, LevelState(env_state, level, jnp.int32(0))

    def step(key, state, action):
        step_key = jax.random.fold_in(level_key(state.level), state.t + 1)
        obs, env_state, reward, done, info = spec.step(step_key, state.env_state, action)
        reset_obs, reset_state = reset(key)
        obs = jnp.where(done, reset_obs, obs)
        next_state = LevelState(env_state, state.level, state.t + 1)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        return obs, next_state, reward, done, {**info, "level": state.level}

    return with_step(spec, step, reset=reset, suffix=level_suffix(num_levels, start_level))


def _check_range(start: int, count: int, what: str) -> None:
    if start + count > FULL_DISTRIBUTION:
        raise InputError(
            f"{what} [{start}, {start + count}) exceed the int32 level seeds: keep start + count "
            f"<= {FULL_DISTRIBUTION}"
        )
