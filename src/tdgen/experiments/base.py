"""The experiment contract (ARCHITECTURE.md): every paper figure is an `Experiment` with presets.

An experiment module defines a frozen config dataclass with classmethods `smoke()`, `quick()` and
`paper()` (smoke: the paper preset's code paths with schedules cut to a few iterations; its claims
are computed but are not a test of the paper),
a `run(config, seed, out_dir) -> Outcome` that computes, plots and checks the paper's claims, and an
`EXPERIMENT = Experiment(...)` entry that the registry finds. A claim's `holds` is computed from the
run's own numbers by a stated rule, never written by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCALES = ("smoke", "quick", "paper")
HELD, NOT_HELD, INCONCLUSIVE = "held", "did not hold", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, checked on a run: `holds` must come from `evidence` by `statement`.

    An exact claim (theory: one deterministic number against a rule) has a verdict of `held` or
    `did not hold` from `holds`. A measured claim (deep RL: a statistic per seed) is built by
    `Claim.measured` from its `checks` (`tdgen.experiments.verdicts`): each an estimate with a 95%
    bootstrap interval over seeds, and the verdict `held`, `did not hold` or `inconclusive`.
    """

    id: str
    statement: str
    holds: bool
    evidence: dict[str, Any]
    checks: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds", bool(self.holds))
        verdict = self.verdict or (HELD if self.holds else NOT_HELD)
        if verdict not in VERDICTS or (verdict == HELD) != self.holds:
            raise ValueError(f"claim {self.id}: verdict {verdict!r} does not match holds "
                             f"{self.holds} (verdicts: {', '.join(VERDICTS)})")  # fmt: skip
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "evidence", to_jsonable(self.evidence))
        object.__setattr__(self, "checks", to_jsonable(self.checks))

    @classmethod
    def measured(
        cls, id: str, statement: str, checks: dict[str, Any], evidence: dict[str, Any] | None = None
    ) -> Claim:
        """A claim decided by its `verdicts.Check`s, combined by `verdicts.combine`."""
        from tdgen.experiments.verdicts import combine

        verdict = combine([t.verdict for t in checks.values()])
        return cls(id, statement, verdict == HELD, evidence or {}, checks, verdict)


@dataclass(frozen=True)
class Outcome:
    """What a run returns: checked claims, figure file names (in out_dir), and summary numbers."""

    claims: list[Claim]
    figures: list[str]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A runnable paper figure or result."""

    name: str
    paper_ref: str
    description: str
    config_type: type
    run: Callable[[Any, int, Path], Outcome]

    def config(self, scale: str) -> Any:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
        return getattr(self.config_type, scale)()


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, tuples and paths into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        value = float(value)
        return value if np.isfinite(value) else str(value)
    if isinstance(value, complex | np.complexfloating):
        return {"real": to_jsonable(value.real), "imag": to_jsonable(value.imag)}
    if isinstance(value, Path):
        return str(value)
    return value
