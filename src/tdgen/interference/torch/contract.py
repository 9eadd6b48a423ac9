"""The torch instrument's input contract, checked before anything is computed, so that a slip
reads as one tdgen message naming the contract instead of a torch internal.

A batch is a dict of tensors or numpy arrays [k, ...], or a named tuple of a buffer's fields
(SB3's and CleanRL's `ReplayBufferSamples`: observations, actions, ...) with ``obs=`` naming the
observation field; it is moved to the module's device. The loss takes one of two forms:
- ``loss_fn(module, transition)`` gets one transition (each field without its batch axis: call
  the network on ``t["obs"][None]``) and returns a 0-d tensor;
- with ``per_sample_loss=True``, ``loss_fn(module, batch)`` is a batch loss as training code
  writes it, returning one loss per transition, shape [k] (``reduction="none"``). It receives the
  batch as given (a named tuple stays one), and is called on batches of one transition.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from tdgen._extras import require
from tdgen.errors import InputError

torch = require("torch", "torch", "tdgen.interference.torch")

PER_SAMPLE = (
    "with per_sample_loss=True, loss_fn(module, batch) returns one loss per "
    "transition, shape [k] (reduction='none' in torch.nn.functional losses)"
)
CONTRACT = ("loss_fn(module, transition) gets one transition, each field without its batch axis "
            "(call the network on t['obs'][None]), and returns a 0-d tensor")  # fmt: skip
SLOW = (
    "tdgen.interference.torch: loss_fn cannot run under torch.func.vmap ({error}); per-sample "
    "gradients fall back to a loop of k backward passes, ~10x slower. Index with "
    "q.gather(-1, t['action'][None])[0] rather than q[t['action']], and do not call .item()."
)
_warned: set[str] = set()


def as_batch(batch: Any, obs: str = "obs", device: Any = None) -> dict[str, Any]:
    """``batch`` as a dict of tensors [k, ...] on ``device`` holding the field ``obs``;
    ValueError otherwise."""
    if hasattr(batch, "_asdict"):  # a named tuple of the buffer's fields
        batch = batch._asdict()
    if isinstance(batch, tuple | list):
        raise InputError(
            f"batch is a plain {type(batch).__name__}; pass a dict of tensors or numpy arrays "
            "[k, ...], or a named tuple of the buffer's fields (e.g. ReplayBufferSamples) with "
            "obs= naming the observation field"
        )
    if not isinstance(batch, Mapping):
        raise InputError(f"batch is a {type(batch).__name__}; pass a dict of tensors [k, ...]")
    out = on_device(batch, device)
    if obs not in out:
        fields = ", ".join(map(str, out)) or "none"
        hint = " (pass obs='observations')" if "observations" in out else ""
        raise InputError(f"batch has no observation field {obs!r} (its fields: {fields}); name "
                         f"it with obs=...{hint}")  # fmt: skip
    return out


def module_device(module: Any) -> Any:
    """The device of the module's parameters (CPU for a module without any): batches given as
    numpy arrays or CPU tensors are moved there."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def on_device(batch: Mapping[str, Any], device: Any) -> dict[str, Any]:
    """Every field of ``batch`` as a tensor on ``device`` (numpy arrays and tensors alike)."""
    return {key: torch.as_tensor(value, device=device) for key, value in batch.items()}


def check_loss(module: Any, loss_fn: Callable, batch: Mapping[str, Any]) -> None:
    """Run loss_fn on the first transition; one ValueError naming the contract if it fails or
    does not return a 0-d tensor."""
    transition = {key: value[0] for key, value in batch.items()}
    try:
        with torch.no_grad():
            value = loss_fn(module, transition)
    except Exception as error:  # noqa: BLE001 (any failure here is a broken contract)
        raise InputError(f"loss_fn failed on one transition ({type(error).__name__}: {error}); "
                         f"{CONTRACT}") from error  # fmt: skip
    if not (torch.is_tensor(value) and value.ndim == 0):
        shape = list(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise InputError(f"loss_fn returned {shape} for one transition, not a 0-d tensor "
                         f"(e.g. .squeeze() or [0] it); {CONTRACT}")  # fmt: skip


def per_sample(loss_fn: Callable, fields: type | None = None) -> Callable:
    """The one-transition loss of a per-sample batch loss: loss_fn on a batch of that one
    transition (fields given their batch axis back, in the named tuple type ``fields`` when the
    batch was one), element 0 of its [1] losses."""

    def transition_loss(module, transition):
        one = {key: value[None] for key, value in transition.items()}
        return loss_fn(module, fields(**one) if fields is not None else one)[0]

    return transition_loss


def check_per_sample_loss(module: Any, loss_fn: Callable, batch: Mapping[str, Any],
                          fields: type | None = None) -> None:  # fmt: skip
    """Run the batch loss on the first min(k, 2) transitions; one ValueError naming the contract
    if it fails or does not return one loss per transition."""
    n = min(2, len(next(iter(batch.values()))))
    part = {key: value[:n] for key, value in batch.items()}
    try:
        with torch.no_grad():
            value = loss_fn(module, fields(**part) if fields is not None else part)
    except Exception as error:  # noqa: BLE001 (any failure here is a broken contract)
        raise InputError(f"loss_fn failed on a batch of {n} ({type(error).__name__}: {error}); "
                         f"{PER_SAMPLE}") from error  # fmt: skip
    if not (torch.is_tensor(value) and tuple(value.shape) == (n,)):
        shape = list(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise InputError(f"loss_fn returned {shape} for a batch of {n}, not [{n}]; {PER_SAMPLE}")


def warn_slow(error: Exception) -> None:
    """Say once per process that per-sample gradients fell back to the loop, and why."""
    if "slow" not in _warned:
        _warned.add("slow")
        warnings.warn(SLOW.format(error=str(error).splitlines()[0]), RuntimeWarning, stacklevel=3)
