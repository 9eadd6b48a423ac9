"""Observation encoders: observations [..., *obs_shape] -> features [..., d].

Image encoders take NHWC observations (channels last, any leading batch dims); uint8 pixels are
scaled to [0, 1], other dtypes (MinAtar's bool planes) are cast to float32. Every encoder takes
``conv_impl`` ("xla" or "im2col", see `tdgen.nets.layers.Conv`) where it has convolutions.
Initialisation is flax's default (LeCun normal kernels, zero biases) throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.nets.layers import Conv, max_pool_slices, scale_observation

POOL_IMPLS = ("slices", "reduce_window")


def _flatten(x: jnp.ndarray, num_dims: int) -> jnp.ndarray:
    return x.reshape(x.shape[: x.ndim - num_dims] + (-1,))


class MLP(nn.Module):
    """Multi-layer perceptron with ReLU, flattening the trailing ``obs_ndim`` observation dims."""

    hidden_sizes: Sequence[int] = (64, 64)
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = _flatten(scale_observation(obs), self.obs_ndim)
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return x


class MinAtarCNN(nn.Module):
    """MinAtar network (Young & Tian 2019; Dopamine's MinAtar DQN): conv 16 3x3 s1, dense 128."""

    channels: int = 16
    hidden_size: int = 128
    padding: str = "VALID"  # Young & Tian's PyTorch Conv2d has no padding: 10x10 -> 8x8
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = scale_observation(obs)
        x = nn.relu(Conv(self.channels, (3, 3), (1, 1), self.padding, self.conv_impl)(x))
        x = _flatten(x, 3)
        return nn.relu(nn.Dense(self.hidden_size)(x))


class NatureCNN(nn.Module):
    """Nature DQN torso (Mnih et al. 2015): conv 32 8x8 s4, 64 4x4 s2, 64 3x3 s1, dense 512."""

    hidden_size: int = 512
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = scale_observation(obs)
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            conv = Conv(features, (kernel, kernel), (stride, stride), "VALID", self.conv_impl)
            x = nn.relu(conv(x))
        x = _flatten(x, 3)
        return nn.relu(nn.Dense(self.hidden_size)(x))


class ResidualBlock(nn.Module):
    """IMPALA residual block (Espeholt et al. 2018): x + conv(relu(conv(relu(x))))."""

    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        channels = x.shape[-1]
        y = Conv(channels, (3, 3), (1, 1), "SAME", self.conv_impl)(nn.relu(x))
        y = Conv(channels, (3, 3), (1, 1), "SAME", self.conv_impl)(nn.relu(y))
        return x + y


class ImpalaCNN(nn.Module):
    """IMPALA CNN (Espeholt et al. 2018) as in Raileanu & Fergus 2021: [16, 32, 32] + dense 256.

    ``pool_impl`` lowers the 3x3 stride-2 max-pool as the maximum of 9 strided slices ("slices",
    the default) or as XLA's reduce_window ("reduce_window"); the same numbers and gradients, but
    reduce_window's select-and-scatter gradient took ~70% of the update on XLA:CPU
    (docs/design-notes.md).
    """

    channels: Sequence[int] = (16, 32, 32)
    hidden_size: int = 256
    conv_impl: str = "xla"
    pool_impl: str = "slices"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
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
            x = ResidualBlock(self.conv_impl)(x)
            x = ResidualBlock(self.conv_impl)(x)
        x = nn.relu(_flatten(x, 3))
        x = nn.relu(nn.Dense(self.hidden_size)(x))
        return x.reshape(batch_shape + x.shape[-1:])
