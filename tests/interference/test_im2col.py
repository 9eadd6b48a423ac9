"""Convolutions as im2col matrix products equal XLA's convolutions, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tdgen.interference.im2col import conv_as_matmul


@pytest.mark.parametrize(
    ("dims", "strides", "padding", "dilation"),
    [
        (("NHWC", "HWIO", "NHWC"), (2, 1), "SAME", (1, 1)),
        (("NCHW", "OIHW", "NCHW"), (1, 2), ((1, 0), (2, 1)), (2, 1)),
        (("NHWC", "HWIO", "NCHW"), (3, 3), "VALID", (1, 2)),
    ],
)
def test_conv_as_matmul_matches_convolution(dims, strides, padding, dilation):
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x_shape = (2, 9, 11, 3) if dims[0] == "NHWC" else (2, 3, 9, 11)
    w_shape = (3, 2, 3, 4) if dims[1] == "HWIO" else (4, 3, 3, 2)
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)

    def net(w, x):
        y = lax.conv_general_dilated(
            x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=dims
        )
        return jnp.tanh(y).sum() + jax.jit(jnp.sin)(y).mean()

    def value_and_grad(fn):
        return jax.jit(jax.value_and_grad(fn))(w, x)

    (got, got_grad), (want, want_grad) = value_and_grad(conv_as_matmul(net)), value_and_grad(net)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-5)
