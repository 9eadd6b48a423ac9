"""MinAtar (Young & Tian 2019) through gymnax's JAX re-implementation: `minatar/<game>`.

Observations are 0/1 planes [10, 10, channels] in float32 (gymnax casts its bool planes); actions are gymnax's minimal action set for the
game (breakout 3, asterix 5, freeway 3, space_invaders 4). gymnax's MinAtar has no sticky
actions and truncates episodes at ``max_steps_in_episode`` (gymnax's default: 1000); pass the
value a preset cites to change it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tdgen.envs.spec import EnvSpec
from tdgen.errors import InputError

MINATAR_GAMES: dict[str, str] = {
    "asterix": "Asterix-MinAtar",
    "breakout": "Breakout-MinAtar",
    "freeway": "Freeway-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
}


def make_minatar(game: str, max_steps_in_episode: int | None = None) -> EnvSpec:
    """EnvSpec for a MinAtar game; ``max_steps_in_episode`` overrides gymnax's time limit."""
    import gymnax  # imported here so `tdgen.envs` loads without it

    env, params = gymnax.make(MINATAR_GAMES[game])
    if max_steps_in_episode is not None:
        if max_steps_in_episode < 1:
            raise InputError(f"max_steps_in_episode must be positive, got {max_steps_in_episode}")
        params = params.replace(max_steps_in_episode=max_steps_in_episode)
    obs_struct = jax.eval_shape(lambda key: env.reset(key, params)[0], jax.random.key(0))

    def reset(key: jax.Array) -> tuple[jax.Array, Any]:
        return env.reset(key, params)

    def step(key: jax.Array, state: Any, action: jax.Array):
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        done = jnp.logical_or(terminated, truncated)
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": info["final_observation"],
        }
        return obs, state, reward.astype(jnp.float32), done, info

    return EnvSpec(
        name=f"minatar/{game}",
        observation_shape=tuple(obs_struct.shape),
        observation_dtype=obs_struct.dtype,
        num_actions=int(env.num_actions),
        reset=reset,
        step=step,
        max_episode_steps=int(params.max_steps_in_episode),
    )
