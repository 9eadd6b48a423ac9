"""One sweep task, as a worker runs it: train, resume or skip one run directory.

A task is plain data (`Task`, picklable for process pools, Ray and submitit). `run_task` sets the
persistent XLA compilation cache of the worker, then hands an agent run to
`tdgen.agents.ensure_runs` (reuse a complete run, resume an incomplete one from its
newest complete checkpoint, refuse a directory holding another config) or an experiment to
`tdgen.experiments.runner.run_experiment`. Errors are caught and returned, so one failing run does
not stop the others; the traceback goes to ``<sweep>/logs/<run>.log``.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tdgen.errors import InputError

STATUSES = ("new", "incomplete", "finished")


@dataclasses.dataclass(frozen=True)
class Task:
    """What a worker needs to run one point: everything is a plain value."""

    name: str  # the run's name, its directory relative to the sweep's out dir
    kind: str  # "agent" or "experiment"
    target: str  # agent or experiment name
    config: Mapping[str, Any]  # agent config (to_dict) or {"scale", "seed"}
    run_dir: str  # agent: the run directory; experiment: the `tdgen reproduce` out dir
    log_dir: str | None = None  # where a failure's traceback goes
    cache_dir: str | None = None  # persistent XLA compilation cache (None: leave JAX's setting)
    wandb: Mapping[str, Any] | None = None  # options of `tdgen.sweep.wandb_hook.WandbHook`
    # keep every finished run's replay (`--keep-replay`): read from the process making the task,
    # so it reaches workers on other machines
    keep_replay: bool = dataclasses.field(default_factory=lambda: _keep_replays())


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """How a task ended: `trained`, `resumed`, `skipped` (already finished) or `failed`."""

    name: str
    status: str
    seconds: float
    error: str | None = None


def _keep_replays() -> bool:
    from tdgen.runs.rundir import keep_replays

    return keep_replays()


def set_compilation_cache(cache_dir: str | Path | None, min_compile_seconds: float = 0.5) -> None:
    """Point JAX's persistent compilation cache at ``cache_dir`` (before anything compiles), so
    workers load programs another worker (or an earlier sweep) compiled instead of recompiling."""
    if cache_dir is None:
        return
    import jax

    if jax.config.jax_compilation_cache_dir == str(cache_dir):
        return  # already set (e.g. by the test session), keep its settings
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)


def experiment_result(out: Path, experiment: str) -> dict[str, Any] | None:
    """The `result.json` of ``experiment`` under the reproduce out dir ``out``, if written."""
    path = Path(out) / experiment / "result.json"
    from tdgen.experiments.report import read_result

    return read_result(path) if path.exists() else None


def status(task: Task) -> str:
    """`new`, `incomplete` or `finished`; a ValueError (one line) when the directory holds another
    run than the task's, which is never overwritten."""
    if task.kind == "experiment":
        result = experiment_result(Path(task.run_dir), task.target)
        if result is None:
            return "new"
        found = {"scale": result.get("scale"), "seed": result.get("seed")}
        if found != dict(task.config):
            raise InputError(
                f"{Path(task.run_dir) / task.target} holds {task.target} at {found}, not "
                f"{dict(task.config)}: delete it or choose another --out"
            )
        return "finished"
    from tdgen.runs.reuse import config_differences, is_complete

    diff = config_differences(Path(task.run_dir), task.target, task.config)
    if diff is None:
        return "new"
    if diff:
        raise InputError(
            f"{task.run_dir} holds a different run (fields {diff} differ from {task.name}'s "
            "config): delete it or choose another --out"
        )
    return "finished" if is_complete(Path(task.run_dir), task.config["frames"]) else "incomplete"


def run_task(task: Task) -> TaskResult:
    """Run one task to completion in this process; never raises (a failure is a `failed` result)."""
    start = time.perf_counter()
    try:
        set_compilation_cache(task.cache_dir)
        if task.keep_replay:
            from tdgen.runs.rundir import keep_every_replay

            keep_every_replay()
        before = status(task)
        if before == "finished":
            return TaskResult(task.name, "skipped", time.perf_counter() - start)
        hook = None
        if task.wandb:
            from tdgen.sweep.wandb_hook import WandbHook

            hook = WandbHook(**task.wandb)
            hook.start(task)
        try:
            _execute(task)
        finally:
            if hook is not None:
                hook.finish(task)
        done = "trained" if before == "new" else "resumed"
        return TaskResult(task.name, done, time.perf_counter() - start)
    except Exception as error:  # a failed run is reported, the sweep goes on
        text = traceback.format_exc()
        if task.log_dir:
            log = Path(task.log_dir) / f"{task.name.replace('/', '__')}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(text)
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        return TaskResult(task.name, "failed", time.perf_counter() - start, message)


def seed_groups(tasks: Sequence[Task]) -> list[list[Task]]:
    """The tasks as groups to run together: agent runs that differ only by seed (same agent, same
    config otherwise, same cache, no W&B logging: a W&B run is one process's) form one group,
    trained as one vmapped program; every other task is a group of one. First-seen order."""
    groups: dict[Any, list[Task]] = {}
    for i, task in enumerate(tasks):
        if task.kind == "agent" and not task.wandb:
            rest = json.dumps({k: v for k, v in task.config.items() if k != "seed"},
                              sort_keys=True)  # fmt: skip
            key: Any = ("agent", task.target, rest, task.cache_dir, task.log_dir)
        else:
            key = ("alone", i)
        groups.setdefault(key, []).append(task)
    return list(groups.values())


def run_group(tasks: Sequence[Task]) -> list[TaskResult]:
    """Run a group of `seed_groups` in this process: one task as `run_task` does; several agent
    runs as one seed group (`tdgen.agents.ensure_runs`). Never raises: a failure fails the group."""
    if len(tasks) == 1:
        return [run_task(tasks[0])]
    start = time.perf_counter()
    try:
        set_compilation_cache(tasks[0].cache_dir)
        before = [status(task) for task in tasks]
        from tdgen.agents import config_class, ensure_runs

        cls = config_class(tasks[0].target)
        todo = [t for t, b in zip(tasks, before, strict=True) if b != "finished"]
        ensure_runs(tasks[0].target, [cls.from_dict(dict(t.config)) for t in todo],
                    [Path(t.run_dir) for t in todo])  # fmt: skip
    except Exception as error:  # a failed group is reported, the sweep goes on
        text = traceback.format_exc()
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        results = []
        for task in tasks:
            if task.log_dir:
                log = Path(task.log_dir) / f"{task.name.replace('/', '__')}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(text)
            results.append(TaskResult(task.name, "failed", time.perf_counter() - start, message))
        return results
    seconds = time.perf_counter() - start
    names = {"finished": "skipped", "new": "trained", "incomplete": "resumed"}
    return [TaskResult(t.name, names[b], seconds) for t, b in zip(tasks, before, strict=True)]


def _execute(task: Task) -> None:
    if task.kind == "experiment":
        from tdgen.experiments.runner import run_experiment

        run_experiment(task.target, task.config["scale"], task.config["seed"], Path(task.run_dir))
        return
    from tdgen.agents import config_class, ensure_run

    config = config_class(task.target).from_dict(dict(task.config))
    ensure_run(task.target, config, Path(task.run_dir))


__all__ = [
    "Task",
    "TaskResult",
    "run_group",
    "run_task",
    "seed_groups",
    "set_compilation_cache",
    "status",
]
