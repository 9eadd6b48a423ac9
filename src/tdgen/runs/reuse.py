"""The two checks behind reusing, resuming or creating a run directory, the contract that
`tdgen.agents.launch.ensure_runs` (experiments, distillation) and sweep tasks apply.

A directory holding a complete run of the same kind and config is reused; an incomplete one is
resumed from its newest complete checkpoint; a directory holding a different run is refused with
one line naming the differing fields, never overwritten; an empty path gets a new run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tdgen.runs.checkpoint import complete_checkpoints
from tdgen.runs.config import RunConfig
from tdgen.runs.metrics import read_metrics
from tdgen.runs.rundir import RunDir

# Fields that change what a run measures or keeps, never how it trains: a run that differs only
# there is the same run (reused as it is; resumed with its own value).
READ_ONLY_FIELDS = ("probe_measures", "keep_replay")


def is_complete(run_dir: Path, total: int) -> bool:
    """True when the run reached ``total`` (frames, or updates for distillation: its final
    checkpoint) or stopped on divergence."""
    rows = read_metrics(run_dir)
    if rows and rows[-1].get("charts/diverged"):
        return True
    done = complete_checkpoints(Path(run_dir) / "checkpoints")
    return bool(done) and max(done) >= total


def config_differences(run_dir: Path, kind: str, wanted: Mapping[str, Any]) -> list[str] | None:
    """Fields where the run in ``run_dir`` differs from ``wanted`` (["kind"] for another kind);
    None when there is no run."""
    if not (Path(run_dir) / "config.json").exists():
        return None
    stored = RunDir.open(run_dir)
    if stored.kind != kind:
        return ["kind"]
    config = {**RunConfig.absent_fields, **stored.config}
    return sorted(k for k in wanted if k not in READ_ONLY_FIELDS and config.get(k) != wanted[k])


__all__ = ["config_differences", "is_complete"]
