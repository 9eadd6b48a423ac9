"""The metric keys of the update rank: one key per definition, whichever entry point computes it.

Appendix B.1 of the paper steps the optimiser from its current state as it is: the uncentred
update matrix, whose rank is logged as ``interference/update_rank`` by every entry point (the
functions, both Probes, the agents, ``tdgen rank``, the SB3 callback). The drift-centred matrix
(the optimiser's zero-gradient step, e.g. Adam's momentum, subtracted from every row) is another
measure, so it has its own key, ``interference/update_rank_drift``. A network's name comes first
(``interference/actor_update_rank``), the fresh-network baseline last
(``interference/update_rank_drift_random``).

Plain strings only: the torch side reads these without loading JAX.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from tdgen.errors import unknown_name

CENTERS = ("none", "drift")  # the update matrix's centrings; "none" is the paper's
PREFIX = "interference/"


def update_rank_name(center: str = "none", target: str = "", random: bool = False) -> str:
    """The rank's name without the namespace: ``[<target>_]update_rank[_drift][_random]``."""
    if center not in CENTERS:
        raise unknown_name("center", center, CENTERS)
    head = f"{target}_" if target else ""
    return f"{head}update_rank{'_drift' if center == 'drift' else ''}{'_random' if random else ''}"


def update_rank_key(center: str = "none", target: str = "", random: bool = False) -> str:
    """The rank's metric key: returns ``interference/[<target>_]update_rank[_drift][_random]``."""
    return PREFIX + update_rank_name(center, target, random)


def read_update_rank(
    row: Mapping[str, Any], center: str = "none", target: str = "", random: bool = False,
    prefix: str = PREFIX,
) -> Any:  # fmt: skip
    """The rank of ``center`` in a metrics row (or a probe file with ``prefix=""``), or None.

    Runs written before the drift-centred rank had its own key logged it, for a run whose
    config says ``probe_center="drift"``, under the plain key: such a row is read there.
    """
    key = prefix + update_rank_name(center, target, random)
    if key in row:
        return row[key]
    legacy = prefix + update_rank_name("none", target, random)
    return row.get(legacy) if center == "drift" else None


CENTER_CHANGED = (
    "{who}: center= was not given, so interference/update_rank is the paper's uncentred update "
    "matrix (center='none'); the Probe's default was 'drift' before tdgen 0.2, and the "
    "drift-centred rank is now interference/update_rank_drift. Pass center='none' or "
    "center='drift' to silence this warning."
)
_warned: set[str] = set()


def resolve_center(center: str | None, who: str, stacklevel: int = 4) -> str:
    """``center`` checked against CENTERS; None is "none", with a FutureWarning once per process
    (the Probe's default centring changed, and with it what its update_rank key meant);
    ``stacklevel`` points the warning at the caller's line."""
    if center is None:
        if who not in _warned:
            _warned.add(who)
            warnings.warn(CENTER_CHANGED.format(who=who), FutureWarning, stacklevel=stacklevel)
        return "none"
    if center not in CENTERS:
        raise unknown_name("center", center, CENTERS)
    return center
