"""Compose an encoder and one or more heads by name: `make_network("minatar", "q", 6)`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.nets.encoders import MLP, ImpalaCNN, MinAtarCNN, NatureCNN
from tdgen.nets.heads import AdvantageHead, C51Head, PolicyHead, QHead, QuantileHead, ValueHead

ENCODERS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "minatar": MinAtarCNN,
    "nature": NatureCNN,
    "impala": ImpalaCNN,
}
HEADS: dict[str, type[nn.Module]] = {
    "q": QHead,
    "c51": C51Head,
    "qr": QuantileHead,
    "policy": PolicyHead,
    "value": ValueHead,
    "advantage": AdvantageHead,
}


class Network(nn.Module):
    """An encoder followed by heads; one head returns its array, several a dict by head name.

    ``action`` is used only by the ``advantage`` head (None: advantages of every action).
    """

    encoder: nn.Module
    heads: Sequence[nn.Module]
    head_names: Sequence[str]

    def encode(self, obs: jnp.ndarray) -> jnp.ndarray:
        """Features [..., d] of observations [..., *obs_shape]."""
        return self.encoder(obs)

    def __call__(
        self, obs: jnp.ndarray, action: jnp.ndarray | None = None
    ) -> jnp.ndarray | dict[str, jnp.ndarray]:
        features = self.encoder(obs)
        outputs = {
            name: head(features, action) if name == "advantage" else head(features)
            for name, head in zip(self.head_names, self.heads, strict=True)
        }
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs


def _field_names(module: type[nn.Module]) -> set[str]:
    return {f.name for f in dataclasses.fields(module) if f.name not in ("parent", "name")}


def make_network(encoder: str, head: str, num_actions: int, **kwargs) -> Network:
    """Network from an encoder name and a head name, or heads joined by '+' ("policy+value").

    Keyword arguments go to whichever module declares them (``conv_impl``, ``hidden_size``,
    ``hidden_sizes``, ``obs_ndim``, ``num_atoms``, the encoders' ``norm`` and ``activation``, see
    `tdgen.nets.options`, ...); an argument no module takes is an error.
    """
    if encoder not in ENCODERS:
        raise InputError(f"unknown encoder {encoder!r}: choose one of {', '.join(ENCODERS)}")
    head_names = head.split("+")
    for name in head_names:
        if name not in HEADS:
            raise InputError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    if len(set(head_names)) != len(head_names):
        raise InputError(f"head {head!r} names a head twice")
    if num_actions < 1:
        raise InputError(f"num_actions must be positive, got {num_actions}")

    encoder_cls = ENCODERS[encoder]
    encoder_kwargs = {k: v for k, v in kwargs.items() if k in _field_names(encoder_cls)}
    heads, used = [], set(encoder_kwargs)
    for name in head_names:
        head_cls = HEADS[name]
        fields = _field_names(head_cls)
        head_kwargs = {k: v for k, v in kwargs.items() if k in fields}
        used |= set(head_kwargs)
        if "num_actions" in fields:
            head_kwargs["num_actions"] = num_actions
        heads.append(head_cls(**head_kwargs, name=name))
    unused = sorted(set(kwargs) - used)
    if unused:
        raise TypeError(
            f"make_network({encoder!r}, {head!r}) got unexpected arguments {unused}: "
            f"the encoder takes {sorted(_field_names(encoder_cls))}"
        )
    return Network(
        encoder=encoder_cls(**encoder_kwargs, name="encoder"),
        heads=tuple(heads),
        head_names=tuple(head_names),
    )
