"""Hidden-unit options shared by every encoder: a normalisation and an activation by name.

``norm``: "none", or "layer" (LayerNorm on the pre-activation, directly before the nonlinearity,
as in Lyle et al. 2024, "Disentangling the causes of plasticity loss", whose remedy, LayerNorm +
weight decay, targets the drift of pre-activation statistics; Plasticine's PyTorch IMPALA instead
normalises the *input* of each conv, after its ReLU). Feature maps are normalised over channels
at each position (the last axis), as torch's ``nn.LayerNorm(channels)`` in Plasticine's IMPALA:
per-position statistics keep a unit's normalisation independent of the image size.

``activation``: "relu"; "crelu", concat(relu(z), relu(-z)) (Abbas et al. 2023, "Loss of
plasticity in continual deep RL"; Shang et al. 2016); "fourier", concat(sin(z), cos(z)) of the
same pre-activation, the deep Fourier features of Lewandowski et al. 2024 ("Plastic learning with
deep Fourier features", ICLR 2025; Plasticine's DFF layer computes the same). Feature maps
concatenate over channels at each position. The two concatenating activations double the width;
layers keep the ReLU network's *output* width by computing half as many pre-activation units
(`preactivation_width`), so feature sizes and heads are unchanged and fan-ins too, except after
IMPALA's residual stream, whose width cannot halve (see `tdgen.nets.encoders.ImpalaCNN`).
Plasticine instead keeps the units and doubles the next layer's fan-in everywhere.

The normalisation and the concatenating activations are named jit calls ("layer_norm", "crelu",
"fourier_features") so that `tdgen.interference.activations` can follow a layer's output through
them to its units; the defaults ("none", "relu") call `nn.relu` exactly as before.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from tdgen.errors import InputError, unknown_name

NORMS = ("none", "layer")
ACTIVATIONS = ("relu", "crelu", "fourier")
DOUBLING = ("crelu", "fourier")
LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm's default


def check_options(norm: str, activation: str) -> None:
    """InputError naming the choices for an unknown ``norm`` or ``activation``."""
    if norm not in NORMS:
        raise unknown_name("norm", norm, NORMS)
    if activation not in ACTIVATIONS:
        raise unknown_name("activation", activation, ACTIVATIONS)


def preactivation_width(width: int, activation: str, field: str) -> int:
    """Pre-activation units a layer computes so that its output has ``width`` units."""
    if activation not in DOUBLING:
        return width
    if width % 2:
        raise InputError(
            f"{field}: width {width} is odd; activation {activation!r} concatenates two halves, "
            "so every hidden width must be even"
        )
    return width // 2


@jax.jit
def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """(x - mean) / sqrt(var + eps) * scale + bias over the last axis (Ba et al. 2016)."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS) * scale + bias


@jax.jit
def crelu(x: jax.Array) -> jax.Array:
    """concat(relu(x), relu(-x)) on the last axis: [..., d] -> [..., 2d]; every unit passes
    gradient on one of its two halves whatever its sign (Abbas et al. 2023)."""
    return jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1)


@jax.jit
def fourier_features(x: jax.Array) -> jax.Array:
    """concat(sin(x), cos(x)) on the last axis: [..., d] -> [..., 2d] (Lewandowski et al. 2024)."""
    return jnp.concatenate([jnp.sin(x), jnp.cos(x)], axis=-1)


class LayerNorm(nn.Module):
    """LayerNorm over the last axis with flax.linen.LayerNorm's parameters (``scale`` ones,
    ``bias`` zeros, eps 1e-6), computed by the named `layer_norm`."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones_init(), (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros_init(), (x.shape[-1],))
        return layer_norm(x, scale, bias)


def activate(x: jax.Array, activation: str) -> jax.Array:
    """The named activation of x [..., d]: [..., d] for relu, [..., 2d] for crelu and fourier."""
    if activation == "relu":
        return nn.relu(x)
    if activation == "crelu":
        return crelu(x)
    if activation == "fourier":
        return fourier_features(x)
    raise unknown_name("activation", activation, ACTIVATIONS)


def hidden_units(x: jax.Array, norm: str, activation: str) -> jax.Array:
    """The units of a pre-activation x [..., d]: activate(LayerNorm(x)) or activate(x).

    Call it inside a compact module's ``__call__``: the LayerNorm it makes is that module's child
    (``LayerNorm_0``, ``LayerNorm_1``, ... in call order).
    """
    if norm == "layer":
        x = LayerNorm()(x)
    elif norm != "none":
        raise unknown_name("norm", norm, NORMS)
    return activate(x, activation)
