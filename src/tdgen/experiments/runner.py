"""Run experiments by name and write `result.json` per experiment (docs/experiments.md)."""

from __future__ import annotations

import dataclasses
import json
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdgen.bench.record import machine
from tdgen.errors import InputError, make_dir
from tdgen.experiments import get_experiment
from tdgen.experiments.base import to_jsonable
from tdgen.runs.compiled import release_if_crowded
from tdgen.runs.rundir import write_json_atomic


def preset_with(name: str, scale: str, assignments: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The preset of experiment ``name`` at ``scale`` with ``FIELD=VALUE`` assignments applied, and
    the fields changed (`tdgen reproduce fig3_value_update_rank --set frames=555000`).

    A value is read as JSON (``3``, ``1e-4``, ``true``, ``null``, ``[1, 2]``) and otherwise as text,
    then checked against the field's type; a dotted field (``teacher.frames``) sets a field of a
    nested config. The configs' own checks then run. Bad input raises a one-line ValueError."""
    config = get_experiment(name).config(scale)
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        field, sep, text = assignment.partition("=")
        if not sep or not field.strip():
            raise InputError(f"{assignment!r} is not FIELD=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides[field.strip()] = value
    try:
        config = _replace(config, overrides, name)
    except TypeError as error:
        raise InputError(f"{name} with {_text(overrides)}: {error}") from None
    return config, {k: _plain(v) for k, v in _flat(config, overrides).items()}


def _replace(config: Any, overrides: dict[str, Any], where: str) -> Any:
    """``config`` with ``overrides`` (dotted names reach nested configs), values typed."""
    import difflib

    fields = {f.name for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if head not in fields:
            close = difflib.get_close_matches(head, fields, n=1)
            hint = (
                f": did you mean {close[0]!r}?"
                if close
                else f" (fields: {', '.join(sorted(fields))})"
            )
            raise InputError(f"{where} has no config field {head!r}{hint}")
        if rest:
            if not dataclasses.is_dataclass(getattr(config, head)):
                raise InputError(f"{where}.{head} is not a config: {path!r} names no field")
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = _typed(value, hints[head], f"{where}.{head}")
    for head, inner in nested.items():
        changes[head] = _replace(changes.get(head, getattr(config, head)), inner, f"{where}.{head}")
    try:
        return dataclasses.replace(config, **changes)
    except InputError as error:
        raise InputError(f"{where} with {_text(overrides)}: {error}") from None


def _flat(config: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The values ``config`` holds for each overridden (possibly dotted) field."""
    values = {}
    for path in overrides:
        value = config
        for part in path.split("."):
            value = getattr(value, part)
        values[path] = value
    return values


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` as type ``hint`` (int, float, bool, str, tuples, ``X | None``) or a ValueError."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    if value is None and type(None) in options:
        return None
    for option in (o for o in options if o is not type(None)):
        origin = typing.get_origin(option)
        if origin is tuple and isinstance(value, list):
            args = typing.get_args(option)
            item = args[0] if args else Any
            return tuple(v if item is Any else _typed(v, item, where) for v in value)
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option in (int, bool, str) and type(value) is option:
            return value
        if origin is typing.Literal and value in typing.get_args(option):
            return value
    raise InputError(f"{where} takes {getattr(hint, '__name__', hint)}, got {value!r}")


def _text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())


def run_experiment(
    name: str,
    scale: str,
    seed: int,
    out: Path,
    config: Any = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one experiment, write `out/name/result.json` and its figures, and return the result.

    ``config``: the experiment's config to run (default: its preset of ``scale``); a config
    changed from a preset is reported under that scale's name with ``overrides``, the fields
    changed (`preset_with`), which the report shows beside the scale."""
    experiment = get_experiment(name)
    config = experiment.config(scale) if config is None else config
    out_dir = make_dir(Path(out) / name, f"the folder of experiment {name}")
    start = time.perf_counter()
    outcome = experiment.run(config, seed, out_dir)
    result = {
        "experiment": name,
        "paper_ref": experiment.paper_ref,
        "description": experiment.description,
        "scale": scale,
        "overrides": to_jsonable(overrides or {}),
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
        "config": to_jsonable(dataclasses.asdict(config)),
        "claims": [to_jsonable(claim) for claim in outcome.claims],
        "figures": list(outcome.figures),
        "summary": to_jsonable(outcome.summary),
        "machine": machine(),  # what the seconds and the last bits of the numbers depend on
    }
    write_json_atomic(out_dir / "result.json", result)
    release_if_crowded()  # a whole reproduction in one process: `tdgen.runs.compiled`
    return result
