"""Run a value-based agent: `train(agent, config, out)` and `resume(run_dir)`.

The host loop alternates jitted training segments (`Agent.jit_segment`) with the events that land
on segment boundaries, in a fixed order: log line, probe, checkpoint. A checkpoint is written after
the events of its frame, so resuming from it (metrics truncated after that frame) replays exactly
what an uninterrupted run does next. Wall-clock values (`charts/SPS`, `perf/*`) are the only
fields that differ between the two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from tdgen.agents import c51, dqn
from tdgen.agents.config import ValueBasedConfig, epsilon_at
from tdgen.agents.probes import ProbeResult, make_probe
from tdgen.agents.value_based import Agent, Algorithm, TrainState, reset_accumulators
from tdgen.runs import (
    CheckpointError,
    MetricsLogger,
    RunDir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from tdgen.runs.checkpoint import complete_checkpoints

# Fields that measure the machine, not the run: excluded when comparing runs for equality.
WALL_CLOCK_FIELDS = ("charts/SPS", "perf/probe_seconds", "perf/checkpoint_seconds")


@dataclasses.dataclass(frozen=True)
class AgentType:
    """A named agent: its config class and how a config becomes an `Algorithm`."""

    config_cls: type[ValueBasedConfig]
    algorithm: Callable[[Any], Algorithm]


AGENTS: dict[str, AgentType] = {
    "dqn": AgentType(dqn.DQNConfig, dqn.algorithm),
    "c51": AgentType(c51.C51Config, c51.algorithm),
}


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


def train(agent: str, config: ValueBasedConfig, out: Path, progress: bool = True) -> Path:
    """Train ``agent`` with ``config`` into a new run directory ``out``; returns its path.

    Refuses an existing run (continue it with `resume`). A diverging run (non-finite loss) stops
    cleanly with `charts/diverged` = 1 in its last metrics line; it is a result, not an error.
    """
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


def _progress_bar(enabled: bool, total: int, start: int):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} frames"),
        TextColumn("return {task.fields[ret]}"),
        TextColumn("{task.fields[sps]} SPS"),
        TimeRemainingColumn(),
    )
    bar.add_task("train", total=total, completed=start, ret="-", sps="-")
    return bar


def _run(agent: Agent, run: RunDir, state: TrainState, logger: MetricsLogger, progress: bool):
    segment = agent.jit_segment()
    return run_segments(
        agent,
        run,
        state,
        logger,
        progress,
        advance=segment,
        diverged=lambda s: bool(s.diverged),
        log_values=_log_values,
        probe=make_probe(agent) if agent.config.probe_every else None,
    )


def run_segments(
    agent: Agent,
    run: RunDir,
    state: Any,
    logger: MetricsLogger,
    progress: bool,
    *,
    advance: Callable[[Any], Any],
    diverged: Callable[[Any], bool],
    log_values: Callable[[ValueBasedConfig, Any, int, float], tuple[dict[str, Any], Any]],
    probe: Callable[[Any], ProbeResult | None] | None,
) -> Path:
    """The host side of every training loop: advance one segment, then the events on its boundary.

    `advance(state)` trains one segment (jitted scan on gymnax, host stepping on envpool); the
    events follow in a fixed order: a log line (`log_values` returns the line and the state with
    its accumulators reset), a probe, a checkpoint. Stops at `config.frames` or on divergence.
    """
    config = agent.config
    frames = int(state.frames)
    is_diverged = diverged(state)
    last_return = "-"
    with _progress_bar(progress, config.frames, frames) as bar:
        interval_start, train_seconds = frames, 0.0
        while frames < config.frames and not is_diverged:
            tick = time.perf_counter()
            state = advance(state)
            is_diverged = diverged(state)  # waits for the segment
            frames = int(state.frames)
            train_seconds += time.perf_counter() - tick
            last = frames >= config.frames
            values: dict[str, Any] = {}
            if frames % config.log_every == 0 or last or is_diverged:
                values, state = log_values(config, state, frames - interval_start, train_seconds)
                interval_start, train_seconds = frames, 0.0
                if "charts/episodic_return" in values:
                    last_return = f"{values['charts/episodic_return']:.2f}"
            if probe is not None and frames % config.probe_every == 0 and not is_diverged:
                tick = time.perf_counter()
                result = probe(state)
                if result is not None:
                    result.save(run.probes)
                    values.update(result.metrics())
                    values["perf/probe_seconds"] = time.perf_counter() - tick
            if values:
                logger.log(frames, values)
            checkpoint_due = config.checkpoint_every and frames % config.checkpoint_every == 0
            if checkpoint_due or last or is_diverged:
                save_checkpoint(
                    run.checkpoints,
                    frames,
                    state,
                    kind=agent.algorithm.kind,
                    keep=config.keep_checkpoints,
                )
            if bar is not None:
                sps = values.get("charts/SPS")
                bar.update(
                    bar.task_ids[0], completed=frames, ret=last_return,
                    sps="-" if sps is None else f"{sps:,.0f}",
                )  # fmt: skip
    return run.path


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
