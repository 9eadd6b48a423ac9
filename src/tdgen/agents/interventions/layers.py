"""The kernel layers of a `tdgen.nets.Network` in call order, and resetting optimiser entries.

What the periodic events share: which Dense/Conv layers a network calls and in what order (traced
once at the shapes of a call, with `flax.linen.intercept_methods`, so it also works under jit and
vmap), which of them belong to the encoder and which to the heads (every top-level module other
than ``encoder``), which are followed by a normalisation, the rows of a consumer's kernel that read
a producer's units, and the optimiser-state entries of chosen parameters set back to a fresh
state's values (reached through `optax.tree_utils.tree_map_params`, so Adam, RMSProp and chains
such as clip + adam all work).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from tdgen.errors import InputError

ENCODER = "encoder"
SEQUENTIAL_ENCODERS = ("mlp", "minatar", "nature")

Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class KernelLayer:
    """One module owning a ``kernel`` (Dense or Conv): its path in ``variables["params"]``, whether
    it is in a head, and the path of the normalisation called right after it (None: none)."""

    path: Path
    head: bool
    norm: Path | None

    @property
    def name(self) -> str:
        """The path joined with "/", as `tdgen.interference.activations` names layers."""
        return "/".join(self.path)


def kernel_layers(network: nn.Module, variables, obs: jax.Array) -> list[KernelLayer]:
    """The kernel layers of ``network.apply(variables, obs)`` in call order (traced, not run)."""
    return traced_kernel_layers(lambda: network.apply(variables, obs))


def traced_kernel_layers(run: Callable[[], Any]) -> list[KernelLayer]:
    """The kernel layers a flax call ``run()`` (an apply, or an init: ``context.init_params``)
    calls, in call order; abstract evaluation only."""
    calls: list[list] = []  # [path, "kernel" | "norm" | None] in call order

    def record(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        call = [tuple(context.module.path), None]
        calls.append(call)
        out = next_fun(*args, **kwargs)
        own = context.module.variables.get("params", {})  # after the call: also under init
        call[1] = "kernel" if "kernel" in own else "norm" if "scale" in own else None
        return out

    with nn.intercept_methods(record):
        jax.eval_shape(run)
    calls = [call for call in calls if call[1] is not None]
    layers, seen = [], set()
    for i, (path, what) in enumerate(calls):
        if what != "kernel" or path in seen:
            continue
        seen.add(path)
        norm = calls[i + 1][0] if i + 1 < len(calls) and calls[i + 1][1] == "norm" else None
        layers.append(KernelLayer(path, path[0] != ENCODER, norm))
    if not layers:
        raise InputError("the network has no Dense or Conv layer")
    return layers


def encoder_name(network: nn.Module) -> str:
    """The `tdgen.nets.ENCODERS` name of the network's encoder ("mlp", "impala", ...)."""
    from tdgen.nets import ENCODERS

    names = {cls: name for name, cls in ENCODERS.items()}
    return names.get(type(getattr(network, "encoder", None)), "unknown")


def check_sequential(network: nn.Module, intervention: str) -> None:
    """InputError unless the encoder is a plain chain of layers (mlp, minatar, nature)."""
    encoder = encoder_name(network)
    if encoder not in SEQUENTIAL_ENCODERS:
        raise InputError(
            f"intervention {intervention!r} needs a sequential encoder "
            f"({', '.join(SEQUENTIAL_ENCODERS)}); encoder {encoder!r} has residual blocks whose "
            "units feed more than the next layer: choose another encoder or intervention"
        )


def flat_params(variables) -> dict[tuple[str, ...], jax.Array]:
    """{(module, ..., leaf name): array} of ``variables["params"]``."""
    return traverse_util.flatten_dict(dict(variables["params"]))


def with_flat_params(variables, flat: Mapping[tuple[str, ...], jax.Array]):
    """The variables with ``params`` replaced by the flat dict ``flat`` (other collections kept)."""
    return {**variables, "params": traverse_util.unflatten_dict(dict(flat))}


def under(key: tuple[str, ...], paths) -> bool:
    """Whether a flat parameter key lies under one of the module ``paths``."""
    return any(key[: len(p)] == tuple(p) for p in paths)


def consumer_rows(units: jax.Array, producer_kernel: jax.Array, consumer_kernel: jax.Array):
    """Mask of the consumer kernel's entries that read the producer's units flagged in ``units``.

    units: [c] bool, one per output column of the producer. A Conv consumer [kh, kw, c, c_out]
    reads unit i through ``kernel[:, :, i, :]``. A Dense consumer [n_in, d_out] after a Conv reads
    the flattened map, flatten order (h, w, c), so unit i is every row r with r % c == i; after a
    Dense it reads unit i through row i, and rows past c (an advantage head's one-hot actions,
    concatenated after the features) read no unit.
    """
    c = units.shape[0]
    if consumer_kernel.ndim == 4:
        if consumer_kernel.shape[2] != c:
            raise InputError(f"a conv reading {c} units has {consumer_kernel.shape[2]} inputs")
        return jnp.broadcast_to(units[None, None, :, None], consumer_kernel.shape)
    n_in = consumer_kernel.shape[0]
    if producer_kernel.ndim == 4:
        if n_in % c:
            raise InputError(f"a dense layer with {n_in} inputs cannot read a {c}-channel map")
        rows = jnp.tile(units, n_in // c)
    else:
        if n_in < c:
            raise InputError(f"a dense layer with {n_in} inputs cannot read {c} units")
        rows = jnp.concatenate([units, jnp.zeros(n_in - c, bool)])
    return jnp.broadcast_to(rows[:, None], consumer_kernel.shape)


def reset_optimizer_entries(optimizer: optax.GradientTransformation, opt_state, variables, reset):
    """``opt_state`` with every entry where ``reset`` is True set to a fresh ``optimizer.init``'s
    value (zero moments for Adam and RMSProp); counts and other non-parameter leaves are kept.

    reset: a tree shaped as ``variables`` of bool arrays (or Python bools) of the leaves' shapes.
    """
    fresh = optimizer.init(variables)
    reset_state = optax.tree_utils.tree_map_params(
        optimizer, lambda _, r: r, opt_state, reset, transform_non_params=lambda _: False
    )
    return jax.tree.map(lambda s, f, r: jnp.where(r, f, s), opt_state, fresh, reset_state)


def flags(variables, flat: Mapping[tuple[str, ...], jax.Array | bool]) -> dict:
    """A ``variables``-shaped tree of flags: ``flat`` for the params, False for other collections
    (what `reset_optimizer_entries` takes)."""
    others = {k: jax.tree.map(lambda _: False, v) for k, v in variables.items() if k != "params"}
    return {**others, "params": traverse_util.unflatten_dict(dict(flat))}


def module_flags(variables, paths) -> dict:
    """Flags True for every parameter under one of the module ``paths``."""
    return flags(variables, {k: under(k, paths) for k in flat_params(variables)})


__all__ = [
    "KernelLayer",
    "check_sequential",
    "consumer_rows",
    "encoder_name",
    "flags",
    "flat_params",
    "kernel_layers",
    "module_flags",
    "reset_optimizer_entries",
    "traced_kernel_layers",
    "under",
    "with_flat_params",
]
