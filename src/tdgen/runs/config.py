"""What every run config shares: the schedule, probe, checkpoint, log and seed fields with their
validation, the validation helpers every config uses, and the round trip through config.json.

Configs are frozen dataclasses that subclass `RunConfig`; a subclass redeclares a shared field
only to change its default (and its docstring: what a step counts, frames or updates).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, Self

from tdgen.errors import InputError
from tdgen.interference.table import AGENT_DEFAULT_MEASURES, AGENT_MEASURES

# What a training run's probe can add to its update rank, and what it adds unless told: the rows
# of the table of measures (tdgen.interference.table) that agents may log, and those they log by
# default (the cheap ones: milliseconds per probe on the MinAtar CNN).
PROBE_MEASURES = AGENT_MEASURES
DEFAULT_PROBE_MEASURES = ",".join(AGENT_DEFAULT_MEASURES)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The fields every run has. ``retired_fields``: fields earlier versions stored that mean
    nothing now (dropped when an old config.json loads); ``renamed_fields``: old name -> new."""

    probe_every: int = 0
    """Steps between update-rank probes; 0 disables them."""
    probe_k: int = 128
    """Samples in one update matrix (k x k)."""
    probe_center: Literal["none", "drift"] = "none"
    """Update-matrix centring (tdgen.interference): none is the paper's definition; drift
    removes the step Adam's momentum takes whatever the sample."""
    probe_draws: int = 1
    """Independent draws of k samples per probe; their update ranks are averaged."""
    probe_measures: str = DEFAULT_PROBE_MEASURES
    """Learning-dynamics measures each probe logs beside the update rank, comma-separated
    (PROBE_MEASURES: the rows of tdgen.interference.table that agents may log, e.g. dormant,
    features, stable_rank, feature_rank, hessian_max; docs/glossary.md), or none."""
    checkpoint_every: int = 0
    """Steps between checkpoints (a last one is always written at the end); 0: only the last."""
    keep_checkpoints: int = 3
    """Complete checkpoints kept on disk (the newest)."""
    keep_replay: bool = False
    """Keep the replay buffer in the final checkpoint once the run finishes (stored compressed);
    without it a finished run drops its replay, which only some readers need (distillation from
    the run, Figures 8 and 11, `tdgen rank RUN`)."""
    log_every: int = 0
    """Steps between metric lines."""
    seed: int = 0
    """Seed of every random draw of the run."""

    retired_fields: ClassVar[tuple[str, ...]] = ()
    renamed_fields: ClassVar[dict[str, str]] = {}
    # Fields a config.json written before they existed reads as (that run never logged them, and
    # resumes as it would have): a run keeps its own probe suite.
    absent_fields: ClassVar[dict[str, Any]] = {"probe_measures": "none"}
    # Fields config.json holds only when set (the agents' interventions): a run without them
    # stores, reuses and compares exactly as before they existed.
    stored_when_set: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        self.require_positive("probe_k", "probe_draws", "keep_checkpoints")
        self.require_non_negative("probe_every", "checkpoint_every", "log_every")
        self.require_choice(probe_center=("none", "drift"))
        probe_measures(self.probe_measures)

    def require_positive(self, *names: str) -> None:
        """A ValueError naming the first of ``names`` that is not >= 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")

    def require_non_negative(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")

    def require_unit_interval(self, *names: str) -> None:
        for name in names:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    def require_multiple(self, of: int, what: str, names: Iterable[str]) -> None:
        """Each of ``names`` a multiple of ``of`` (``what`` names it in the message)."""
        for name in names:
            if getattr(self, name) % of:
                raise InputError(f"{name} ({getattr(self, name)}) must be a multiple of {what} "
                                 f"({of})")  # fmt: skip

    def require_choice(self, **choices: Iterable[str]) -> None:
        for name, allowed in choices.items():
            allowed = tuple(allowed)
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )

    @property
    def length(self) -> int:
        """The run's length in the unit its steps count: frames (distillation: updates)."""
        return self.frames

    def replace(self, **changes) -> Self:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as config.json stores them; a field of ``stored_when_set`` only when it is
        not empty, so runs without it store, reuse and compare as before the field existed."""
        values = dataclasses.asdict(self)
        for name in self.stored_when_set:
            if not values[name]:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """The config stored in a run's config.json; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {cls.renamed_fields.get(k, k): v for k, v in values.items()
                  if k not in cls.retired_fields}  # fmt: skip
        values = {**cls.absent_fields, **values}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"config has fields {cls.__name__} does not know: {unknown}")
        for field in dataclasses.fields(cls):
            default, value = field.default, values.get(field.name, field.default)
            if type(default) in (bool, int, float, str) and not _fits(value, type(default)):
                raise InputError(f"field {field.name} is a {type(value).__name__}, expected "
                                 f"{type(default).__name__}")  # fmt: skip
        return cls(**values)


def probe_measures(text: str) -> tuple[str, ...]:
    """The measures named by a ``probe_measures`` field ("none" or "": none); a ValueError names
    the field, the unknown measure and the valid ones."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names in ((), ("none",)):
        return ()
    for name in names:
        if name not in PROBE_MEASURES:
            near = difflib.get_close_matches(name, PROBE_MEASURES, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InputError(
                f"probe_measures: unknown measure {name!r}{hint}; expected a comma-separated "
                f"subset of {', '.join(PROBE_MEASURES)}, or none"
            )
    return names


def _fits(value: Any, kind: type) -> bool:
    """``value`` is a ``kind`` as JSON stores it (an int where a float is wanted; no bools as
    numbers)."""
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


__all__ = ["DEFAULT_PROBE_MEASURES", "PROBE_MEASURES", "RunConfig", "probe_measures"]
