"""Run directories: config, metrics (JSONL + TensorBoard), atomic checkpoints and resume."""

from tdgen.runs.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    checkpoint_path,
    complete_checkpoints,
    dropped_fields,
    find_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    load_run_checkpoint,
    save_checkpoint,
)
from tdgen.runs.metrics import MetricsLogger
from tdgen.runs.rundir import RunDir, keep_replays

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "checkpoint_path",
    "dropped_fields",
    "find_checkpoint",
    "MetricsLogger",
    "complete_checkpoints",
    "RunDir",
    "latest_checkpoint",
    "load_checkpoint",
    "load_run_checkpoint",
    "keep_replays",
    "save_checkpoint",
]
