"""Run a sweep: expand the grid, record it in `sweep.json`, plan, and hand the tasks to a backend.

The out dir holds one run directory per grid point (named by `tdgen.sweep.grid`) and `sweep.json`
with every point ever launched into it. Before anything starts, every point's directory is
checked: finished runs are skipped, incomplete ones resumed, and a directory holding another
config stops the sweep with one line naming it, so a relaunch with a different grid never
touches a finished run. `reproduce_with_backend` does the same for `tdgen reproduce`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdgen.errors import ReportedFailure, make_dir, read_json, require_fields
from tdgen.sweep.grid import Grid, Point, expand
from tdgen.sweep.tasks import Task, TaskResult, status
from tdgen.sweep.wandb_hook import WandbHook


class SweepError(ReportedFailure, ValueError):
    """Some runs of a sweep failed; the others finished. Relaunching retries (and resumes) them.
    Their tracebacks are in the sweep's logs folder: the command says so in one line (exit 1)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The tasks of a sweep and the state each run directory was found in."""

    tasks: list[Task]
    states: dict[str, str]  # run name -> new, incomplete or finished

    def count(self, state: str) -> int:
        return sum(s == state for s in self.states.values())


def default_cache_dir() -> Path:
    """The persistent XLA compilation cache shared by every sweep: $TDGEN_JAX_CACHE or
    ~/.cache/tdgen/jax."""
    return Path(os.environ.get("TDGEN_JAX_CACHE", Path.home() / ".cache" / "tdgen" / "jax"))


def make_tasks(
    points: Sequence[Point],
    out: Path,
    *,
    cache_dir: Path | None = None,
    wandb: WandbHook | None = None,
) -> list[Task]:
    """A task per point: agent runs in ``out/<name>``; experiments write ``out/<scale>_s<seed>/``
    as `tdgen reproduce` would."""
    out = Path(out)
    tasks = []
    for point in points:
        run_dir = out / point.name if point.kind == "agent" else out / Path(point.name).parent
        tasks.append(
            Task(
                name=point.name, kind=point.kind, target=point.target, config=dict(point.config),
                run_dir=str(run_dir), log_dir=str(out / "logs"),
                cache_dir=None if cache_dir is None else str(cache_dir),
                wandb=None if wandb is None else wandb.options(),
            )
        )  # fmt: skip
    return tasks


def plan(tasks: Sequence[Task]) -> Plan:
    """The state of every task's directory; raises (one line) on a directory of another config."""
    return Plan(list(tasks), {task.name: status(task) for task in tasks})


def record_sweep(out: Path, grids: Sequence[Grid], points: Sequence[Point]) -> Path:
    """Add this launch to ``out/sweep.json``: its grids, and its points merged into every point
    launched into ``out`` before (a point's record is only ever added, never replaced)."""
    from tdgen.runs.rundir import write_json_atomic

    path = Path(out) / "sweep.json"
    record: dict[str, Any] = {"points": {}, "launches": []}
    if path.exists():
        what = 'a sweep record: {"points": {...}, "launches": [...]}'
        record = read_json(path, what)
        require_fields(record, path, what, points=dict, launches=list)
    for point in points:
        record["points"].setdefault(point.name, point.to_dict())
    record["launches"].append({
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "grids": [g.to_dict() for g in grids],
        "points": [p.name for p in points],
    })  # fmt: skip
    make_dir(out, "the folder of the sweep")
    write_json_atomic(path, record)
    return path


def run_sweep(
    grids: Sequence[Grid],
    out: Path,
    backend: Any,
    *,
    cache_dir: Path | None = None,
    wandb: WandbHook | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    dry_run: bool = False,
) -> list[TaskResult]:
    """Expand ``grids``, check every run directory under ``out``, record `sweep.json`, and run the
    runs that are not finished with ``backend`` (finished ones are reported as `skipped`)."""
    points = expand(grids)
    tasks = make_tasks(points, out, cache_dir=cache_dir, wandb=wandb)
    planned = plan(tasks)  # refuses a mismatched directory before anything is written
    if on_plan:
        on_plan(planned)
    if dry_run:
        return []
    record_sweep(out, grids, points)
    todo = [t for t in tasks if planned.states[t.name] != "finished"]
    skipped = {t.name: TaskResult(t.name, "skipped", 0.0) for t in tasks if t not in todo}
    for result in skipped.values():
        if on_result:
            on_result(result)
    ran = {r.name: r for r in backend.run(todo, on_result)}
    if any(t.kind == "experiment" for t in todo):
        _write_experiment_reports(tasks)
    return [skipped.get(t.name) or ran[t.name] for t in tasks]


def _write_experiment_reports(tasks: Sequence[Task]) -> None:
    from tdgen.experiments.report import write_report

    for folder in sorted({t.run_dir for t in tasks if t.kind == "experiment"}):
        if any(Path(folder).glob("*/result.json")):
            write_report(Path(folder))


def check_results(results: Sequence[TaskResult], out: Path) -> None:
    """Raise `SweepError` naming the failed runs and where their tracebacks are."""
    failed = [r for r in results if r.status == "failed"]
    if failed:
        names = "; ".join(f"{r.name} ({r.error})" for r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise SweepError(
            f"{len(failed)} of {len(results)} runs failed: {names}{more}. Tracebacks in "
            f"{Path(out) / 'logs'}; relaunch the same sweep to retry them (finished runs are kept)"
        )


__all__ = [
    "Plan",
    "SweepError",
    "check_results",
    "default_cache_dir",
    "make_tasks",
    "plan",
    "record_sweep",
    "run_sweep",
]
