"""The rules a batch of k transitions obeys, for both instruments (JAX and torch).

Plain Python and numpy, so the torch side checks its batches by the same rules without loading
JAX: every leaf has a leading axis of the same length k >= 1, and the "action" reduction reads
``batch["action"]``, one int per state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tdgen.errors import InputError
from tdgen.interference.reductions import Reduction


def transitions(leaves: Iterable[tuple[str, tuple[int, ...]]]) -> int:
    """The number of transitions k from (leaf name, shape) pairs; ValueError if there are no
    leaves, a leaf is a scalar, the leaves' leading axes differ or k is 0."""
    sizes = {}
    for name, shape in leaves:
        if not shape:
            raise InputError(
                f"batch leaf {name} is a scalar; every leaf needs a leading axis of length k "
                "(one entry per transition)"
            )
        sizes[name] = shape[0]
    if not sizes:
        raise InputError("batch is empty: it has no array leaves (expected e.g. {'obs': [k, ...]})")
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise InputError(f"batch leaves have different leading axes (transitions): {found}")
    k = next(iter(sizes.values()))
    if k == 0:
        raise InputError("batch is empty: it holds 0 transitions; the update matrix needs k >= 1")
    return k


def shape_of(leaf: Any) -> tuple[int, ...]:
    """A leaf's shape without copying it (jax and numpy arrays, torch tensors, lists)."""
    return tuple(getattr(leaf, "shape", None) or np.shape(leaf))


def mapping_transitions(batch: Mapping[str, Any]) -> int:
    """`transitions` of a flat dict of arrays, leaves named as JAX's keystr names them."""
    return transitions((f"[{key!r}]", shape_of(leaf)) for key, leaf in batch.items())


def checked_actions(batch: Any, reduction: Reduction, m: int, k: int) -> np.ndarray:
    """batch["action"] as [m] int32 for reduce="action" (which needs m == k); zeros otherwise."""
    if reduction.name != "action":
        return np.zeros((m,), np.int32)
    if not isinstance(batch, Mapping) or "action" not in batch:
        raise InputError("reduce='action' reads batch['action'], which is missing")
    if m != k:
        raise InputError(
            f"reduce='action' pairs state j with the action of transition j, but there are "
            f"{m} inputs and {k} transitions"
        )
    action = batch["action"]
    if hasattr(action, "detach"):  # a torch tensor, on any device
        action = action.detach().cpu()
    actions = np.asarray(action).astype(np.int32)
    if actions.shape != (k,):
        raise InputError(f"batch['action'] must have shape ({k},), got {actions.shape}")
    return actions
