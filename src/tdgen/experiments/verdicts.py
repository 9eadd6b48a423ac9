"""Verdicts with uncertainty: a claim's statistic per seed, its 95% bootstrap interval, and a rule.

A `Check` is one rule on one statistic: the mean over seeds (over tasks, each task's mean; and over
probes where the rule averages probes), a 95% percentile interval from the two-stage stratified
bootstrap of `tdgen.sweep.aggregate.nested_mean_draws` (seeds resampled, and each drawn seed's
probes), and a threshold. The verdict is ``held`` when the whole interval lies on the rule's side
of the threshold, ``did not hold`` when it lies on the other side, and ``inconclusive`` when it
straddles it. A claim made of several checks ("on every game") holds when every check holds, does
not hold when any does not, and is inconclusive otherwise (`combine`).

Rules: ``">"`` (estimate > threshold), ``"<"``, and ``"|x|<="`` (|estimate| <= threshold: held when
the interval lies in [-t, t], did not hold when it lies outside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdgen.experiments.base import HELD, INCONCLUSIVE, NOT_HELD, VERDICTS
from tdgen.sweep.aggregate import nested_mean_draws

RULES = (">", "<", "|x|<=")
SIZE = 0.95  # interval coverage
REPS = 2_000  # bootstrap resamples


@dataclass(frozen=True)
class Check:
    """One rule on one statistic: ``estimate`` with its interval [low, high] over ``seeds``."""

    estimate: float
    low: float
    high: float
    rule: str
    threshold: float
    seeds: int
    verdict: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        for name in ("estimate", "low", "high", "threshold"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "verdict", verdict_of(self.low, self.high, self.rule,
                                                       self.threshold))  # fmt: skip

    def text(self) -> str:
        """e.g. ``2.5 [1.75, 3.25] > 2 (4 seeds)``."""
        rule = "|x| <=" if self.rule == "|x|<=" else self.rule
        seeds = f"{self.seeds} seed" + "s" * (self.seeds != 1)
        return (f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}] {rule} "
                f"{self.threshold:g} ({seeds})")  # fmt: skip

    def margin(self) -> float:
        """How far the interval clears the threshold (negative: it does not)."""
        if self.rule == ">":
            return self.low - self.threshold
        if self.rule == "<":
            return self.threshold - self.high
        return self.threshold - max(abs(self.low), abs(self.high))


def verdict_of(low: float, high: float, rule: str, threshold: float) -> str:
    """`held`, `did not hold` or `inconclusive` for the interval [low, high] against the rule."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if rule == ">":
        return HELD if low > threshold else NOT_HELD if high <= threshold else INCONCLUSIVE
    if rule == "<":
        return HELD if high < threshold else NOT_HELD if low >= threshold else INCONCLUSIVE
    if -threshold <= low and high <= threshold:
        return HELD
    return NOT_HELD if low > threshold or high < -threshold else INCONCLUSIVE


def _tasks(values: Any) -> list[np.ndarray]:
    """A list of numpy arrays: one task each; anything else ([seeds] or [seeds, probes] as an array
    or nested lists): one task."""
    if isinstance(values, list) and values and all(isinstance(v, np.ndarray) for v in values):
        return [np.asarray(v, dtype=np.float64) for v in values]
    return [np.asarray(values, dtype=np.float64)]


def _point(tasks: Sequence[np.ndarray]) -> float:
    return float(np.mean([np.mean(t) for t in tasks]))


def mean_test(
    values: Any,
    rule: str,
    threshold: float,
    *,
    minus: Any = None,
    reps: int = REPS,
    seed: int = 0,
) -> Check:
    """The mean of ``values`` (minus the mean of ``minus``, resampled independently: two groups of
    seeds) against ``threshold`` by ``rule``.

    ``values``: per seed [seeds] or per seed and probe [seeds, probes] (an array or nested lists),
    or a list of such numpy arrays, one per task (game), pooled as the mean over tasks. Paired differences (two numbers of one run)
    are taken by the caller before the call, so that the pairing is kept when seeds are resampled.
    """
    tasks = _tasks(values)
    rng = np.random.default_rng(seed)
    draws = nested_mean_draws(tasks, reps, rng)
    estimate = _point(tasks)
    seeds = min(len(t) for t in tasks)
    if minus is not None:
        other = _tasks(minus)
        draws = draws - nested_mean_draws(other, reps, rng)
        estimate -= _point(other)
        seeds = min(seeds, min(len(t) for t in other))
    low, high = np.percentile(draws, [100 * (1 - SIZE) / 2, 100 * (1 + SIZE) / 2])
    return Check(estimate, low, high, rule, threshold, seeds)


def combine(verdicts: Sequence[str]) -> str:
    """A claim over several checks: held if all held, did not hold if any did not, else inconclusive."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("a claim needs at least one check")
    if NOT_HELD in verdicts:
        return NOT_HELD
    return HELD if all(v == HELD for v in verdicts) else INCONCLUSIVE


def share_verdict(verdicts: Sequence[str], share: float, strict: bool = False) -> str:
    """A claim on "at least (``strict``: more than) ``share`` of games": held when the games that
    held reach it, did not hold when even the held and inconclusive ones together fall short,
    inconclusive otherwise (no games: inconclusive)."""
    n = len(verdicts)

    def reaches(count: int) -> bool:
        return count > share * n if strict else count >= share * n

    if n and reaches(sum(v == HELD for v in verdicts)):
        return HELD
    return NOT_HELD if n and not reaches(sum(v != NOT_HELD for v in verdicts)) else INCONCLUSIVE


def deciding(checks: Mapping[str, Check]) -> tuple[str, Check]:
    """The check that decides a combined verdict: the first that did not hold, else the first
    inconclusive one, else the one that clears its threshold by the least."""
    for verdict in (NOT_HELD, INCONCLUSIVE):
        for name, check in checks.items():
            if check.verdict == verdict:
                return name, check
    return min(checks.items(), key=lambda item: item[1].margin())


__all__ = ["HELD", "INCONCLUSIVE", "NOT_HELD", "VERDICTS", "Check", "combine", "deciding",
           "mean_test", "share_verdict", "verdict_of"]  # fmt: skip
