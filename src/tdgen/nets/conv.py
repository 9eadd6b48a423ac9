"""XLA's NHWC convolution with a gradient XLA:CPU can run fast inside loops.

Why: JAX differentiates `lax.conv_general_dilated` into two convolutions with permuted dimension
labels (the input gradient against the reversed kernel read as [kh, kw, c_out, c_in], labels
``b01f_01oi->b01f``; the kernel gradient with batch and features swapped, ``f01b_i01o->01bf``).
Outside a loop XLA:CPU rewrites them into the NHWC/HWIO form its Eigen convolution accepts
(``b01f_01io->b01f``); inside a while body (`lax.scan`: PPO's minibatch scan, a distillation
segment) it did not (jaxlib 0.10.2; jax-ml/jax#12868, open since 2022), and the non-canonical
convolutions ran as naive loops: the IMPALA student gradient at batch 64 took 28 s a step in a
scan against 1.05 s alone (docs/design-notes.md). `conv_nhwc` computes the same
convolution and gives both gradients as NHWC/HWIO convolutions over explicit transposes, so every
convolution of the compiled program has the canonical labels, in a loop or not. The numbers are
XLA's convolution's: the forward is the same op; the gradients sum in another order (equal to
float32 rounding, tested).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def conv_nhwc(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: str | Sequence[tuple]
) -> jax.Array:
    """x [n, h, w, c_in] * kernel [kh, kw, c_in, c_out] -> [n, oh, ow, c_out]; ``padding``:
    "SAME", "VALID" or ((lo, hi), (lo, hi)), as `lax.conv_general_dilated`."""
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding)
    else:
        pads = padding
    return _conv(x, kernel, tuple(strides), tuple(tuple(p) for p in pads))


def _forward(x, kernel, strides, pads):
    return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x, kernel, strides, pads):
    return _forward(x, kernel, strides, pads)


def _conv_fwd(x, kernel, strides, pads):
    return _forward(x, kernel, strides, pads), (x, kernel)


def _conv_bwd(strides, pads, residual, g):
    """dL/dx and dL/dkernel of y = conv(pad(x), kernel), both as NHWC/HWIO convolutions."""
    x, kernel = residual
    (kh, kw), (oh, ow) = kernel.shape[:2], g.shape[1:3]
    padded = [x.shape[1 + d] + sum(pads[d]) for d in range(2)]
    spans = [(o - 1) * s + k for o, s, k in zip((oh, ow), strides, (kh, kw), strict=True)]
    unused = [p - span for p, span in zip(padded, spans, strict=True)]  # rows no window reads
    # input gradient: the dilated output gradient against the reversed, transposed kernel
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    full = lax.conv_general_dilated(
        g, flipped, (1, 1), ((kh - 1, kh - 1 + unused[0]), (kw - 1, kw - 1 + unused[1])),
        lhs_dilation=strides, dimension_numbers=NHWC,
    )  # fmt: skip
    (top, _), (left, _) = pads
    dx = full[:, top : top + x.shape[1], left : left + x.shape[2], :]
    # kernel gradient: channels as the batch, samples as the features, g as a dilated kernel
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    dk = lax.conv_general_dilated(
        xp.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), "VALID",
        rhs_dilation=strides, dimension_numbers=NHWC,
    )  # fmt: skip
    return dx.astype(x.dtype), dk[:, :kh, :kw, :].transpose(1, 2, 0, 3).astype(kernel.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)

__all__ = ["NHWC", "conv_nhwc"]
