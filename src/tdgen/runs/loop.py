"""The host side of every training loop: advance one segment, then the events on its boundary.

`run_segments` is shared by the jitted gymnax loops, the host-stepped envpool loops of every agent
and distillation, for one run or for a group of seeds trained as one vmapped program (`Group`).
After each segment the events that land on its boundary run in a fixed order, for each run of a
group in turn: a log line, the scheduled events (evaluations, probes), a checkpoint. A checkpoint is written after the
events of its frame, so resuming from it (metrics truncated after that frame) replays exactly what
an uninterrupted run does next. Wall-clock values (`WALL_CLOCK_FIELDS`) are the only fields that
differ between the two.

SIGTERM (what Slurm and most schedulers send before preemption) received while the loop runs
makes it finish the segment in flight, checkpoint every unfinished run at that frame (after its
events, as always) and raise `Interrupted`; `tdgen resume` then continues bit for bit. The
handler is installed only while the loop runs (main thread only) and the previous one restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdgen.errors import Interrupted
from tdgen.runs import MetricsLogger, RunDir, keep_replays, save_checkpoint
from tdgen.runs.checkpoint import REPLAY

# Fields that measure the machine, not the run: excluded when comparing runs for equality.
WALL_CLOCK_FIELDS = (
    "charts/SPS", "perf/probe_seconds", "perf/checkpoint_seconds",
    "perf/eval_seconds", "perf/dynamics_seconds",
)  # fmt: skip


@contextlib.contextmanager
def sigterm_received():
    """An Event set when SIGTERM arrives while the context is open (never, outside the main
    thread, where Python cannot receive signals); the previous handler is restored on exit."""
    received = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.set())
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that runs every ``every`` frames: ``run(state, index)`` returns metrics to log
    (``state`` is one run's state; ``index`` its place in a group, 0 for a single run)."""

    every: int
    run: Callable[[Any, int], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Group:
    """How to read one run out of a group's state: the group state is every run's state stacked
    on a leading axis. member(state, i) is run i's state; reset(state) zeroes every run's
    since-last-log accumulators at once."""

    size: int
    member: Callable[[Any, int], Any]
    reset: Callable[[Any], Any]


def stacked_member(state: Any, index: int) -> Any:
    """Run ``index``'s state of a group state stacked on a leading axis."""
    import jax

    return jax.tree.map(lambda x: x[index], state)


def progress_bar(enabled: bool, total: int, start: int, unit: str = "frames"):
    """A rich progress bar over frames (a null context when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
        TextColumn("return {task.fields[ret]}"),
        TextColumn("{task.fields[sps]} SPS"),
        TimeRemainingColumn(),
    )
    bar.add_task("train", total=total, completed=start, ret="-", sps="-")
    return bar


def run_segments(
    config: Any,
    kind: str,
    runs: RunDir | Sequence[RunDir],
    state: Any,
    loggers: MetricsLogger | Sequence[MetricsLogger],
    progress: bool,
    *,
    advance: Callable[[Any], Any],
    diverged: Callable[[Any], Any],
    log_values: Callable[[Any, Any, int, float], tuple[dict[str, Any], Any]],
    events: Sequence[Event] = (),
    log_every: int | None = None,
    total: int | None = None,
    position: Callable[[Any], int] | None = None,
    group: Group | None = None,
    unit: str = "frames",
) -> Path | list[Path]:
    """Advance ``state`` segment by segment to ``config.frames`` (or divergence), with events.

    `advance(state)` trains one segment (jitted scan on gymnax, host stepping on envpool);
    `log_values(config, state, interval_frames, seconds)` returns one run's log line and its
    state with the accumulators reset. Checkpoints (of kind ``kind``) every
    ``config.checkpoint_every`` frames, at the end and on divergence. A run that reaches its end
    writes its final checkpoint compressed, with its replay only when ``config.keep_replay`` or
    `keep_replays()` asks (the earlier checkpoints keep theirs: a run whose final checkpoint is
    damaged resumes from the one before). Reads config.frames, log_every, checkpoint_every,
    keep_checkpoints and keep_replay; ``log_every`` overrides config.log_every.
    Progress is counted in frames (``state.frames`` up to ``config.frames``) unless
    ``position(state)`` and ``total`` say otherwise (distillation counts updates).

    With ``group``, ``runs`` and ``loggers`` are sequences (one per run), ``diverged(state)``
    returns one flag per run, and every run logs, probes and checkpoints as it would alone; a run
    that diverges stops logging after its last checkpoint while the others go on (its lane keeps
    computing: a vmapped program cannot drop it). Returns the run path, or the list of paths.
    On SIGTERM every unfinished run checkpoints at the frame reached and `Interrupted` is raised.
    """
    single = group is None
    runs = [runs] if single else list(runs)
    loggers = [loggers] if single else list(loggers)
    if single:
        group = Group(1, lambda s, i: s, lambda s: s)
    log_every = config.log_every if log_every is None else log_every
    total = config.frames if total is None else total
    if position is None:
        position = (lambda s: int(s.frames)) if single else (lambda s: int(s.frames[0]))

    def flags(s) -> list[bool]:
        return [bool(diverged(s))] if single else [bool(d) for d in diverged(s)]

    frames = position(state)
    stopped = flags(state)  # a run that diverged before this call is finished
    keep_replay = getattr(config, "keep_replay", False) or keep_replays()
    last_return = "-"
    with sigterm_received() as terminated, progress_bar(progress, total, frames, unit) as bar:
        interval_start, train_seconds = frames, 0.0
        while frames < total and not all(stopped):
            tick = time.perf_counter()
            state = advance(state)
            is_diverged = flags(state)  # waits for the segment
            frames = position(state)
            train_seconds += time.perf_counter() - tick
            last = frames >= total
            scheduled = frames % log_every == 0 or last  # every run logs; else only a diverged one
            first_sps = None
            stopping = terminated.is_set() and not last
            checkpoint_due = stopping or (
                config.checkpoint_every and frames % config.checkpoint_every == 0
            )
            event_due = any(e.every and frames % e.every == 0 for e in events)
            for i in range(group.size):
                if stopped[i]:
                    continue
                if not (scheduled or is_diverged[i] or checkpoint_due or event_due):
                    continue  # nothing to do for this run: do not slice its state out
                member = group.member(state, i)
                values: dict[str, Any] = {}
                if scheduled or is_diverged[i]:
                    values, member = log_values(config, member, frames - interval_start,
                                                train_seconds)  # fmt: skip
                    if first_sps is None:  # the bar shows the first running run's line
                        first_sps = values.get("charts/SPS")
                        if "charts/episodic_return" in values:
                            last_return = f"{values['charts/episodic_return']:.2f}"
                for event in events:
                    if event.every and frames % event.every == 0 and not is_diverged[i]:
                        values.update(event.run(member, i))
                if values:
                    loggers[i].log(frames, values)
                if checkpoint_due or last or is_diverged[i]:
                    finished = last and not is_diverged[i]  # keep what readers need (rundir.py)
                    save_checkpoint(
                        runs[i].checkpoints, frames, member, kind=kind,
                        keep=config.keep_checkpoints, compress=finished,
                        drop=(REPLAY,) if finished and not keep_replay else (),
                    )  # fmt: skip
                stopped[i] = is_diverged[i]
                if single:
                    state = member  # the accumulators reset by log_values
            if scheduled or (single and is_diverged[0]):
                if not single:
                    state = group.reset(state)
                interval_start, train_seconds = frames, 0.0
            if bar is not None:
                if first_sps is not None and not single:
                    first_sps *= group.size  # the group's total throughput
                bar.update(
                    bar.task_ids[0], completed=frames, ret=last_return,
                    sps="-" if first_sps is None else f"{first_sps:,.0f}",
                )  # fmt: skip
            if stopping and not all(stopped):
                raise Interrupted([r.path for r, s in zip(runs, stopped, strict=True) if not s],
                                  frames, unit)  # fmt: skip
    paths = [run.path for run in runs]
    return paths[0] if single else paths


def log_line(
    *,
    return_sum: float,
    episodes: int,
    losses: dict[str, tuple[float, int]],
    updates: int,
    diverged: bool,
    steps: int,
    seconds: float,
) -> dict[str, Any]:
    """One metrics line in CleanRL's names, from accumulators since the last line: the mean
    return of the episodes that finished (charts/episodic_return, charts/episodes), the mean of
    each loss (losses/<name>: sum, count), charts/updates, charts/diverged, and charts/SPS =
    ``steps`` / ``seconds`` (frames per second; updates per second for distillation)."""
    values: dict[str, Any] = {}
    if episodes > 0:
        values["charts/episodic_return"] = float(return_sum / episodes)
        values["charts/episodes"] = int(episodes)
    for name, (total, count) in losses.items():
        if count > 0:
            values[f"losses/{name}"] = float(total / count)
    values["charts/updates"] = int(updates)
    if diverged:
        values["charts/diverged"] = 1
    values["charts/SPS"] = steps / seconds if seconds > 0 else 0.0
    return values


def probe_event(every: int, probe: Callable[[Any, int], Any], directory: Path | Sequence[Path]):
    """An event that runs ``probe(state, index)`` and, unless it returns None, saves the result
    in ``directory`` (one per run of a group) and logs its metrics and duration."""
    directories = [directory] if isinstance(directory, str | Path) else list(directory)

    def run(state, index: int) -> dict[str, Any]:
        tick = time.perf_counter()
        result = probe(state, index)
        if result is None:
            return {}
        result.save(directories[index])
        return {**result.metrics(), "perf/probe_seconds": time.perf_counter() - tick}

    return Event(every, run)
