"""Aggregate statistics across runs and tasks, following rliable (Agarwal et al., NeurIPS 2021).

Scores come as one array of run scores per task (`Sequence[np.ndarray]`, task m holding its
n_m runs); tasks may hold different numbers of runs. Every statistic is written for a leading
batch axis, so the stratified bootstrap evaluates all resamples at once:

- `iqm`: interquartile mean of all runs of all tasks pooled, `scipy.stats.trim_mean(x, 0.25)`
  (rliable's `aggregate_iqm`: the lowest and highest floor(N/4) of the N scores are dropped).
- `mean`, `median`: of the per-task mean scores (rliable's `aggregate_mean`, `aggregate_median`).
- `optimality_gap`: gamma minus the mean of min(score, gamma) over all runs (for normalised
  scores, gamma = 1).
- `performance_profile`: the fraction of all runs scoring above each threshold tau (rliable's
  score distribution, `run_score_deviation`).
- `probability_of_improvement`: P(X > Y) per task (ties count 1/2, as Mann-Whitney U / (n m)),
  averaged over tasks.
- `stratified_bootstrap`: resample the runs of each task with replacement, independently per task
  (and per algorithm for a comparison), and take percentile intervals of the statistic
  (rliable's `StratifiedBootstrap` with `method="percentile"`).

rliable itself is not a dependency: rliable 1.2.0 requires arch < 8, and arch 7.2 fails to import
with pandas 3 (`deprecate_kwarg`), while with arch 8 rliable's bootstrap fails (`random_state=None`
is rejected); these few definitions are implemented here with numpy and scipy instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

Batched = Sequence[np.ndarray]  # per task: [batch, runs of that task]


def _pooled(samples: Batched) -> np.ndarray:
    return np.concatenate([np.asarray(s, dtype=np.float64) for s in samples], axis=1)


def iqm(samples: Batched) -> np.ndarray:
    """Interquartile mean over all runs of all tasks, per batch row: [batch]."""
    return stats.trim_mean(_pooled(samples), proportiontocut=0.25, axis=1)


def mean(samples: Batched) -> np.ndarray:
    """Mean over tasks of each task's mean score: [batch]."""
    return np.mean([np.mean(s, axis=1) for s in samples], axis=0)


def median(samples: Batched) -> np.ndarray:
    """Median over tasks of each task's mean score: [batch]."""
    return np.median(np.stack([np.mean(s, axis=1) for s in samples], axis=1), axis=1)


def optimality_gap(samples: Batched, gamma: float = 1.0) -> np.ndarray:
    """gamma - mean(min(score, gamma)) over all runs: [batch]."""
    return gamma - np.mean(np.minimum(_pooled(samples), gamma), axis=1)


def performance_profile(samples: Batched, taus: np.ndarray) -> np.ndarray:
    """Fraction of all runs with score > tau, for each tau: [batch, len(taus)]."""
    pooled = _pooled(samples)
    return np.mean(pooled[:, :, None] > np.asarray(taus)[None, None, :], axis=1)


def probability_of_improvement(x: Batched, y: Batched) -> np.ndarray:
    """P(X > Y) averaged over tasks (x[m], y[m]: the two algorithms' runs on task m): [batch]."""
    per_task = []
    for xs, ys in zip(x, y, strict=True):
        xs, ys = np.asarray(xs)[:, :, None], np.asarray(ys)[:, None, :]
        per_task.append(np.mean((xs > ys) + 0.5 * (xs == ys), axis=(1, 2)))
    return np.mean(per_task, axis=0)


STATISTICS: dict[str, Callable[[Batched], np.ndarray]] = {
    "iqm": iqm, "mean": mean, "median": median, "optimality_gap": optimality_gap,
}  # fmt: skip


def resample(scores: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> Batched:
    """One stratified bootstrap draw of every task: runs resampled with replacement within their
    task, `reps` times: per task [reps, n_m]."""
    out = []
    for x in scores:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1 or len(x) == 0:
            raise ValueError(
                f"each task needs a 1-D array of at least one run score, got {x.shape}"
            )
        out.append(x[rng.integers(0, len(x), size=(reps, len(x)))])
    return out


def stratified_bootstrap(
    statistic: Callable[..., np.ndarray],
    *scores: Sequence[np.ndarray],
    reps: int = 2_000,
    size: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(point, low, high)` of ``statistic(*scores)`` with a ``size`` percentile interval.

    Each positional ``scores`` is one algorithm's per-task run scores; several (for a comparison)
    are resampled independently, in order, from one generator seeded with ``seed``.
    """
    if not 0 < size < 1:
        raise ValueError(f"size must lie in (0, 1), got {size}")
    point = statistic(*[[np.asarray(x, dtype=np.float64)[None] for x in s] for s in scores])[0]
    rng = np.random.default_rng(seed)
    draws = statistic(*[resample(s, reps, rng) for s in scores])
    low, high = np.percentile(draws, [100 * (1 - size) / 2, 100 * (1 + size) / 2], axis=0)
    return np.asarray(point), low, high


def nested_mean_draws(
    tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap draws of `mean` (over tasks, of each task's mean) when a task's runs hold repeated
    measurements: per task an array [runs] or [runs, probes]; the runs are resampled with
    replacement and, within each drawn run, its probes (a two-stage bootstrap, stratified by task
    as `resample`): [reps]."""
    per_task = []
    for x in tasks:
        x = np.asarray(x, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.size == 0:
            raise ValueError(f"each task needs [runs] or [runs, probes] values, got {x.shape}")
        # Per run, its probes resampled: [runs, reps]; then the runs resampled: [reps, runs].
        run_means = np.stack([np.mean(r, axis=1) for r in resample(list(x), reps, rng)])
        picks = rng.integers(0, len(x), size=(reps, len(x)))
        per_task.append(np.mean(np.take_along_axis(run_means.T, picks, axis=1), axis=1))
    return np.mean(per_task, axis=0)


def normalise(
    scores: Mapping[str, Mapping[str, np.ndarray]], bounds: Mapping[str, tuple[float, float]]
) -> dict[str, dict[str, np.ndarray]]:
    """(score - low) / (high - low) per task; tasks without bounds are an error (name them)."""
    missing = sorted({t for per in scores.values() for t in per} - set(bounds))
    if missing:
        raise ValueError(f"no normalisation bounds for tasks {missing}")
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


def mean_band(
    curves: np.ndarray, reps: int = 1_000, size: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs of ``curves`` [runs, points] and its bootstrap percentile band over runs."""
    curves = np.asarray(curves, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(curves), size=(reps, len(curves)))
    draws = np.nanmean(curves[picks], axis=1)  # [reps, points]
    low, high = np.nanpercentile(draws, [100 * (1 - size) / 2, 100 * (1 + size) / 2], axis=0)
    return np.nanmean(curves, axis=0), low, high


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
