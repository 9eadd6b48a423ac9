"""Shared building blocks: observation scaling and a convolution with two lowerings.

`Conv` holds the same parameters as `flax.linen.Conv` (``kernel`` [kh, kw, c_in, c_out] and
``bias``) but can compute the convolution either with XLA's native convolution (``impl="xla"``)
or as explicit im2col patches followed by one matrix multiply (``impl="im2col"``). The two give
the same numbers. The im2col form exists because, on CPU, a native convolution vmapped over
*parameters* (several seeds trained at once) lowers to a grouped convolution that ran ~10x slower
than a batched matrix multiply; the patches carry no parameters, so vmap folds them into the batch.
The ``xla`` lowering is `tdgen.nets.conv.conv_nhwc`: XLA's convolution with gradients that stay in
the NHWC/HWIO form XLA:CPU runs fast inside a lax.scan (JAX's own ran as naive loops there).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from tdgen.errors import InputError
from tdgen.nets.conv import conv_nhwc

CONV_IMPLS = ("xla", "im2col")


def scale_observation(obs: jnp.ndarray) -> jnp.ndarray:
    """Cast to float32; uint8 pixels are scaled to [0, 1] (Mnih et al. 2015), others kept as is."""
    if obs.dtype == jnp.uint8:
        return obs.astype(jnp.float32) / 255.0
    return obs.astype(jnp.float32)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def im2col(
    x: jnp.ndarray, kernel_size: Sequence[int], strides: Sequence[int], padding: str
) -> jnp.ndarray:
    """Patches of x [N, H, W, C] as [N, H', W', kh * kw * C], ordered (kh, kw, C) like a kernel."""
    kh, kw = kernel_size
    sh, sw = strides
    n, h, w, c = x.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), _same_padding(h, kh, sh), _same_padding(w, kw, sw), (0, 0)))
    elif padding != "VALID":
        raise InputError(f"unknown padding {padding!r}: choose 'SAME' or 'VALID'")
    h_pad, w_pad = x.shape[1], x.shape[2]
    h_out = (h_pad - kh) // sh + 1
    w_out = (w_pad - kw) // sw + 1
    patches = [
        lax.slice(
            x,
            (0, i, j, 0),
            (n, i + (h_out - 1) * sh + 1, j + (w_out - 1) * sw + 1, c),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(patches, axis=-1)


def max_pool_slices(x: jnp.ndarray, window: int = 3, stride: int = 2) -> jnp.ndarray:
    """Max-pool of x [N, H, W, C], SAME padding, as the maximum of window**2 strided slices.

    Equals `flax.linen.max_pool(x, (window, window), (stride, stride), "SAME")`; the gradient is
    XLA's select-and-scatter's (all of it to the first maximum of each window, row-major).
    """
    return _max_pool_slices(x, window, stride)


def _pool_slices(x, window, stride):
    n, h, w, c = x.shape
    (top, bottom), (left, right) = (
        _same_padding(h, window, stride),
        _same_padding(w, window, stride),
    )
    x = lax.pad(x, jnp.array(-jnp.inf, x.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0),
                                                  (0, 0, 0)))  # fmt: skip
    h_out, w_out = -(-h // stride), -(-w // stride)
    slices = [
        lax.slice(
            x,
            (0, i, j, 0),
            (n, i + (h_out - 1) * stride + 1, j + (w_out - 1) * stride + 1, c),
            (1, stride, stride, 1),
        )  # fmt: skip
        for i in range(window)
        for j in range(window)
    ]
    return slices, (top, bottom, left, right), x.shape


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool_slices(x, window, stride):
    slices, _, _ = _pool_slices(x, window, stride)
    return functools.reduce(jnp.maximum, slices)


def _max_pool_fwd(x, window, stride):
    out = _max_pool_slices(x, window, stride)
    return out, (x, out)


def _max_pool_bwd(window, stride, residual, g):
    x, out = residual
    slices, (top, bottom, left, right), padded = _pool_slices(x, window, stride)
    taken = jnp.zeros(out.shape, bool)
    grad = jnp.zeros(padded, g.dtype)
    zero = jnp.zeros((), g.dtype)
    for k, piece in enumerate(slices):  # first maximum in row-major window order wins
        i, j = divmod(k, window)
        hit = (piece == out) & ~taken
        taken = taken | hit
        h_span = (out.shape[1] - 1) * stride + 1
        w_span = (out.shape[2] - 1) * stride + 1
        config = ((0, 0, 0), (i, padded[1] - i - h_span, stride - 1),
                  (j, padded[2] - j - w_span, stride - 1), (0, 0, 0))  # fmt: skip
        grad = grad + lax.pad(jnp.where(hit, g, zero), zero, config)
    h, w = x.shape[1], x.shape[2]
    return (grad[:, top : top + h, left : left + w, :],)


_max_pool_slices.defvjp(_max_pool_fwd, _max_pool_bwd)


class Conv(nn.Module):
    """2-D convolution, NHWC, with flax.linen.Conv's parameters and an XLA or im2col lowering."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    impl: str = "xla"
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.impl not in CONV_IMPLS:
            raise InputError(f"unknown conv impl {self.impl!r}: choose one of {CONV_IMPLS}")
        batch_shape, (h, w, c) = x.shape[:-3], x.shape[-3:]
        x = x.reshape((-1, h, w, c))
        kh, kw = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (kh, kw, c, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        if self.impl == "xla":
            y = conv_nhwc(x, kernel, self.strides, self.padding)  # fast gradient in loops
        else:
            patches = im2col(x, self.kernel_size, self.strides, self.padding)
            y = patches @ kernel.reshape((kh * kw * c, self.features))
        y = y + bias
        return y.reshape(batch_shape + y.shape[1:])
