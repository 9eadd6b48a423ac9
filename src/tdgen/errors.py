"""The errors the `tdgen` command reports in one line, and the readers that raise them.

`InputError` (a ValueError) is a user's mistake: raised by every reader of a user's file, by every
check of an option, a config field (validation names the field) or an argument of the public API,
and by a missing optional package (`tdgen._extras.MissingExtraError`). The `tdgen` command prints it
as one line `tdgen: error: ...` and exits 2; every other error is the environment's fault (disk
full, out of memory: one line, exit 1) or a bug (a traceback). Its message names the file or option
and what was expected. `read_json` and `read_toml` read a file and turn every way it can be
missing, empty, truncated or garbage into an InputError naming it. `Interrupted` is training
stopped by SIGTERM after its checkpoint (`tdgen.runs.loop`). This module imports nothing of tdgen,
so every layer may raise them.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A file or option given to tdgen is missing, unreadable, malformed or out of range."""


class InsufficientMemoryError(InputError, MemoryError):
    """A config whose memory the host does not have free, refused before anything is allocated
    (an Atari replay's buffer_size): bad input naming the field, and a MemoryError."""


class ReportedFailure(Exception):  # noqa: N818  (a base: a sweep's failed runs)
    """Work failed whose details are already written elsewhere (a sweep's failed runs: their
    tracebacks are in its logs folder); the `tdgen` command prints its one line and exits 1."""


def unknown_name(kind: str, name: object, choices: tuple[str, ...]) -> InputError:
    """An InputError naming the bad choice of ``kind`` (a measure, a reduction, a centring, ...),
    the nearest valid one ("did you mean") and all of them."""
    near = difflib.get_close_matches(str(name), choices, n=1)
    hint = f": did you mean {near[0]!r}?" if near else ""
    return InputError(f"unknown {kind} {name!r}{hint} (expected one of {', '.join(choices)})")


class Interrupted(Exception):  # noqa: N818  (not an error: a requested stop)
    """Training stopped on SIGTERM after checkpointing every unfinished run at ``frames``."""

    def __init__(self, paths: list[Path], frames: int, unit: str):
        self.paths, self.frames = [Path(p) for p in paths], frames
        super().__init__(f"stopped by SIGTERM at {unit.rstrip('s')} {frames} after checkpointing "
                         f"{', '.join(map(str, self.paths))}")  # fmt: skip


def read_text(path: Path, what: str) -> str:
    """The text of ``path`` (``what`` it should be, for the message); InputError when it is
    missing, a directory, unreadable or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected {what})")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not text (expected {what})") from None
    except OSError as error:
        raise InputError(f"{path} cannot be read ({error.strerror}; expected {what})") from None


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON of ``path``; InputError naming it on an empty, truncated or garbage file."""
    return _parse(path, what, "JSON", json.loads, json.JSONDecodeError)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML of ``path``; InputError naming it on an empty or garbage file."""
    return _parse(path, what, "TOML", tomllib.loads, tomllib.TOMLDecodeError)


def _parse(path: Path, what: str, language: str, parse, error_type: type) -> Any:
    text = read_text(path, what)
    if not text.strip():
        raise InputError(f"{path} is empty (expected {what})")
    try:
        return parse(text)
    except error_type as error:
        raise InputError(f"{path} is not valid {language} ({error}; expected {what})") from None


def read_npz(path: Path, what: str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arrays of the .npz file ``path`` (no pickles), which must hold ``keys``; InputError
    naming it when it is missing, empty, truncated or not an .npz file."""
    import zipfile

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected {what})")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise InputError(f"{path} is not a readable .npz file ({error}; expected {what})") from None
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)} (expected {what}; it holds "
                         f"{', '.join(arrays) or 'nothing'})")  # fmt: skip
    return arrays


def read_msgpack(path: Path, what: str) -> Any:
    """The flax-msgpack payload of ``path``; InputError naming it when it is missing, empty,
    truncated or garbage (msgpack raises several unrelated types on those)."""
    from flax import serialization

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected {what})")
    data = path.read_bytes()
    if not data:
        raise InputError(f"{path} is empty (expected {what})")
    try:
        return serialization.msgpack_restore(data)
    except Exception as error:  # noqa: BLE001  (ExtraData, ValueError, TypeError, ...)
        raise InputError(
            f"{path} is not a msgpack file ({describe(error)}; expected {what})"
        ) from None


def make_dir(path: Path, what: str) -> Path:
    """Create the folder ``path`` (and its parents) named by the user for ``what``; an InputError
    when a file stands where it or one of its parents should be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(
            f"{path} cannot be a folder: a file is in the way (expected {what})"
        ) from None
    return path


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception from a parser (just ``Type`` when it says nothing)."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def require_fields(data: Any, path: Path, what: str, **types: type | tuple[type, ...]) -> None:
    """InputError naming ``path`` unless ``data`` is a JSON object holding each field with its
    type (e.g. ``kind=str, config=dict``)."""
    if not isinstance(data, Mapping):
        raise InputError(f"{path} holds a {type(data).__name__}, expected {what} (a JSON object)")
    for name, kind in types.items():
        if name not in data:
            raise InputError(f"{path} has no {name!r} field (expected {what})")
        if not isinstance(data[name], kind):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise InputError(f"{path}: field {name!r} is a {type(data[name]).__name__}, expected "
                             f"{expected} (in {what})")  # fmt: skip


__all__ = [
    "InputError",
    "InsufficientMemoryError",
    "Interrupted",
    "make_dir",
    "read_json",
    "read_msgpack",
    "read_npz",
    "read_text",
    "read_toml",
    "ReportedFailure",
    "require_fields",
]
