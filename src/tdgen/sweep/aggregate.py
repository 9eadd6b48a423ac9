"""Aggregate statistics across runs and tasks, following rliable (Agarwal et al., NeurIPS 2021).

The statistics themselves (`iqm`, `mean`, `median`, `optimality_gap`, `performance_profile`,
`probability_of_improvement`, `stratified_bootstrap`, `mean_band`, ...) live in `tdgen.stats`,
below every package that uses them, and are re-exported here; this module adds the score
bookkeeping of a sweep report: normalisation of scores per task by (low, high) bounds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tdgen.errors import InputError
from tdgen.stats import (
    STATISTICS,
    iqm,
    mean,
    mean_band,
    median,
    nested_mean_draws,
    optimality_gap,
    performance_profile,
    probability_of_improvement,
    resample,
    stratified_bootstrap,
)


def normalise(
    scores: Mapping[str, Mapping[str, np.ndarray]], bounds: Mapping[str, tuple[float, float]]
) -> dict[str, dict[str, np.ndarray]]:
    """(score - low) / (high - low) per task; tasks without bounds are an error (name them)."""
    missing = sorted({t for per in scores.values() for t in per} - set(bounds))
    if missing:
        raise InputError(f"no normalisation bounds for tasks {missing}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for algorithm, per_task in scores.items():
        out[algorithm] = {}
        for task, x in per_task.items():
            low, high = bounds[task]
            span = high - low
            out[algorithm][task] = (np.asarray(x) - low) / span if span else np.zeros(len(x))
    return out


def observed_bounds(
    scores: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, tuple[float, float]]:
    """Per task, the lowest and highest score of any run of any algorithm."""
    tasks: dict[str, list[float]] = {}
    for per_task in scores.values():
        for task, x in per_task.items():
            tasks.setdefault(task, []).extend(np.asarray(x, dtype=float).tolist())
    return {task: (float(np.min(v)), float(np.max(v))) for task, v in tasks.items()}


__all__ = [
    "STATISTICS",
    "iqm",
    "mean",
    "mean_band",
    "median",
    "nested_mean_draws",
    "normalise",
    "observed_bounds",
    "optimality_gap",
    "performance_profile",
    "probability_of_improvement",
    "resample",
    "stratified_bootstrap",
]
