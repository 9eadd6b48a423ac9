"""Interventions as config values: ``"name"`` or ``"name:field=value,field=value"``.

A run's config holds its interventions as such strings (``interventions=("redo",
"shrink_perturb:lam=0.4,sigma=0.1,period=5000")``; on the command line ``--interventions redo
reset:layers=2``), so configs stay plain data that checkpoints, reuse and sweeps compare. `parse`
turns them into `Intervention` objects, refusing in one line an unknown name or field, a bad
value, and a combination that cannot run together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError, unknown_name


def parse_one(spec: str, registry: dict[str, type[Intervention]]) -> Intervention:
    """The intervention that ``spec`` names, with its fields set (values parsed as the field's
    annotated type: int, float, bool or str)."""
    name, _, settings = spec.partition(":")
    name = name.strip()
    if name not in registry:
        raise unknown_name("intervention", name, tuple(registry))
    cls = registry[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for item in filter(None, (s.strip() for s in settings.split(","))):
        key, eq, raw = item.partition("=")
        if not eq:
            raise InputError(f"intervention {spec!r}: write settings as field=value, got {item!r}")
        if key not in fields:
            raise unknown_name(f"setting of intervention {name!r}", key, tuple(fields) or ("none",))
        values[key] = _value(spec, key, raw.strip(), fields[key].type)
    return cls(**values)


def _value(spec: str, key: str, raw: str, annotation: str):
    """``raw`` as the field's annotated type (its first: ``int | None`` is an int)."""
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(
        str(annotation).split("|")[0].strip()
    )
    if kind is None:
        raise InputError(
            f"intervention {spec!r}: {key} ({annotation}) cannot be set from the command line"
        )
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        return kind(raw)
    except ValueError:
        expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        raise InputError(f"intervention {spec!r}: {key}={raw!r} is not {expected[kind]}") from None


def check_combination(interventions: Sequence[Intervention]) -> None:
    """Refuse, in one line, interventions that cannot run together: one name twice, or two that
    set the same network option to different values (crelu and fourier both choose the
    activation)."""
    names = [i.name for i in interventions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"intervention {twice[0]!r} is given twice: give it once")
    chosen: dict[str, tuple[str, object]] = {}
    for intervention in interventions:
        for option, value in intervention.network_options().items():
            if option in chosen and chosen[option][1] != value:
                raise InputError(
                    f"interventions {chosen[option][0]!r} and {intervention.name!r} both set the "
                    f"network's {option} ({chosen[option][1]!r} vs {value!r}): choose one"
                )
            chosen[option] = (intervention.name, value)
