"""`tdgen reproduce` through a sweep backend: `reproduce_with_backend(names, scale, out, backend)`.

Two phases. First the training runs the experiments declare in advance (`Experiment.planned_runs`:
Figure 3's and Figure 4's) go to the backend as one task each,
into the very directories the experiments use (``out/<experiment>/runs/<run>``), so a cluster
trains them in parallel. Then each experiment not yet finished (no result.json at this scale and seed) runs as one task, in waves that respect reuse:
an experiment that reads another's runs (its config's ``reuse_from``, e.g. Figure 12 and 8 read
Figure 3's) starts after it. The experiments find their runs complete and only measure, plot and
check; any run not trained in the first phase they train themselves, as `tdgen reproduce` does.
Finally ``out/report.md`` and ``report.html`` are written as by `tdgen reproduce`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdgen.sweep.launch import check_results, plan
from tdgen.sweep.tasks import Task, TaskResult


def planned_runs(name: str, config: Any, seed: int, out: Path) -> list[tuple[str, str, Any, Path]]:
    """`(run name, agent, agent config, run dir)` of each training run ``name`` will use, as the
    experiment declares them (`Experiment.planned_runs`, e.g. fig3 and fig4), under
    ``out/<name>``; [] for an experiment that declares none."""
    from tdgen.experiments import get_experiment

    declared = get_experiment(name).planned_runs
    if declared is None:
        return []
    runs = declared(config, seed, Path(out) / name)
    return [(r.name, r.agent, r.config, r.run_dir) for r in runs]


def dependencies(name: str, config: Any, names: Sequence[str]) -> set[str]:
    """The experiments among ``names`` whose runs ``name`` reuses (from its ``reuse_from``)."""
    reuse = getattr(config, "reuse_from", ())
    folders = (reuse,) if isinstance(reuse, str) else tuple(reuse)
    found = {m.group(1) for f in folders if (m := re.search(r"\.\./([^/]+)/runs", f))}
    return (found & set(names)) - {name}


def waves(names: Sequence[str], configs: dict[str, Any]) -> list[list[str]]:
    """``names`` in waves: each experiment after every experiment whose runs it reuses."""
    remaining, done, order = list(names), set(), []
    while remaining:
        ready = [n for n in remaining if dependencies(n, configs[n], names) <= done]
        if not ready:  # a cycle cannot happen with `../x/runs`, but never loop forever
            ready = remaining[:1]
        order.append(ready)
        done |= set(ready)
        remaining = [n for n in remaining if n not in done]
    return order


def reproduce_with_backend(
    names: Sequence[str],
    scale: str,
    out: Path,
    backend: Any,
    seed: int = 0,
    *,
    cache_dir: Path | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> Path:
    """Run experiments ``names`` (the default set, `default_experiment_names`, when empty) at ``scale`` into ``out`` with ``backend``
    (`tdgen.sweep.backends.make_backend`); returns the path of ``out/report.md``.

    Raises `SweepError` after everything that could run has run, when any task failed.
    """
    from tdgen.experiments import default_experiment_names, get_experiment
    from tdgen.experiments.report import write_report

    names = list(names) or default_experiment_names()
    configs = {n: get_experiment(n).config(scale) for n in names}  # typos fail here
    out = Path(out)
    cache = None if cache_dir is None else str(cache_dir)
    logs = str(out / "logs")
    training = [
        Task(name=f"{n}/runs/{run}", kind="agent", target=agent, config=cfg.to_dict(),
             run_dir=str(run_dir), log_dir=logs, cache_dir=cache)
        for n in names for run, agent, cfg, run_dir in planned_runs(n, configs[n], seed, out)
    ]  # fmt: skip
    results: list[TaskResult] = []
    training_plan = plan(training)  # a directory of another config stops here, before any work
    todo = [t for t in training if training_plan.states[t.name] != "finished"]
    results += [TaskResult(t.name, "skipped", 0.0) for t in training if t not in todo]
    results += backend.run(todo, on_result)
    failed_runs = {r.name.split("/")[0] for r in results if r.status == "failed"}
    for wave in waves(names, configs):
        tasks = [
            Task(name=n, kind="experiment", target=n, config={"scale": scale, "seed": seed},
                 run_dir=str(out), log_dir=logs, cache_dir=cache)
            for n in wave if n not in failed_runs
        ]  # fmt: skip
        # A finished experiment (its result.json at this scale and seed) is skipped by run_task.
        results += backend.run(tasks, on_result)
    write_report(out)
    check_results(results, out)
    return out / "report.md"


__all__ = ["dependencies", "planned_runs", "reproduce_with_backend", "waves"]
