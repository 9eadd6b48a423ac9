"""Run DQN, C51 or QR-DQN in run directories: one run, or a group of seeds as one vmapped program.

On gymnax (MinAtar) training advances in jitted segments and resumes bit for bit; on envpool
Atari the host loop (`tdgen.agents.value_based.host`) steps the emulators. Every loop shares the
host event loop of `tdgen.runs.loop` (log line, probes, checkpoint, in that order), so a resumed
gymnax run replays exactly what an uninterrupted one does next.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from tdgen.agents.probes import ProbeResult
from tdgen.agents.train import DEFAULT_LANES, group_start, load_run_state, start_state
from tdgen.agents.value_based.agent import (
    Agent,
    TrainState,
    intervention_values,
    reset_accumulators,
)
from tdgen.agents.value_based.config import ValueBasedConfig, epsilon_at
from tdgen.agents.value_based.probe import make_value_probe
from tdgen.errors import InputError
from tdgen.runs import (
    MetricsLogger,
    RunDir,
    find_checkpoint,
)
from tdgen.runs.checkpoint import require_replay
from tdgen.runs.loop import Group, log_line, probe_event, run_segments, stacked_member
from tdgen.runs.metrics import group_loggers


def is_host_stepped(config: ValueBasedConfig) -> bool:
    return config.env.startswith("atari/")


def train(agent: Agent, run: RunDir, progress: bool = True) -> Path:
    """Train from frame 0 into the new run directory ``run``."""
    if is_host_stepped(agent.config):
        from tdgen.agents.value_based.host import train_host

        return train_host(agent, run, progress)
    with MetricsLogger(run.path) as logger:
        return _run(agent, run, agent.init(), logger, progress)


def resume(agent: Agent, run: RunDir, frames: int | None, progress: bool = True) -> Path:
    """Continue ``run`` from its checkpoint of ``frames`` (None: the newest; 0: the start)."""
    if is_host_stepped(agent.config):  # not bit-exact: see tdgen.agents.value_based.host
        from tdgen.agents.value_based.host import resume_host

        return resume_host(agent, run, progress)
    state, frames = start_state(agent, run, frames)
    with MetricsLogger(run.path, resume_step=frames) as logger:
        return _run(agent, run, state, logger, progress)


def load_state(agent: Agent, run: RunDir, path: Path) -> tuple[int, object]:
    """`(frames, state)` of the checkpoint at ``path``: a `TrainState` on gymnax, the host loop's
    `HostTrainState` (its frame-once replay included) on envpool Atari."""
    if is_host_stepped(agent.config):
        from tdgen.agents.value_based.host import load_host_checkpoint

        return load_host_checkpoint(agent, path, run.kind)
    return load_run_state(agent, run, path)


def probe_checkpoint(agent: Agent, run: RunDir, frames: int = 0) -> ProbeResult:
    """Recompute the update-rank probe of a MinAtar run from its checkpoint at ``frames`` (0: the
    newest). It draws the transitions the run's own probe drew there (its key derives from the
    saved state)."""
    if is_host_stepped(agent.config):
        raise InputError("probing a checkpoint is implemented for minatar/ runs only")
    path = find_checkpoint(run.checkpoints, frames)
    require_replay(path, "the probe")  # it samples its transitions there
    _, state = load_run_state(agent, run, path)
    result = make_value_probe(agent)(state)
    if result is None:
        raise InputError(
            f"the replay at frame {int(state.frames)} holds fewer than k={agent.config.probe_k} "
            "transitions"
        )
    return result


def train_group(
    agent: Agent,
    runs: Sequence[RunDir],
    starts: Sequence[int],
    progress: bool,
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train the runs of one group (configs that differ only by seed) as one program, each from
    its checkpoint of ``starts[i]`` (all equal; 0: the start); ``lanes``: `Train.jit_group`. Only
    gymnax agents: `tdgen.agents.launch` trains host-stepped seeds one by one."""
    init, segment = agent.make_train().jit_group(lanes)
    state = group_start(agent, init, runs, starts[0])
    probe = make_value_probe(agent)
    events = []
    if agent.config.probe_every:
        events.append(probe_event(agent.config.probe_every, lambda s, i: probe(s),
                                  [r.probes for r in runs]))  # fmt: skip
    with group_loggers([r.path for r in runs], starts[0] or None) as loggers:
        return run_segments(
            agent.config, agent.algorithm.kind, runs, state, loggers, progress,
            advance=lambda s: segment(s)[0], diverged=lambda s: np.asarray(s.diverged),
            log_values=log_values, events=events,
            group=Group(len(runs), stacked_member, reset_accumulators),
        )  # fmt: skip


def _run(agent: Agent, run: RunDir, state: TrainState, logger: MetricsLogger, progress: bool):
    config = agent.config
    events = []
    if config.probe_every:
        probe = make_value_probe(agent)
        events.append(probe_event(config.probe_every, lambda s, i: probe(s), run.probes))
    return run_segments(
        config, agent.algorithm.kind, run, state, logger, progress,
        advance=agent.jit_segment(), diverged=lambda s: bool(s.diverged),
        log_values=log_values, events=events,
    )  # fmt: skip


def log_values(config: ValueBasedConfig, state: TrainState, frames: int, seconds: float):
    """The metrics line of the interval since the last one, and the state with accumulators reset
    (the interventions' too: `intervention_values`).

    charts/SPS counts this run's frames per second (in a group, each run's: the group's total
    throughput is the group size times it)."""
    host = jax.device_get((state.return_sum, state.episodes, state.loss_sum, state.loss_count,
                           state.diverged, state.logs))  # fmt: skip
    return_sum, episodes, loss_sum, loss_count, diverged, logs = host
    values = {"charts/epsilon": float(epsilon_at(config, state.frames)), **log_line(
        return_sum=return_sum, episodes=episodes, losses={"td_loss": (loss_sum, loss_count)},
        updates=int(state.updates), diverged=bool(diverged), steps=frames, seconds=seconds,
    ), **intervention_values(logs, loss_count)}  # fmt: skip
    return values, reset_accumulators(state)


__all__ = [
    "load_run_state",
    "load_state",
    "log_values",
    "probe_checkpoint",
    "resume",
    "train",
    "train_group",
]
