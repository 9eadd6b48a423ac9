"""Distillation runs in run directories: one student, or students that differ only by seed as a group.

`distill(config, out)` trains a student into a new run directory, `resume_distill(out)` continues
it, and `ensure_distill_runs(configs, dirs)` is the train-resume-or-reuse rule the experiments use
(`tdgen.agents.ensure_runs`, with distillation's spec `DISTILL`): students of one teacher and
objective that differ only by seed train as one program (`Train.jit_group`; `map` lanes on the
CPU give each seed its solo run bit for bit). Runs, metrics, checkpoints and resume are those of
every agent (`tdgen.runs.loop`); steps count student updates.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from tdgen import streams
from tdgen.agents import ensure_runs
from tdgen.agents.family import FamilyRecord
from tdgen.agents.registry import AgentSpec
from tdgen.agents.train import DEFAULT_LANES, group_start, load_run_state, start_state
from tdgen.distill import host_replay
from tdgen.distill.trainer import (
    DistillConfig,
    Distiller,
    DistillState,
    make_distill_probe,
    reset_accumulators,
)
from tdgen.errors import InputError
from tdgen.runs import MetricsLogger, RunDir
from tdgen.runs.loop import Event, Group, log_line, probe_event, run_segments, stacked_member
from tdgen.runs.metrics import group_loggers

KIND = "distill"


def distill(config: DistillConfig, out: Path, progress: bool = True) -> Path:
    """Distil ``config.teacher`` into a fresh student in a new run directory ``out``."""
    distiller = Distiller.build(config)  # a bad teacher or objective fails before writing
    return train(distiller, RunDir.create(Path(out), KIND, config.to_dict()), progress)


def resume_distill(run_dir: Path, progress: bool = True) -> Path:
    """Continue a distillation run from its newest complete checkpoint."""
    run = RunDir.open(Path(run_dir))
    if run.kind != KIND:
        raise InputError(f"{run.path} is a {run.kind!r} run, not a distillation")
    return resume(Distiller.build(run.load_config(DistillConfig)), run, None, progress)


def ensure_distill_runs(
    configs: Sequence[DistillConfig], run_dirs: Sequence[Path], lanes: str = DEFAULT_LANES
) -> list[Path]:
    """Train, resume or reuse each student (configs differing only by seed: one group)."""
    return ensure_runs(DISTILL, configs, run_dirs, lanes)


def train(distiller: Distiller, run: RunDir, progress: bool = True) -> Path:
    """Train a student from update 0 into the new run directory ``run``."""
    with MetricsLogger(run.path) as logger:
        return _run(distiller, run, distiller.init(), logger, progress)


def resume(distiller: Distiller, run: RunDir, updates: int | None, progress: bool = True) -> Path:
    """Continue ``run`` from its checkpoint of ``updates`` (None: the newest; 0: the start)."""
    state, updates = start_state(distiller, run, updates, position="updates",
                                 target=distiller.template)  # fmt: skip
    with MetricsLogger(run.path, resume_step=updates) as logger:
        return _run(distiller, run, state, logger, progress)


def train_group(
    distiller: Distiller,
    runs: Sequence[RunDir],
    starts: Sequence[int],
    progress: bool,
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train students that differ only by seed as one program, each from its checkpoint of
    ``starts[i]`` updates (all equal; 0: the start); ``lanes``: `Train.jit_group`."""
    init, segment = distiller.make_train().jit_group(lanes)
    state = group_start(distiller, init, runs, starts[0], position="updates")
    with group_loggers([r.path for r in runs], starts[0] or None) as loggers:
        return run_segments(
            distiller.config, KIND, runs, state, loggers, progress,
            advance=lambda s: segment(s)[0], diverged=lambda s: np.asarray(s.diverged),
            log_values=_log_values, events=_events(distiller, [r.probes for r in runs]),
            total=distiller.config.steps, position=lambda s: int(s.updates[0]),
            unit="updates", group=Group(len(runs), stacked_member, reset_accumulators),
        )  # fmt: skip


def _run(distiller: Distiller, run: RunDir, state: DistillState, logger, progress: bool) -> Path:
    with _segments(distiller, state) as advance:
        return run_segments(
            distiller.config, KIND, run, state, logger, progress, advance=advance,
            diverged=lambda s: bool(s.diverged), log_values=_log_values,
            events=_events(distiller, run.probes), total=distiller.config.steps,
            position=lambda s: int(s.updates), unit="updates",
        )  # fmt: skip


@contextlib.contextmanager
def _segments(distiller: Distiller, state: DistillState):
    """One segment's advance: the jitted scan, or host-sampled updates from an Atari teacher's
    frame-once replay (`tdgen.distill.host_replay`)."""
    if distiller.frame_replay:
        with host_replay.segments(distiller, state) as advance:
            yield advance
    else:
        yield distiller.jit_segment()


def _events(distiller: Distiller, probe_dirs) -> list[Event]:
    """The student's evaluations and probes (one run's state each)."""
    c = distiller.config
    events = []
    if c.eval_every:

        def evaluate(state, index):
            tick = time.perf_counter()
            key = jax.random.fold_in(state.key, streams.EVAL)
            values = distiller.evaluate_returns(state.params, key, int(state.updates))
            return {**values, "perf/eval_seconds": time.perf_counter() - tick}

        events.append(Event(c.eval_every, evaluate))
    if c.probe_every:
        make = host_replay.make_probe if distiller.frame_replay else make_distill_probe
        probe = make(distiller)
        events.append(probe_event(c.probe_every, lambda s, i: probe(s), probe_dirs))
    return events


def _log_values(config: DistillConfig, state: DistillState, updates: int, seconds: float):
    loss_sum, loss_count, diverged = jax.device_get(
        (state.loss_sum, state.loss_count, state.diverged)
    )
    values = log_line(
        return_sum=0.0, episodes=0, losses={"distill_loss": (loss_sum, loss_count)},
        updates=int(state.updates), diverged=bool(diverged), steps=updates, seconds=seconds,
    )  # fmt: skip
    return values, reset_accumulators(state)


DISTILL = AgentSpec(
    KIND,
    DistillConfig,
    FamilyRecord(
        name=KIND, presets=(), produces="", build=lambda _, config: Distiller.build(config),
        train=train, resume=resume, train_group=train_group,
        load_run_state=lambda d, run, path: load_run_state(d, run, path, "updates", d.template),
        is_host_stepped=lambda distiller: distiller.teacher.host_stepped,
    ),
    None,
)  # fmt: skip
"""Distillation as `tdgen.agents.launch` sees an agent: its config, builder and run functions."""

__all__ = ["DISTILL", "distill", "ensure_distill_runs", "resume_distill", "train_group"]
