"""Gather run directories into score tables: algorithm x task x seeds.

A run's score is the mean of the last ``last`` logged values of one metric (default:
`charts/test_return`, the held-out levels, when any run logs it; else `charts/episodic_return`).
Runs are grouped into *tasks* by environment and into *algorithms* by agent plus every config
field that takes several values among the runs of one (agent, environment), the seed aside: a
sweep over learning rates gives one algorithm per rate, while fields a preset sets per environment
(e.g. the encoder on MinAtar vs Atari) do not split an algorithm.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tdgen.errors import InputError
from tdgen.runs import RunDir
from tdgen.runs.metrics import read_metrics

DEFAULT_METRICS = ("charts/test_return", "charts/episodic_return")
NOT_A_VARIANT = ("seed", "env")


@dataclasses.dataclass(frozen=True)
class Run:
    """One run directory: agent (its kind), environment, seed, config, metrics rows, complete."""

    path: Path
    agent: str
    env: str
    seed: int
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    complete: bool

    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Frames and finite values of ``metric`` over training."""
        pairs = [(r["step"], r[metric]) for r in self.rows
                 if isinstance(r.get(metric), int | float) and math.isfinite(r[metric])]  # fmt: skip
        frames, values = zip(*pairs, strict=True) if pairs else ((), ())
        return np.asarray(frames, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def score(self, metric: str, last: int) -> float:
        """Mean of the last ``last`` logged values of ``metric`` (NaN when it was never logged)."""
        _, values = self.series(metric)
        return float(np.mean(values[-last:])) if len(values) else float("nan")


def find_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Every run directory (config.json + metrics.jsonl) at or below each of ``paths``."""
    found: set[Path] = set()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(
                f"{path} does not exist (expected a run directory or a folder of runs)"
            )
        for config in [path / "config.json", *path.rglob("*/config.json")]:
            if config.is_file() and (config.parent / "metrics.jsonl").is_file():
                found.add(config.parent)
    return sorted(found)


def load_runs(paths: Iterable[Path]) -> list[Run]:
    """The runs under ``paths`` (a run that is not an agent run, without `env`, is skipped)."""
    from tdgen.runs.reuse import is_complete

    runs = []
    for path in find_run_dirs(paths):
        stored = RunDir.open(path)
        config = stored.config
        if "env" not in config or "frames" not in config:
            continue
        runs.append(
            Run(path=path, agent=stored.kind, env=config["env"], seed=int(config.get("seed", 0)),
                config=config, rows=read_metrics(path), complete=is_complete(path, config["frames"]))
        )  # fmt: skip
    return runs


def choose_metric(runs: Sequence[Run]) -> str:
    """`charts/test_return` when any run logs it, else `charts/episodic_return`."""
    for metric in DEFAULT_METRICS:
        if any(len(run.series(metric)[0]) for run in runs):
            return metric
    return DEFAULT_METRICS[-1]


def variant_fields(runs: Sequence[Run]) -> list[str]:
    """Config fields taking several values among the runs of one (agent, env), seed aside."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.agent, run.env), []).append(run)
    fields: set[str] = set()
    for members in groups.values():
        names = set().union(*(m.config for m in members)) - set(NOT_A_VARIANT)
        fields |= {n for n in names if len({repr(m.config.get(n)) for m in members}) > 1}
    return sorted(fields)


def algorithm_label(run: Run, fields: Sequence[str]) -> str:
    """`dqn`, or `dqn (lr=0.0001)` when the runs vary in fields besides seed and env."""
    shown = [f"{f}={run.config.get(f)}" for f in fields if f in run.config]
    return f"{run.agent} ({', '.join(shown)})" if shown else run.agent


@dataclasses.dataclass(frozen=True)
class ScoreTable:
    """scores[algorithm][task] = run scores (seeds in increasing order); runs[...] their paths."""

    metric: str
    last: int
    scores: dict[str, dict[str, np.ndarray]]
    runs: dict[str, dict[str, list[Run]]]
    excluded: list[tuple[Path, str]]  # runs left out, and why

    @property
    def algorithms(self) -> list[str]:
        return sorted(self.scores)

    @property
    def tasks(self) -> list[str]:
        return sorted({t for per in self.scores.values() for t in per})

    def common_tasks(self, algorithms: Sequence[str]) -> list[str]:
        return [t for t in self.tasks if all(t in self.scores[a] for a in algorithms)]


def score_table(
    runs: Sequence[Run], metric: str | None = None, last: int = 3, include_incomplete: bool = False
) -> ScoreTable:
    """Group ``runs`` by algorithm and task and score each; incomplete runs (still training, or
    stopped before their final checkpoint) and runs without the metric are listed as excluded."""
    if last < 1:
        raise InputError(f"last must be at least 1, got {last}")
    metric = metric or choose_metric(runs)
    scored, excluded = [], []
    for run in runs:
        if not run.complete and not include_incomplete:
            excluded.append((run.path, "incomplete"))
            continue
        value = run.score(metric, last)
        if math.isnan(value):
            excluded.append((run.path, f"never logged {metric}"))
            continue
        scored.append((run, value))
    fields = variant_fields([run for run, _ in scored])
    scores: dict[str, dict[str, list[tuple[int, float, Run]]]] = {}
    for run, value in scored:
        per = scores.setdefault(algorithm_label(run, fields), {}).setdefault(run.env, [])
        per.append((run.seed, value, run))
    table: dict[str, dict[str, np.ndarray]] = {}
    members: dict[str, dict[str, list[Run]]] = {}
    for algorithm, per_task in scores.items():
        table[algorithm], members[algorithm] = {}, {}
        for task, entries in per_task.items():
            entries.sort(key=lambda e: (e[0], str(e[2].path)))
            table[algorithm][task] = np.array([e[1] for e in entries])
            members[algorithm][task] = [e[2] for e in entries]
    return ScoreTable(metric, last, table, members, excluded)


def curves(runs: Sequence[Run], metric: str, points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The runs' ``metric`` on one frame grid: `(frames [points], values [runs, points])`.

    The grid spans the frames every run covers; each run is linearly interpolated onto it (runs
    logged at the same frames keep their values exactly at those frames)."""
    series = [run.series(metric) for run in runs]
    series = [(f, v) for f, v in series if len(f)]
    if not series:
        return np.zeros(0), np.zeros((0, 0))
    start, end = max(f[0] for f, _ in series), min(f[-1] for f, _ in series)
    shared = sorted(set.intersection(*(set(f.tolist()) for f, _ in series)))
    if len(shared) >= 2 and len(shared) <= points:
        grid = np.asarray(shared, dtype=np.float64)
    else:
        grid = np.linspace(start, end, points) if end > start else np.asarray([float(start)])
    return grid, np.stack([np.interp(grid, f, v) for f, v in series])


__all__ = [
    "DEFAULT_METRICS",
    "Run",
    "ScoreTable",
    "algorithm_label",
    "choose_metric",
    "curves",
    "find_run_dirs",
    "load_runs",
    "score_table",
    "variant_fields",
]
