"""Metrics of a run: one JSON line per log step in `metrics.jsonl`, mirrored to TensorBoard.

Names follow CleanRL's convention (`charts/episodic_return`, `losses/td_loss`, `charts/SPS`,
`interference/update_rank`), so runs of every agent compare in one dashboard.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdgen.errors import InputError, read_text

METRICS_FILE = 'a JSON object with an integer "step" per line'


class MetricsLogger:
    """Append-only metrics for a run directory; `truncate_after(step)` prepares a resume."""

    def __init__(
        self, directory: Path, *, resume_step: int | None = None, tensorboard: bool = True
    ):
        self.path = Path(directory) / "metrics.jsonl"
        if resume_step is not None:
            self.truncate_after(resume_step)
        self._writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step drops events logged after the checkpoint by the interrupted run.
            self._writer = SummaryWriter(str(Path(directory) / "tb"), purge_step=resume_step)

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (by a run that died before its next checkpoint)."""
        if not self.path.exists():
            return
        kept = [json.dumps(row) for row in read_metrics(self.path.parent) if row["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, values: dict[str, Any]) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for name, value in row.items():
                if name != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def group_loggers(directories: Sequence[Path], resume_step: int | None):
    """One `MetricsLogger` per run of a group (resuming at ``resume_step``), all closed after."""
    loggers = [MetricsLogger(d, resume_step=resume_step) for d in directories]
    try:
        yield loggers
    finally:
        for logger in loggers:
            logger.close()


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "size", 2) == 1:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    """All rows of a run's `metrics.jsonl` ([] when there is none). A last line without its
    newline is what a run killed mid-append leaves: it is dropped (it postdates every checkpoint).
    Any other line that is not a JSON object with an integer "step" is an InputError naming the
    file and line."""
    path = Path(directory) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = read_text(path, METRICS_FILE).split("\n")
    rows = []
    for number, line in enumerate(lines[:-1], 1):  # lines[-1]: "" or an interrupted append
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise InputError(f"{path}, line {number}: expected {METRICS_FILE}, got {line[:40]!r}")
        rows.append(row)
    return rows
