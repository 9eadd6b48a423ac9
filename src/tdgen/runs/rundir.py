"""A run directory: `config.json`, `metrics.jsonl`, `tb/`, `probes/`, `checkpoints/`.

Creating a run never overwrites one: an existing directory with a config is refused with the
command that continues it instead. A finished run keeps its metrics, probes and checkpoints, but
its replay buffer (most of its bytes) only when asked: by its config (``keep_replay``, set by the
experiments that read a replay: Figure 8's runs, distillation teachers, Figure 11's students) or
for every run of a command (`--keep-replay` on `train`, `reproduce` and `sweep`, which set
``TDGEN_KEEP_REPLAY=1`` for the processes they start; sweep tasks carry it as a field).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tdgen.errors import InputError, make_dir, read_json, require_fields

CONFIG_FILE = 'a run config: {"kind": AGENT, "config": {...}}'
KEEP_REPLAY_ENV = "TDGEN_KEEP_REPLAY"


def keep_every_replay() -> None:
    """Make every run finishing in this process, and in the processes it starts, keep its final
    replay (`--keep-replay`)."""
    os.environ[KEEP_REPLAY_ENV] = "1"


def keep_replays() -> bool:
    """Whether every run finishing in this process keeps its final replay (``TDGEN_KEEP_REPLAY=1``,
    set by `--keep-replay`)."""
    return os.environ.get(KEEP_REPLAY_ENV, "") not in ("", "0")


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write bytes (or whatever ``data(f)`` writes to the open file) through a temporary file,
    fsync and rename, so a reader never sees half a file and a crash leaves either the old file
    or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def write_npz_atomic(path: Path, **arrays: Any) -> Path:
    """`write_atomic` of numpy arrays as an .npz file (probes' update matrices); returns path."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)


def write_json_atomic(path: Path, data: Any) -> None:
    """`write_atomic` of `data` as indented JSON."""
    write_atomic(path, json.dumps(data, indent=2).encode())


@dataclass(frozen=True)
class RunDir:
    """Paths and config of one run."""

    path: Path

    @classmethod
    def create(cls, path: Path, kind: str, config: dict[str, Any]) -> RunDir:
        """A new run of `kind` (e.g. "dqn") with `config`; refuses to reuse an existing run."""
        path = Path(path)
        if (path / "config.json").exists():
            raise InputError(
                f"run directory {path} already holds a run: continue it with `tdgen resume {path}` "
                "or choose another --out"
            )
        make_dir(path, "a run directory")
        for sub in ("checkpoints", "probes"):
            (path / sub).mkdir(exist_ok=True)
        write_json_atomic(path / "config.json", {"kind": kind, "config": config})
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run; an InputError names the path when it is not a tdgen run directory or
        its config.json is not one (missing, garbage, or without a ``kind`` and a ``config``)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise InputError(f"{path} is not a tdgen run directory (no config.json)")
        run = cls(path)
        run._stored  # noqa: B018  (validates the file once, before anything reads a field)
        return run

    @property
    def _stored(self) -> dict[str, Any]:
        path = self.path / "config.json"
        stored = read_json(path, CONFIG_FILE)
        require_fields(stored, path, CONFIG_FILE, kind=str, config=dict)
        return stored

    @property
    def kind(self) -> str:
        return self._stored["kind"]

    @property
    def config(self) -> dict[str, Any]:
        return self._stored["config"]

    def load_config(self, cls: type) -> Any:
        """The stored config as a ``cls`` (a RunConfig); an InputError names config.json when a
        field is unknown, of the wrong type or out of range."""
        try:
            return cls.from_dict(self.config)
        except (ValueError, TypeError) as error:
            raise InputError(f"{self.path / 'config.json'}: {error}") from None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def probes(self) -> Path:
        return self.path / "probes"
