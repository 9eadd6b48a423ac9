"""`conv_nhwc` (the `xla` Conv lowering): XLA's convolution and its gradients, every convolution
of a compiled training loop in the NHWC/HWIO form XLA:CPU runs fast (jax-ml/jax#12868)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tdgen.interference.im2col import conv_as_matmul
from tdgen.nets import Conv, make_network
from tdgen.nets.conv import NHWC, conv_nhwc

CANONICAL = "b01f_01io->b01f"


def reference(x, kernel, strides, padding):
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=NHWC)


@pytest.mark.parametrize(
    "shape, kernel, strides, padding",
    [
        ((2, 8, 8, 3), 3, (1, 1), "SAME"),
        ((3, 9, 7, 2), 3, (2, 2), "SAME"),  # odd sizes: uneven SAME padding
        ((2, 10, 11, 2), 3, (2, 2), "VALID"),  # the last row/column read by no window
        ((1, 21, 21, 4), 8, (4, 4), "VALID"),  # Nature CNN's first layer, shrunk
        ((2, 7, 9, 3), (2, 3), (1, 2), ((1, 0), (2, 1))),  # explicit, asymmetric
    ],
)
def test_values_and_both_gradients_equal_xlas_convolution(shape, kernel, strides, padding):
    kx, kk, kg = jax.random.split(jax.random.PRNGKey(0), 3)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kk, (kh, kw, shape[-1], 5))
    out = reference(x, w, strides, padding)
    np.testing.assert_array_equal(conv_nhwc(x, w, strides, padding), out)
    g = jax.random.normal(kg, out.shape)
    ours = jax.vjp(lambda a, b: conv_nhwc(a, b, strides, padding), x, w)[1](g)
    theirs = jax.vjp(lambda a, b: reference(a, b, strides, padding), x, w)[1](g)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def dim_labels(compiled) -> set[str]:
    return set(re.findall(r"dim_labels=([^,\s]+)", compiled.as_text()))


def test_a_scanned_training_loop_compiles_to_canonical_convolutions_only():
    """Inside lax.scan XLA:CPU left JAX's own gradient convolutions non-canonical (naive loops,
    ~25x slower); with conv_nhwc every convolution of the loop's program is NHWC/HWIO. The Nature
    CNN at Atari's 84x84 (strides 4 and 2: dilated gradients; the IMPALA student's segment is
    tests/distill/test_procgen.py's). At toy image sizes (a window larger than its image) XLA
    swaps the operands of a gradient convolution, so the sizes are the real ones."""
    net = make_network("nature", "policy", 4, conv_impl="xla")
    x = jnp.zeros((2, 84, 84, 4), jnp.uint8)
    params = net.init(jax.random.PRNGKey(0), x)

    def loss(p):
        return jnp.mean(jax.nn.log_softmax(net.apply(p, x)) ** 2)

    def loop(p):
        def step(p, _):
            return jax.tree.map(lambda a, b: a - 1e-3 * b, p, jax.grad(loss)(p)), None

        return lax.scan(step, p, None, length=2)[0]

    labels = dim_labels(jax.jit(loop).lower(params).compile())
    assert labels == {CANONICAL}


def test_the_probes_im2col_rewrite_still_sees_the_convolution():
    """`conv_as_matmul` (the probes' im2col rewrite) unwraps conv_nhwc's custom VJP."""
    net = Conv(4, (3, 3), (2, 2), "SAME", "xla")
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 9, 3))
    params = net.init(jax.random.PRNGKey(0), x)
    rewritten = conv_as_matmul(net.apply)
    assert "custom_vjp_call" in str(jax.make_jaxpr(net.apply)(params, x))
    assert "conv_general_dilated" not in str(jax.make_jaxpr(rewritten)(params, x))
    np.testing.assert_allclose(rewritten(params, x), net.apply(params, x), rtol=1e-5, atol=1e-5)
