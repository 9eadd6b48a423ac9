"""The experiment contract: every paper figure is an `Experiment` with presets.

An experiment module defines a frozen config dataclass with classmethods `smoke()`, `quick()` and
`paper()` (smoke: the paper preset's code paths with schedules cut to a few iterations; its claims
are computed but are not a test of the paper; a theory experiment's config subclasses
`TheoryConfig`, whose smoke preset is its quick one),
a `run(config, seed, out_dir) -> Outcome` that computes, plots and checks the paper's claims, and an
`EXPERIMENT = Experiment(...)` entry that the registry finds, declaring its kind and, when it knows
them in advance, its training runs (`PlannedRun`). A claim's `holds` is computed from the
run's own numbers by a stated rule, never written by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from tdgen.errors import InputError

SCALES = ("smoke", "quick", "paper")
# theory: numpy/JAX on small closed-form systems, seconds; deep_rl: trains agents, minutes or more.
KINDS = ("theory", "deep_rl")
HELD, NOT_HELD, INCONCLUSIVE = "held", "did not hold", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, checked on a run: `holds` must come from `evidence` by `statement`.

    An exact claim (theory: one deterministic number against a rule) has a verdict of `held` or
    `did not hold` from `holds`. A measured claim (deep RL: a statistic per seed) is built by
    `Claim.measured` from its `checks` (`tdgen.experiments.verdicts`): each an estimate with a 95%
    t interval over seeds, and the verdict `held`, `did not hold` or `inconclusive`.
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
class TheoryConfig:
    """Base of the theory experiments' configs: they run in seconds, so the smoke preset is the
    quick one, and the paper preset is the same code at larger sizes. A subclass is a frozen
    dataclass that defines `paper()`, and `quick()` where it is not the defaults."""

    @classmethod
    def smoke(cls) -> Self:
        """The quick preset."""
        return cls.quick()

    @classmethod
    def quick(cls) -> Self:
        return cls()


@dataclass(frozen=True)
class PlannedRun:
    """One training run an experiment will use, known before it runs: a sweep backend trains it
    into ``run_dir`` ahead of the experiment, which then finds it complete."""

    name: str  # the run directory's name, e.g. ``dqn_minatar-breakout_dense_s0``
    agent: str  # registry name of the agent (tdgen.agents)
    config: Any  # the agent's config
    run_dir: Path  # ``out_dir/runs/<name>`` of the experiment's own ``out_dir``


@dataclass(frozen=True)
class Experiment:
    """A runnable paper figure or result.

    ``kind`` is "theory" or "deep_rl" (`KINDS`; an entry that does not say is taken to train
    agents); ``planned_runs(config, seed, out_dir)``, where given, lists the training runs
    ``run(config, seed, out_dir)`` will use, in the order it trains them (None: it trains none, or
    finds its runs only while it runs, e.g. in a sibling experiment's folder).
    """

    name: str
    paper_ref: str
    description: str
    config_type: type
    run: Callable[[Any, int, Path], Outcome]
    kind: str = "deep_rl"
    planned_runs: Callable[[Any, int, Path], list[PlannedRun]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"experiment {self.name}: kind {self.kind!r} unknown: choose one of "
                             f"{', '.join(KINDS)}")  # fmt: skip
        if self.planned_runs is not None and not callable(self.planned_runs):
            raise ValueError(f"experiment {self.name}: planned_runs must be a function of "
                             "(config, seed, out_dir) or None")  # fmt: skip

    def config(self, scale: str) -> Any:
        if scale not in SCALES:
            raise InputError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
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
