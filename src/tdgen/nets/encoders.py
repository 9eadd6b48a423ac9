"""Observation encoders: observations [..., *obs_shape] -> features [..., d].

Image encoders take NHWC observations (channels last, any leading batch dims); uint8 pixels are
scaled to [0, 1], other dtypes (MinAtar's bool planes) are cast to float32. Every encoder takes
``conv_impl`` ("xla" or "im2col", see `tdgen.nets.layers.Conv`) where it has convolutions.
Initialisation is flax's default (LeCun normal kernels, zero biases) throughout.

Every encoder takes ``norm`` ("none" | "layer") and ``activation`` ("relu" | "crelu" | "fourier"),
applied to every pre-activation by `tdgen.nets.options.hidden_units`: LayerNorm directly before each
nonlinearity (over channels at each position for feature maps), and, for the concatenating
activations, half the pre-activation units so that each layer's output width and the feature
size equal the ReLU network's. Encoder parameter counts, heads excluded
(LayerNorm adds a scale and a bias per normalised unit):

==================  =========  ===============  ============  ======================
encoder (defaults)  relu       crelu / fourier  relu + layer  crelu/fourier + layer
==================  =========  ===============  ============  ======================
MLP, 4 inputs       4,480      2,240            4,736         2,368
MinAtarCNN 10x10x4  131,792    65,896           132,080       66,040
NatureCNN 84x84x4   1,684,128  842,064          1,685,472     842,736
ImpalaCNN 64x64x3   622,144    621,936          623,360       622,736
==================  =========  ===============  ============  ======================

MLP, MinAtarCNN and NatureCNN halve every kernel and bias; ImpalaCNN keeps its kernel sizes
(its residual stream doubles the fan-in after each nonlinearity on it) and halves the biases
of each block's Conv_0 and of Dense_0.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.nets.layers import Conv, max_pool_slices, scale_observation
from tdgen.nets.options import check_options, hidden_units, preactivation_width

POOL_IMPLS = ("slices", "reduce_window")


def _flatten(x: jnp.ndarray, num_dims: int) -> jnp.ndarray:
    return x.reshape(x.shape[: x.ndim - num_dims] + (-1,))


class MLP(nn.Module):
    """Multi-layer perceptron, flattening the trailing ``obs_ndim`` observation dims.

    Layer i maps the previous width to ``hidden_sizes[i]`` outputs (half as many Dense units
    with crelu/fourier); norm="layer" adds LayerNorm_i after Dense_i.
    """

    hidden_sizes: Sequence[int] = (64, 64)
    obs_ndim: int = 1
    norm: str = "none"
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        check_options(self.norm, self.activation)
        x = _flatten(scale_observation(obs), self.obs_ndim)
        for size in self.hidden_sizes:
            units = preactivation_width(size, self.activation, "hidden_sizes")
            x = hidden_units(nn.Dense(units)(x), self.norm, self.activation)
        return x


class MinAtarCNN(nn.Module):
    """MinAtar network (Young & Tian 2019; Dopamine's MinAtar DQN): conv 16 3x3 s1, dense 128."""

    channels: int = 16
    hidden_size: int = 128
    padding: str = "VALID"  # Young & Tian's PyTorch Conv2d has no padding: 10x10 -> 8x8
    conv_impl: str = "xla"
    norm: str = "none"
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        check_options(self.norm, self.activation)
        x = scale_observation(obs)
        channels = preactivation_width(self.channels, self.activation, "channels")
        conv = Conv(channels, (3, 3), (1, 1), self.padding, self.conv_impl)
        x = _flatten(hidden_units(conv(x), self.norm, self.activation), 3)
        units = preactivation_width(self.hidden_size, self.activation, "hidden_size")
        return hidden_units(nn.Dense(units)(x), self.norm, self.activation)


class NatureCNN(nn.Module):
    """Nature DQN torso (Mnih et al. 2015): conv 32 8x8 s4, 64 4x4 s2, 64 3x3 s1, dense 512."""

    hidden_size: int = 512
    conv_impl: str = "xla"
    norm: str = "none"
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        check_options(self.norm, self.activation)
        x = scale_observation(obs)
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            features = preactivation_width(features, self.activation, "channels")
            conv = Conv(features, (kernel, kernel), (stride, stride), "VALID", self.conv_impl)
            x = hidden_units(conv(x), self.norm, self.activation)
        x = _flatten(x, 3)
        units = preactivation_width(self.hidden_size, self.activation, "hidden_size")
        return hidden_units(nn.Dense(units)(x), self.norm, self.activation)


class ResidualBlock(nn.Module):
    """IMPALA residual block (Espeholt et al. 2018): x + conv(relu(conv(relu(x)))).

    Each relu becomes `hidden_units` (LayerNorm_0 on the stream x, LayerNorm_1 on Conv_0's
    output). The stream keeps its C channels, so with crelu/fourier Conv_0 maps 2C -> C/2
    (as many weights as C -> C) and Conv_1 maps C -> C.
    """

    conv_impl: str = "xla"
    norm: str = "none"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        check_options(self.norm, self.activation)
        channels = x.shape[-1]
        units = preactivation_width(channels, self.activation, "channels")
        y = Conv(units, (3, 3), (1, 1), "SAME", self.conv_impl)(
            hidden_units(x, self.norm, self.activation)
        )
        y = Conv(channels, (3, 3), (1, 1), "SAME", self.conv_impl)(
            hidden_units(y, self.norm, self.activation)
        )
        return x + y


class ImpalaCNN(nn.Module):
    """IMPALA CNN (Espeholt et al. 2018) as in Raileanu & Fergus 2021: [16, 32, 32] + dense 256.

    ``pool_impl`` lowers the 3x3 stride-2 max-pool as the maximum of 9 strided slices ("slices",
    the default) or as XLA's reduce_window ("reduce_window"); the same numbers and gradients, but
    reduce_window's select-and-scatter gradient took ~70% of the update on XLA:CPU
    (docs/design-notes.md).

    ``norm``/``activation`` apply before every nonlinearity, as in a pre-activation ResNet: in
    the blocks and on the last stage's output (LayerNorm_0, per position) before the flatten.
    The nonlinearities on the residual stream cannot halve its width, so with crelu/fourier they
    double the fan-in of the layer after them (each block's Conv_0, and Dense_0, which maps
    2 * 8*8*32 -> hidden_size / 2); kernels keep the ReLU network's sizes, biases halve.
    """

    channels: Sequence[int] = (16, 32, 32)
    hidden_size: int = 256
    conv_impl: str = "xla"
    pool_impl: str = "slices"
    norm: str = "none"
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        check_options(self.norm, self.activation)
        if self.pool_impl not in POOL_IMPLS:
            raise InputError(f"unknown pool impl {self.pool_impl!r}: choose one of {POOL_IMPLS}")
        x = scale_observation(obs)
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        for channels in self.channels:
            x = Conv(channels, (3, 3), (1, 1), "SAME", self.conv_impl)(x)
            if self.pool_impl == "slices":
                x = max_pool_slices(x, 3, 2)
            else:
                x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            for _ in range(2):
                x = ResidualBlock(self.conv_impl, self.norm, self.activation)(x)
        x = _flatten(hidden_units(x, self.norm, self.activation), 3)
        units = preactivation_width(self.hidden_size, self.activation, "hidden_size")
        x = hidden_units(nn.Dense(units)(x), self.norm, self.activation)
        return x.reshape(batch_shape + x.shape[-1:])
