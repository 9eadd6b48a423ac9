"""Atomic, pickle-free checkpoints of any JAX pytree (flax msgpack serialisation, streamed).

A checkpoint `ckpt_<step>.msgpack` is written to a temporary file, fsynced and renamed into place;
only then is its marker `ckpt_<step>.done` written, holding the file's SHA-256. A checkpoint counts
as complete only when its marker exists and the hash matches, so a run killed mid-write resumes from
the previous one. The payload records a format tag and a `kind` (e.g. the agent name), so a foreign
or corrupt file is refused with a one-line error instead of being half-loaded. The bytes are
flax's `msgpack_serialize` encoding, written and read as a stream (`tdgen.runs.msgpack_stream`):
saving holds no copy of the state, loading one (the Atari replay is 6.6 GiB); leaves that are
numpy in the target (host state) are restored as numpy, the rest as JAX arrays.

What a finished run keeps (`tdgen.runs.loop`): its final checkpoint with the replay buffer stored
compressed, or without the replay unless the run was asked to keep it (``keep_replay``); earlier
checkpoints are left as they were, so a damaged final one still leaves a run to resume. A field
left out is named in the payload (``dropped``); loading fills it from the target's template and
refuses a reader that ``need``s it. A field absent from an older checkpoint loads from the
template when the template's holds no arrays (an empty container).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from tdgen.errors import InputError, describe
from tdgen.runs.msgpack_stream import read_tree, write_tree
from tdgen.runs.rundir import write_atomic

FORMAT = "tdgen-checkpoint"
VERSION = 2  # 2: compressed byte arrays and dropped fields (`tdgen.runs.msgpack_stream`)
REPLAY = "replay"  # the state field of a replay buffer (value-based agents, distillation)
_NAME = re.compile(r"^ckpt_(\d{12})\.msgpack$")


DROPPED_HINT = (
    "a finished run keeps its replay only when asked (`--keep-replay`, or "
    "keep_replay=true in its config): train the run again with it"
)


class CheckpointError(InputError):
    """A checkpoint that is missing, incomplete, corrupt or of another kind."""


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (disk full, quota, I/O error); the message says which complete
    checkpoint is left to resume from."""


def marker_path(checkpoint: Path) -> Path:
    """The completion marker of the checkpoint file ``checkpoint`` (it holds the file's SHA-256)."""
    return Path(checkpoint).with_suffix(".done")


def _paths(directory: Path, step: int) -> tuple[Path, Path]:
    path = directory / f"ckpt_{step:012d}.msgpack"
    return path, marker_path(path)


def checkpoint_path(directory: Path, step: int) -> Path:
    """The file of the checkpoint of ``step`` in ``directory`` (complete or not)."""
    return _paths(Path(directory), step)[0]


def find_checkpoint(directory: Path, step: int = 0, unit: str = "frame") -> Path:
    """The complete checkpoint of ``step`` (0: the newest); a CheckpointError names what exists
    (``unit``: what a step counts, for the message)."""
    available = complete_checkpoints(directory)
    if not available:
        raise CheckpointError(f"{Path(directory).parent} has no complete checkpoint")
    if step == 0:
        step = available[-1]
    if step not in available:
        raise CheckpointError(
            f"{Path(directory).parent} has no complete checkpoint at {unit} {step}; it has "
            f"{available}"
        )
    return checkpoint_path(directory, step)


def save_checkpoint(
    directory: Path, step: int, state: Any, *, kind: str, keep: int = 3,
    drop: tuple[str, ...] = (), compress: bool = False,
) -> Path:  # fmt: skip
    """Write `state` (any pytree) as the checkpoint of `step`; keep only the newest `keep` complete.

    ``drop``: top-level state fields left out (named in the payload); ``compress``: large byte
    arrays (observations) stored zlib-compressed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stored = serialization.to_state_dict(jax.device_get(state))
    dropped = sorted(set(drop) & set(stored) if isinstance(stored, dict) else ())
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "step": int(step),
        "state": {k: v for k, v in stored.items() if k not in dropped}
        if isinstance(stored, dict) else stored,
    }  # fmt: skip
    if dropped:
        payload["dropped"] = dropped
    digest = hashlib.sha256()

    def write(f):
        write_tree(_Hashing(f, digest), payload, compress)

    path, marker = _paths(directory, step)
    try:
        write_atomic(path, write)
        write_atomic(marker, digest.hexdigest().encode())
    except OSError as error:
        if not marker.exists():
            path.unlink(missing_ok=True)  # no marker: it would be ignored; do not leave it
        complete = complete_checkpoints(directory)
        kept = (f"the newest complete checkpoint, step {complete[-1]}, is intact: `tdgen "
                f"resume {directory.parent}` continues from it" if complete else
                "there is no earlier complete checkpoint")  # fmt: skip
        failure = CheckpointWriteError(f"writing checkpoint {path} failed ({error}); {kept}")
        failure.errno = error.errno  # the fault (ENOSPC, EDQUOT, EIO, ...) for the command's line
        raise failure from error
    for old in complete_checkpoints(directory)[:-keep]:
        for p in _paths(directory, old):
            p.unlink(missing_ok=True)
    return path


def require_replay(path: Path, reader: str) -> None:
    """A CheckpointError naming the fix when the checkpoint ``path`` left its replay out, which
    ``reader`` (e.g. "Figure 8", "the probe") reads."""
    if REPLAY in dropped_fields(path):
        raise CheckpointError(f"checkpoint {path} holds no replay, which {reader} reads: "
                              f"{DROPPED_HINT}")  # fmt: skip


def dropped_fields(path: Path) -> list[str]:
    """The state fields the checkpoint ``path`` left out (e.g. ["replay"]), read without its state;
    a CheckpointError names a file that is not a checkpoint."""
    return list(_read_payload(Path(path), skip=(("state",),)).get("dropped", []))


def _read_payload(path: Path, skip: tuple[tuple[str, ...], ...] = ()) -> dict:
    """The checkpoint file's payload (without the subtrees ``skip``); a CheckpointError names a
    file that cannot be read, is not msgpack or is not a tdgen checkpoint."""
    try:
        with open(path, "rb", buffering=1 << 20) as f:
            payload = read_tree(f, skip)
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({describe(error)})") from None
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise CheckpointError(
            f"checkpoint {path} is not a msgpack file ({describe(error)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tdgen checkpoint")
    return payload


def _fill_empty_fields(stored: dict, template: dict) -> None:
    """Give ``stored`` (at any depth) the fields of ``template`` it lacks that hold no arrays:
    fields added after the checkpoint was written that are empty for this run (the
    interventions' memory of a run without interventions)."""
    for name, value in template.items():
        if name not in stored and not jax.tree.leaves(value):
            stored[name] = value
        elif isinstance(value, dict) and isinstance(stored.get(name), dict):
            _fill_empty_fields(stored[name], value)


class _Hashing:
    """A file that feeds what is written to it into a hash."""

    def __init__(self, f, digest):
        self.f, self.digest = f, digest

    def write(self, data) -> None:
        self.digest.update(data)
        self.f.write(data)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def complete_checkpoints(directory: Path) -> list[int]:
    """Steps of the checkpoints in `directory` that have their completion marker, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    steps = []
    for p in directory.iterdir():
        match = _NAME.match(p.name)
        if match and _paths(directory, int(match.group(1)))[1].exists():
            steps.append(int(match.group(1)))
    return sorted(steps)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint file, or None when there is none."""
    steps = complete_checkpoints(directory)
    return _paths(Path(directory), steps[-1])[0] if steps else None


def load_run_checkpoint(
    path: Path, target: Any, *, kind: str, position: str = "frames", check=None
) -> tuple[int, Any]:
    """`load_checkpoint`, then a check that the state's ``position`` counter (frames, or updates
    for distillation) is the step the file is named for."""
    step, state = load_checkpoint(path, target, kind=kind, check=check)
    held = int(getattr(state, position))
    if held != step:
        raise CheckpointError(f"checkpoint {path} is named for {position} {step} but holds "
                              f"{position} {held}")  # fmt: skip
    return step, state


def load_checkpoint(
    path: Path, target: Any, *, kind: str, check=None, need: tuple[str, ...] = ()
) -> tuple[int, Any]:
    """Restore `(step, state)` from `path` into the structure of `target` (a pytree of the same kind).

    Raises CheckpointError naming the file when it is incomplete, corrupt, foreign, of another kind,
    or shaped differently from `target`. ``check(path, state_dict)``, if given, sees the stored state
    first and may refuse a layout of an earlier version in its own words (a CheckpointError).
    A field the checkpoint left out (a finished run's replay) comes from ``target``; one named in
    ``need`` is a CheckpointError instead.
    """
    path = Path(path)
    marker = marker_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not marker.exists():
        raise CheckpointError(f"checkpoint {path} is incomplete (no {marker.name} marker)")
    if marker.read_bytes().strip() != _file_sha256(path).encode():
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its SHA-256 does not match {marker.name} (delete "
            "both files to resume from the checkpoint before it)"
        )
    payload = _read_payload(path)
    if not isinstance(payload.get("step"), int) or not isinstance(payload.get("state"), dict):
        raise CheckpointError(f"checkpoint {path} lacks its step or state")
    if payload.get("kind") != kind:
        raise CheckpointError(
            f"checkpoint {path} holds a {payload.get('kind')!r} state, not {kind!r}"
        )
    version = payload.get("version", 1)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"checkpoint {path} is of format {version!r}, newer than this "
                              f"tdgen reads ({VERSION}): upgrade tdgen to read it")  # fmt: skip
    dropped = payload.get("dropped", [])
    missing = [name for name in need if name in dropped]
    if missing:
        raise CheckpointError(f"checkpoint {path} holds no {missing[0]}: {DROPPED_HINT}")
    if check is not None:
        check(path, payload["state"])
    host_target = jax.device_get(target)
    template = serialization.to_state_dict(host_target)
    if isinstance(template, dict):
        payload["state"].update({name: template[name] for name in dropped if name in template})
        _fill_empty_fields(payload["state"], template)
    try:
        state = serialization.from_state_dict(host_target, payload["state"])
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not match this run's state: {error}"
        ) from None
    expected = jax.tree.map(lambda x: np.shape(x), host_target)
    restored = jax.tree.map(lambda x: np.shape(x), state)
    if expected != restored:
        raise CheckpointError(f"checkpoint {path} has arrays of other shapes than this run's state")
    host = (np.ndarray, np.generic)
    return int(payload["step"]), jax.tree.map(
        lambda t, x: x if isinstance(t, host) else jax.numpy.asarray(x), target, state
    )
