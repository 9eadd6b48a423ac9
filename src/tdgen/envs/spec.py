"""One functional environment interface: `EnvSpec` and its vmapped batch form.

An environment is a pair of pure functions over a single (unbatched) environment:

- ``reset(key) -> (obs, state)``
- ``step(key, state, action) -> (obs, state, reward, done, info)``

``step`` auto-resets: when ``done`` the returned ``obs``/``state`` already start the next episode,
while ``reward`` and ``done`` belong to the transition just taken. ``info`` always holds
``terminated`` (a true terminal: do not bootstrap), ``truncated`` (time limit: bootstrap) and
``final_observation`` (the observation the transition reached, before any reset), so a replay
buffer can store the right next observation. ``done = terminated | truncated``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

ResetFn = Callable[[jax.Array], tuple[jax.Array, Any]]
StepFn = Callable[
    [jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array, dict[str, Any]]
]


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A named environment: observation shape and dtype, action count, pure reset and step."""

    name: str
    observation_shape: tuple[int, ...]
    observation_dtype: Any
    num_actions: int
    reset: ResetFn
    step: StepFn
    max_episode_steps: int | None = None

    def reset_batch(self, key: jax.Array, num_envs: int) -> tuple[jax.Array, Any]:
        """Reset ``num_envs`` independent environments: obs [num_envs, *observation_shape]."""
        return jax.vmap(self.reset)(jax.random.split(key, num_envs))

    def step_batch(
        self, key: jax.Array, state: Any, action: jax.Array
    ) -> tuple[jax.Array, Any, jax.Array, jax.Array, dict[str, Any]]:
        """Step a batch of environments with actions [num_envs]; one key is split per env."""
        keys = jax.random.split(key, action.shape[0])
        return jax.vmap(self.step)(keys, state, action)


def with_step(
    spec: EnvSpec, step: StepFn, reset: ResetFn | None = None, suffix: str = ""
) -> EnvSpec:
    """A copy of ``spec`` with a new step (and optionally reset) function, its name suffixed."""
    return dataclasses.replace(
        spec, name=spec.name + suffix, step=step, reset=reset if reset is not None else spec.reset
    )


def random_actions(key: jax.Array, spec: EnvSpec, num_envs: int) -> jax.Array:
    """Uniform random actions [num_envs] (int32)."""
    return jax.random.randint(key, (num_envs,), 0, spec.num_actions, dtype=jnp.int32)
