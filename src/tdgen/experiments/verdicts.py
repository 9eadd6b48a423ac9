"""Verdicts with uncertainty: a claim's statistic per seed, its 95% t interval, and a rule.

A `Check` is one rule on one statistic: the mean over seeds (over tasks, each task's mean), a 95%
t interval with the seed as the unit (`tdgen.stats`: values nested within a seed, such as
probes, noise scales or windows, are averaged within it first and never count as samples), and a
threshold. One group of seeds: Student's t interval (paired differences within a run are taken
per seed by the caller); two independent groups (``minus``): Welch's interval; a mean pooled over
tasks (games, each with its own seeds), or the difference of two such means: the t interval of
the pooled mean with Welch-Satterthwaite degrees of freedom. With fewer than 2 seeds (units) in a
group there is no interval, and the check is inconclusive. The coverage of these intervals under
normal and skewed seed effects, at 2 to 10 seeds, is measured in `tdgen.stats`.

The verdict is ``held`` when the whole interval lies on the rule's side of the threshold, ``did
not hold`` when it lies on the other side, and ``inconclusive`` when it straddles it (or is
undefined). A claim made of several checks ("on every game") holds when every check holds, does
not hold when any does not, and is inconclusive otherwise (`combine`).

Rules: ``">"`` (estimate > threshold), ``"<"``, and ``"|x|<="`` (|estimate| <= threshold: held when
the interval lies in [-t, t], did not hold when it lies outside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdgen import stats
from tdgen.experiments.base import HELD, INCONCLUSIVE, NOT_HELD, VERDICTS

RULES = (">", "<", "|x|<=")
SIZE = 0.95  # interval coverage


@dataclass(frozen=True)
class Check:
    """One rule on one statistic: ``estimate`` with its interval [low, high] by ``method`` over
    ``n`` units (``unit``: seeds, runs, teacher/student pairs; the smallest group's count)."""

    estimate: float
    low: float
    high: float
    rule: str
    threshold: float
    n: int
    verdict: str = ""
    method: str = ""  # e.g. "Student t", "Welch t", "pooled t" ("": not recorded)
    unit: str = "seeds"
    df: float | None = None  # the interval's degrees of freedom (None: none or not recorded)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        for name in ("estimate", "low", "high", "threshold"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "n", int(self.n))
        df = None if self.df is None else float(self.df)
        object.__setattr__(self, "df", df if df is not None and np.isfinite(df) else None)
        object.__setattr__(self, "verdict", verdict_of(self.low, self.high, self.rule,
                                                       self.threshold))  # fmt: skip

    @classmethod
    def read(cls, fields: Mapping[str, Any]) -> Check:
        """A check from its JSON fields; a file written before checks had ``n`` gives ``seeds``."""
        fields = dict(fields)
        if "seeds" in fields and "n" not in fields:
            fields["n"] = fields.pop("seeds")
        return cls(**fields)

    def text(self) -> str:
        """e.g. ``2.5 [1.75, 3.25] > 2 (Student t over 4 seeds)``; ``(1 run: no interval)``."""
        rule = "|x| <=" if self.rule == "|x|<=" else self.rule
        unit = _singular(self.unit) if self.n == 1 else self.unit
        if self.n < 2:
            how = f"{self.n} {unit}: no interval"
        else:
            how = f"{self.method} over {self.n} {unit}" if self.method else f"{self.n} {unit}"
        return (f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}] {rule} "
                f"{self.threshold:g} ({how})")  # fmt: skip

    def distance(self) -> float:
        """How far the estimate lies from where the rule flips (the half-width that decides)."""
        if self.rule == "|x|<=":
            return abs(self.threshold - abs(self.estimate))
        return abs(self.estimate - self.threshold)

    def seeds_to_decide(self) -> int | None:
        """The seeds per group at which this check's interval, at the spread it observed, would
        be narrower than its distance to the threshold (`tdgen.stats.seeds_to_decide`); None
        when it observed no spread (fewer than 2 units) or no number up to 1,000 decides it.
        A check recorded without degrees of freedom is read as Student t (n - 1)."""
        df = self.n - 1 if self.df is None else self.df
        se = stats.standard_error(self.low, self.high, df)
        return stats.seeds_to_decide(se, df, self.n, self.distance())

    def margin(self) -> float:
        """How far the interval clears the threshold (negative: it does not)."""
        if self.rule == ">":
            return self.low - self.threshold
        if self.rule == "<":
            return self.threshold - self.high
        return self.threshold - max(abs(self.low), abs(self.high))


def _singular(unit: str) -> str:
    """The singular of a unit: seeds -> seed, students of one teacher -> student of one teacher."""
    noun, of, rest = unit.partition(" of ")
    return noun.removesuffix("s") + of + rest


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


def mean_test(
    values: Any,
    rule: str,
    threshold: float,
    *,
    minus: Any = None,
    unit: str = "seeds",
    size: float = SIZE,
) -> Check:
    """The mean of ``values`` (minus the mean of ``minus``, an independent group of seeds) against
    ``threshold`` by ``rule``, with its t interval over seeds (`tdgen.stats`).

    ``values``: per seed [seeds] or per seed and probe [seeds, probes] (an array or nested lists;
    probes are averaged within each seed), or a list of such numpy arrays, one per task (game),
    pooled as the mean over tasks. One group: Student's t; ``minus``: Welch's interval (pooled
    over tasks when given per-task lists). Paired differences (two numbers of one run) are taken
    by the caller before the call, per seed, and tested as one group.
    """
    tasks = _tasks(values)
    if minus is None:
        pooled = len(tasks) > 1
        found = stats.pooled_interval(tasks, size) if pooled else stats.t_interval(tasks[0], size)
        method = "pooled t" if pooled else "Student t"
    else:
        other = _tasks(minus)
        pooled = len(tasks) > 1 or len(other) > 1
        found = (stats.pooled_difference_interval(tasks, other, size) if pooled
                 else stats.welch_interval(tasks[0], other[0], size))  # fmt: skip
        method = "pooled Welch t" if pooled else "Welch t"
    return Check(found.estimate, found.low, found.high, rule, threshold, found.n,
                 method=method, unit=unit, df=found.df)  # fmt: skip


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
