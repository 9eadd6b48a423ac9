"""Run any agent by name: `train(agent, config, out)` and `resume(run_dir)`.

dqn and c51 run here (jitted segments on gymnax, `tdgen.agents.host_loop` on envpool Atari); ppo
and daac in `tdgen.agents.actor_critic_launch`. Every loop shares the host event loop of
`tdgen.agents.events` (log line, evaluations and probes, checkpoint, in that order), so a resumed
gymnax run replays exactly what an uninterrupted one does next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from tdgen.agents import c51, dqn
from tdgen.agents.actor_critic_config import DAACConfig, PPOConfig
from tdgen.agents.actor_critic_launch import resume_actor_critic, train_actor_critic
from tdgen.agents.config import ValueBasedConfig, epsilon_at
from tdgen.agents.events import probe_event, run_segments
from tdgen.agents.probes import ProbeResult, make_probe
from tdgen.agents.value_based import Agent, Algorithm, TrainState, reset_accumulators
from tdgen.runs import (
    CheckpointError,
    MetricsLogger,
    RunDir,
    latest_checkpoint,
    load_checkpoint,
)
from tdgen.runs.checkpoint import complete_checkpoints


@dataclasses.dataclass(frozen=True)
class AgentType:
    """A named agent: its config class and how a config becomes an `Algorithm`."""

    config_cls: type[ValueBasedConfig]
    algorithm: Callable[[Any], Algorithm]


AGENTS: dict[str, AgentType] = {
    "dqn": AgentType(dqn.DQNConfig, dqn.algorithm),
    "c51": AgentType(c51.C51Config, c51.algorithm),
}


ACTOR_CRITIC_AGENTS: dict[str, type[PPOConfig]] = {"ppo": PPOConfig, "daac": DAACConfig}


def agent_type(name: str) -> AgentType:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}: choose one of {', '.join(AGENTS)}")
    return AGENTS[name]


def build_agent(name: str, config: ValueBasedConfig) -> Agent:
    """The `Agent` of ``name`` ("dqn" or "c51") for ``config`` (of the matching config class)."""
    kind = agent_type(name)
    if type(config) is not kind.config_cls:
        raise ValueError(
            f"agent {name!r} needs a {kind.config_cls.__name__}, got {type(config).__name__}"
        )
    return Agent.build(config, kind.algorithm(config))


def config_class(agent: str) -> type:
    """The config class of ``agent`` (dqn, c51, ppo or daac)."""
    if agent in ACTOR_CRITIC_AGENTS:
        return ACTOR_CRITIC_AGENTS[agent]
    if agent not in AGENTS:
        names = ", ".join([*AGENTS, *ACTOR_CRITIC_AGENTS])
        raise ValueError(f"unknown agent {agent!r}: choose one of {names}")
    return AGENTS[agent].config_cls


def train(agent: str, config: Any, out: Path, progress: bool = True) -> Path:
    """Train ``agent`` with ``config`` into a new run directory ``out``; returns its path.

    Refuses an existing run (continue it with `resume`). A diverging run (non-finite loss) stops
    cleanly with `charts/diverged` = 1 in its last metrics line; it is a result, not an error.
    """
    if agent in ACTOR_CRITIC_AGENTS:
        if type(config) is not ACTOR_CRITIC_AGENTS[agent]:
            raise ValueError(
                f"agent {agent!r} needs a {ACTOR_CRITIC_AGENTS[agent].__name__}, "
                f"got {type(config).__name__}"
            )
        return train_actor_critic(config, out, progress)
    built = build_agent(agent, config)  # unknown environments fail before anything is written
    run = RunDir.create(Path(out), agent, config.to_dict())
    if config.env.startswith("atari/"):  # envpool on the host: tdgen.agents.host_loop
        from tdgen.agents.host_loop import train_host

        return train_host(built, run, progress)
    state = built.init()
    with MetricsLogger(run.path) as logger:
        return _run(built, run, state, logger, progress)


def resume(run_dir: Path, progress: bool = True) -> Path:
    """Continue the run in ``run_dir`` from its latest complete checkpoint (or from the start).

    A corrupt, foreign or mismatched checkpoint raises CheckpointError before anything is changed.
    """
    run = RunDir.open(Path(run_dir))
    if run.kind in ACTOR_CRITIC_AGENTS:
        return resume_actor_critic(
            run, ACTOR_CRITIC_AGENTS[run.kind].from_dict(run.config), progress
        )
    kind = agent_type(run.kind)
    config = kind.config_cls.from_dict(run.config)
    built = build_agent(run.kind, config)
    if config.env.startswith("atari/"):  # not bit-exact: see tdgen.agents.host_loop
        from tdgen.agents.host_loop import resume_host

        return resume_host(built, run, progress)
    state = built.init()
    frames = 0
    path = latest_checkpoint(run.checkpoints)
    if path is not None:
        frames, state = load_run_state(built, run, path)
    with MetricsLogger(run.path, resume_step=frames) as logger:
        return _run(built, run, state, logger, progress)


def load_run_state(built: Agent, run: RunDir, path: Path) -> tuple[int, TrainState]:
    """`(frames, state)` of the checkpoint at `path` of a MinAtar run, checked against its name."""
    frames, state = load_checkpoint(path, built.init(), kind=run.kind)
    if int(state.frames) != frames:
        raise CheckpointError(
            f"checkpoint {path} is named for frame {frames} but holds frame {int(state.frames)}"
        )
    return frames, state


def probe_checkpoint(run_dir: Path, frames: int | None = None) -> ProbeResult:
    """Recompute the update-rank probe of a MinAtar run from its checkpoint at ``frames``.

    The newest complete checkpoint when ``frames`` is None. The probe draws the same transitions
    the run's own probe drew at that frame (its key derives from the saved state).
    """
    run = RunDir.open(Path(run_dir))
    if run.kind not in AGENTS:
        raise ValueError(
            f"recomputing a probe from a checkpoint is implemented for dqn and c51 runs; this is "
            f"a {run.kind!r} run, whose probes are saved in {run.probes}"
        )
    config = agent_type(run.kind).config_cls.from_dict(run.config)
    if config.env.startswith("atari/"):
        raise ValueError("probing a checkpoint is implemented for minatar/ runs only")
    available = complete_checkpoints(run.checkpoints)
    if not available:
        raise CheckpointError(f"{run.path} has no complete checkpoint")
    if frames is None:
        frames = available[-1]
    if frames not in available:
        raise CheckpointError(
            f"{run.path} has no complete checkpoint at frame {frames}; it has {available}"
        )
    built = build_agent(run.kind, config)
    _, state = load_run_state(built, run, run.checkpoints / f"ckpt_{frames:012d}.msgpack")
    result = make_probe(built)(state)
    if result is None:
        raise ValueError(
            f"the replay at frame {frames} holds fewer than k={config.probe_k} transitions"
        )
    return result


def _run(agent: Agent, run: RunDir, state: TrainState, logger: MetricsLogger, progress: bool):
    config = agent.config
    events = []
    if config.probe_every:
        events.append(probe_event(config.probe_every, make_probe(agent), run.probes))
    return run_segments(
        config,
        agent.algorithm.kind,
        run,
        state,
        logger,
        progress,
        advance=agent.jit_segment(),
        diverged=lambda s: bool(s.diverged),
        log_values=_log_values,
        events=events,
    )


def _log_values(config: ValueBasedConfig, state: TrainState, frames: int, seconds: float):
    """The metrics line of the interval since the last one, and the state with accumulators reset."""
    host = jax.device_get(
        (state.return_sum, state.episodes, state.loss_sum, state.loss_count, state.diverged)
    )
    return_sum, episodes, loss_sum, loss_count, diverged = host
    values: dict[str, Any] = {"charts/epsilon": float(epsilon_at(config, state.frames))}
    if episodes > 0:
        values["charts/episodic_return"] = float(return_sum / episodes)
        values["charts/episodes"] = int(episodes)
    if loss_count > 0:
        values["losses/td_loss"] = float(loss_sum / loss_count)
    values["charts/updates"] = int(state.updates)
    if diverged:
        values["charts/diverged"] = 1
    values["charts/SPS"] = frames / seconds if seconds > 0 else 0.0
    return values, reset_accumulators(state)
