"""A frozen teacher loaded from a run directory: its outputs, its data, its environments.

Value teachers (dqn, c51) bring their replay buffer (the data of Section 6.1, Ostrovski et al.
2021) and provide action values (C51: the expected return); actor-critic teachers (ppo, daac) provide
policy logits and collect their data by acting (Section 6.2). On gymnax (MinAtar) both can act in
their training environment to collect more data while a student trains (Appendix B.3).

Teachers are found through the agent registry (`AGENTS[run.kind].family`): what a family produces
and whether its environment is host-stepped decide what it can teach. Host-stepped actor-critic
teachers (ProcGen through envpool) collect their buffer on the host (`tdgen.distill.host_buffer`);
host-stepped value teachers (Atari) bring their frame-once host replay
(`tdgen.agents.value_based.frame_replay.HostReplay`), which students sample on the host
(`tdgen.distill.host_replay`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from tdgen.agents.registry import AGENTS
from tdgen.errors import InputError, InsufficientMemoryError
from tdgen.evaluate import epsilon_greedy, sampled
from tdgen.interference.keys import read_update_rank
from tdgen.runs import RunDir, dropped_fields, find_checkpoint
from tdgen.runs.checkpoint import REPLAY
from tdgen.runs.metrics import read_metrics


def network_input(obs: jax.Array, dtype) -> jax.Array:
    """Stored observations (uint8 buffers) cast to the environment's dtype; floating inputs kept
    as they are: they are already in the network's units (`tdgen.evaluate.robustness`: noisy
    pixels in [0, 1] must not be cast back to uint8)."""
    if jnp.issubdtype(obs.dtype, jnp.floating):
        return obs.astype(jnp.promote_types(obs.dtype, dtype))
    return obs.astype(dtype)


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A trained agent, frozen.

    produces: "q" (action values) or "logits" (a policy); replay: the value teacher's buffer at
    the checkpoint (a device `Replay` on gymnax, a host `HostReplay` on Atari; None for
    actor-critic teachers); env/test_env: training and held-out levels
    (the same environment when the teacher has no level split); update_rank: the teacher's last
    logged update rank (its critic's for actor-critic agents), or None; host_stepped: its
    environments are stepped on the host (envpool), so its data are collected there;
    replay_dropped: the value teacher's run finished without keeping its replay (its ``replay``
    is then the empty template, and it cannot be distilled from).
    """

    kind: str
    config: Any
    params: Any
    agent: Any
    produces: str
    env: Any
    test_env: Any
    replay: Any
    frames: int
    update_rank: float | None
    host_stepped: bool = False
    replay_dropped: bool = False

    def outputs(self, params, obs: jax.Array) -> jax.Array:
        """Q-values [n, A] (value teachers) or policy logits [n, A] (actor-critic teachers);
        observations as `network_input`."""
        obs = network_input(obs, self.env.observation_dtype)
        if self.produces == "q":
            raw = self.agent.apply(params, obs)
            return self.agent.algorithm.greedy_values(raw)
        return self.agent.algorithm.policy_value(params, obs)[0]

    def act(self, params, obs: jax.Array, key: jax.Array, epsilon: float) -> jax.Array:
        """epsilon-greedy on the teacher's values, or a sample from its policy."""
        values = functools.partial(self.outputs, params)
        policy = sampled(values) if self.produces == "logits" else epsilon_greedy(values, epsilon)
        return policy(obs, key)

    @property
    def encoder_kwargs(self) -> dict[str, Any]:
        """The teacher's encoder settings, for a student of the same architecture."""
        c = self.config
        kwargs: dict[str, Any] = {}
        if c.encoder == "mlp":
            kwargs["obs_ndim"] = len(self.env.observation_shape)
        else:
            kwargs["conv_impl"] = c.conv_impl
        if hasattr(c, "hidden_size"):
            if c.encoder == "mlp":
                kwargs["hidden_sizes"] = (c.hidden_size, c.hidden_size)
            else:
                kwargs["hidden_size"] = c.hidden_size
        return kwargs


def load_teacher(run_dir: Path, frames: int = 0) -> Teacher:
    """The teacher of the run in ``run_dir`` at its checkpoint of ``frames`` (0: the newest).

    A run without a complete checkpoint, or a missing one, is a CheckpointError naming what exists.
    Every agent tdgen trains can teach: gymnax (MinAtar) runs, Atari value runs (their host
    replay) and ProcGen actor-critic runs.
    """
    run = RunDir.open(Path(run_dir))
    if run.kind not in AGENTS:
        raise InputError(f"{run.path} is a {run.kind!r} run, not an agent that can teach")
    spec = AGENTS[run.kind]
    config = run.load_config(spec.config_cls)
    try:  # an Atari agent refuses a replay that cannot fit in memory before anything allocates
        agent = spec.build(config)
    except InsufficientMemoryError as error:
        raise InsufficientMemoryError(f"teacher {run.path}: {error}") from None
    host_stepped = spec.family.is_host_stepped(agent)
    path = find_checkpoint(run.checkpoints, frames)
    frames, state = spec.family.load_run_state(agent, run, path)
    rows = read_metrics(run.path)
    center = config.probe_center  # the teacher's ranks, of the centring it was probed with
    if spec.family.produces == "q":
        ranks = [r for r in (read_update_rank(row, center) for row in rows) if r is not None]
        learner = state.learner if host_stepped else state  # HostTrainState
        params = agent.effective_params(learner.params, learner.memory)  # plasticity injection
        return Teacher(run.kind, config, params, agent, "q", agent.env, agent.env,
                       state.replay, frames, ranks[-1] if ranks else None, host_stepped,
                       REPLAY in dropped_fields(path))  # fmt: skip
    ranks = [r for r in (read_update_rank(row, center, "critic") for row in rows) if r is not None]
    params = agent.algorithm.effective_params(state.params, state.memory)  # injection folded in
    return Teacher(run.kind, config, params, agent, "logits", agent.env, agent.test_env,
                   None, frames, ranks[-1] if ranks else None, host_stepped)  # fmt: skip


__all__ = ["Teacher", "load_teacher", "network_input"]
