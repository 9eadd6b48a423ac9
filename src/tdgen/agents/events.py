"""The host side of every training loop: advance one segment, then the events on its boundary.

`run_segments` is shared by the jitted gymnax loops and the host-stepped envpool loops of every
agent. After each segment the events that land on its boundary run in a fixed order: a log line,
the scheduled events (evaluations, probes), a checkpoint. A checkpoint is written after the
events of its frame, so resuming from it (metrics truncated after that frame) replays exactly what
an uninterrupted run does next. Wall-clock values (`WALL_CLOCK_FIELDS`) are the only fields that
differ between the two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdgen.runs import MetricsLogger, RunDir, save_checkpoint

# Fields that measure the machine, not the run: excluded when comparing runs for equality.
WALL_CLOCK_FIELDS = (
    "charts/SPS", "charts/updates_per_second", "perf/probe_seconds", "perf/checkpoint_seconds",
    "perf/eval_seconds",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that runs every ``every`` frames: ``run(state)`` returns metrics to log."""

    every: int
    run: Callable[[Any], dict[str, Any]]


def progress_bar(enabled: bool, total: int, start: int):
    """A rich progress bar over frames (a null context when disabled)."""
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


def run_segments(
    config: Any,
    kind: str,
    run: RunDir,
    state: Any,
    logger: MetricsLogger,
    progress: bool,
    *,
    advance: Callable[[Any], Any],
    diverged: Callable[[Any], bool],
    log_values: Callable[[Any, Any, int, float], tuple[dict[str, Any], Any]],
    events: Sequence[Event] = (),
    log_every: int | None = None,
    total: int | None = None,
    position: Callable[[Any], int] | None = None,
) -> Path:
    """Advance ``state`` segment by segment to ``config.frames`` (or divergence), with events.

    `advance(state)` trains one segment (jitted scan on gymnax, host stepping on envpool);
    `log_values(config, state, interval_frames, seconds)` returns the log line and the state with
    its accumulators reset. Checkpoints (of kind ``kind``) every ``config.checkpoint_every``
    frames, at the end and on divergence. Reads config.frames, log_every, checkpoint_every and
    keep_checkpoints; ``log_every`` overrides config.log_every. Progress is counted in frames
    (``state.frames`` up to ``config.frames``) unless ``position(state)`` and ``total`` say
    otherwise (distillation counts updates).
    """
    log_every = config.log_every if log_every is None else log_every
    total = config.frames if total is None else total
    position = (lambda s: int(s.frames)) if position is None else position
    frames = position(state)
    is_diverged = diverged(state)
    last_return = "-"
    with progress_bar(progress, total, frames) as bar:
        interval_start, train_seconds = frames, 0.0
        while frames < total and not is_diverged:
            tick = time.perf_counter()
            state = advance(state)
            is_diverged = diverged(state)  # waits for the segment
            frames = position(state)
            train_seconds += time.perf_counter() - tick
            last = frames >= total
            values: dict[str, Any] = {}
            if frames % log_every == 0 or last or is_diverged:
                values, state = log_values(config, state, frames - interval_start, train_seconds)
                interval_start, train_seconds = frames, 0.0
                if "charts/episodic_return" in values:
                    last_return = f"{values['charts/episodic_return']:.2f}"
            for event in events:
                if event.every and frames % event.every == 0 and not is_diverged:
                    values.update(event.run(state))
            if values:
                logger.log(frames, values)
            checkpoint_due = config.checkpoint_every and frames % config.checkpoint_every == 0
            if checkpoint_due or last or is_diverged:
                save_checkpoint(
                    run.checkpoints, frames, state, kind=kind, keep=config.keep_checkpoints
                )
            if bar is not None:
                sps = values.get("charts/SPS")
                bar.update(
                    bar.task_ids[0], completed=frames, ret=last_return,
                    sps="-" if sps is None else f"{sps:,.0f}",
                )  # fmt: skip
    return run.path


def probe_event(every: int, probe: Callable[[Any], Any], directory: Path) -> Event:
    """An event that runs ``probe(state)`` and, unless it returns None, saves the result in
    ``directory`` and logs its metrics and duration."""

    def run(state) -> dict[str, Any]:
        tick = time.perf_counter()
        result = probe(state)
        if result is None:
            return {}
        result.save(directory)
        return {**result.metrics(), "perf/probe_seconds": time.perf_counter() - tick}

    return Event(every, run)
