"""Host-stepped teachers (envpool ProcGen): their data collected on the host, students evaluated there.

A teacher whose environment is stepped on the host cannot act inside the student's jitted program,
so its data are collected once, before distillation (Section 6.2: "transitions collected by the
teacher and stored in a buffer"): ``buffer_size`` transitions of the teacher's policy (sampled for
actor-critic teachers) on its training levels, in ``num_envs`` pool environments, one vectorised
step a row, in the layout of the gymnax buffer (`replay_lib.Replay`: uint8 observations
[rows, num_envs, 64, 64, 3]; an episode's final observation as next_obs; terminated, not
truncated, as no-bootstrap). The jitted student update and its probes read it unchanged, and it is
part of the student's checkpoint, so a resumed student updates bit for bit as an uninterrupted one.

Pools are seeded from (seed, position, stream) (`env_seed`): the buffer's from (seed, 0), each
evaluation's from (seed, updates), so evaluations are a function of the run and its position.

Nothing here is ProcGen's: any spec with ``vector(num_envs, seed)`` (a pool with the
`tdgen.envs.spec` step contract) and any teacher with ``act`` fit (Atari policies' visited states,
`tdgen.policies`). Atari value teachers bring their own frame-once replay instead
(`tdgen.distill.host_replay`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tdgen import streams
from tdgen.agents.actor_critic.host import env_seed
from tdgen.agents.value_based import replay as replay_lib
from tdgen.evaluate.returns import HostActor, host_actor


def host_transitions(
    act: HostActor, env, obs: np.ndarray, key: jax.Array, steps: int
) -> tuple[dict[str, np.ndarray], np.ndarray, jax.Array]:
    """``steps`` vectorised steps of ``act(obs, key) -> (actions, key)`` in the pool ``env`` from
    ``obs``: (transitions [steps, num_envs, ...] under the buffer's names, next obs, key)."""
    n = obs.shape[0]
    out = {
        "obs": np.empty((steps, *obs.shape), np.uint8),
        "action": np.empty((steps, n), np.int32),
        "reward": np.empty((steps, n), np.float32),
        "next_obs": np.empty((steps, *obs.shape), np.uint8),
        "terminated": np.empty((steps, n), np.bool_),
    }
    for t in range(steps):
        action, key = act(obs, key)
        out["obs"][t], out["action"][t] = obs, np.asarray(action)
        obs, reward, terminated, _, info = env.step(out["action"][t])
        out["reward"][t], out["terminated"][t] = reward, terminated
        # ProcGen auto-resets within the step (the final frame in info); Atari returns it here
        out["next_obs"][t] = info.get("final_observation", obs)
    return out, obs, key


def teacher_actor(teacher, epsilon: float) -> HostActor:
    """The teacher acting on host observations: a sample of its policy (actor-critic teachers) or
    epsilon-greedy on its values (value teachers), ``act(obs, key) -> (actions, key)``."""
    act = host_actor(lambda params: lambda obs, key: teacher.act(params, obs, key, epsilon))
    return lambda obs, key: act(teacher.params, obs, key)


def host_buffer(
    teacher, size: int, num_envs: int, seed: int, key: jax.Array, epsilon: float
) -> replay_lib.Replay:
    """A full buffer of ``size`` transitions (a multiple of ``num_envs``) of the teacher acting on
    its training levels in a pool seeded from (seed, 0): what `replay_lib.add` would hold after
    size / num_envs rows."""
    env = teacher.env.vector(num_envs, env_seed(seed, 0, streams.ENV))
    try:
        data, _, _ = host_transitions(teacher_actor(teacher, epsilon), env, env.reset(), key,
                                      size // num_envs)  # fmt: skip
    finally:
        env.close()
    return replay_lib.Replay(**{k: jnp.asarray(v) for k, v in data.items()},
                             position=jnp.int32(0), filled=jnp.int32(size // num_envs))  # fmt: skip


__all__ = ["env_seed", "host_buffer", "host_transitions", "teacher_actor"]
