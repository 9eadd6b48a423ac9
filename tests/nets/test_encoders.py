import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.nets import Conv, ImpalaCNN, MinAtarCNN, NatureCNN, im2col, make_network
from tdgen.nets.encoders import MLP


def n_params(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def conv_reference(x, kernel, bias, stride, padding):
    """Plain loops over output pixels (TF/XLA 'SAME' padding: extra pixel at the end)."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nabc,abcf->nf", patch, kernel)
    return out + bias


@pytest.mark.parametrize("impl", ["xla", "im2col"])
@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding"),
    [(7, 3, 1, "SAME"), (9, 4, 2, "VALID"), (8, 3, 2, "SAME")],
)
def test_conv_matches_plain_reference(impl, size, kernel, stride, padding):
    x = np.asarray(jax.random.normal(jax.random.key(0), (2, size, size, 3)))
    conv = Conv(5, (kernel, kernel), (stride, stride), padding, impl)
    params = conv.init(jax.random.key(1), x)
    k, b = np.asarray(params["params"]["kernel"]), np.asarray(params["params"]["bias"])
    b = b + 0.5  # a non-zero bias, so adding it is tested too
    params = {"params": {"kernel": k, "bias": b}}
    np.testing.assert_allclose(
        conv.apply(params, x),
        conv_reference(x, k, b, stride, padding),
        rtol=1e-4,
        atol=1e-4,
    )


def test_im2col_patch_order_matches_kernel_layout():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    patches = im2col(x, (2, 2), (2, 2), "VALID")
    assert patches.shape == (2, 2, 2, 12)
    np.testing.assert_array_equal(patches[0, 0, 0], x[0, 0:2, 0:2, :].reshape(-1))


def test_unknown_conv_impl_is_rejected():
    with pytest.raises(ValueError, match="unknown conv impl 'fft'"):
        Conv(4, (3, 3), impl="fft").init(jax.random.key(0), jnp.zeros((1, 5, 5, 2)))


@pytest.mark.parametrize(
    ("module", "obs_shape", "feature_dim"),
    [
        (MLP(hidden_sizes=(32, 16), obs_ndim=3), (10, 10, 4), 16),
        (MinAtarCNN(), (10, 10, 4), 128),
        (NatureCNN(), (84, 84, 4), 512),
        (ImpalaCNN(), (64, 64, 3), 256),
    ],
)
def test_encoder_feature_shapes_with_any_batch_dims(module, obs_shape, feature_dim):
    # shapes are traced, not compiled, to keep the suite fast on 2 cores
    obs = jax.ShapeDtypeStruct((2, 3, *obs_shape), jnp.uint8)
    params = jax.eval_shape(module.init, jax.random.key(0), obs)
    assert jax.eval_shape(module.apply, params, obs).shape == (2, 3, feature_dim)
    one_batch = jax.ShapeDtypeStruct((3, *obs_shape), jnp.uint8)
    assert jax.eval_shape(module.apply, params, one_batch).shape == (3, feature_dim)


def test_nature_cnn_parameter_count():
    # Mnih et al. 2015 with 18 actions and 4 frames: convs 8,224 + 32,832 + 36,928,
    # dense 3136*512+512 = 1,606,144, Q head 512*18+18 = 9,234.
    net = make_network("nature", "q", 18)
    obs = jax.ShapeDtypeStruct((1, 84, 84, 4), jnp.uint8)
    assert n_params(jax.eval_shape(net.init, jax.random.key(0), obs)) == 1_693_362


def test_minatar_and_impala_parameter_counts():
    # MinAtar: conv 3*3*4*16+16 = 592, 8*8*16 -> 128: 131,200, Q head 128*6+6 = 774.
    net = make_network("minatar", "q", 6)
    obs = jax.ShapeDtypeStruct((1, 10, 10, 4), jnp.float32)
    assert n_params(jax.eval_shape(net.init, jax.random.key(0), obs)) == 132_566
    # IMPALA [16, 32, 32]: 64 -> 32 -> 16 -> 8, so 8*8*32 = 2048 -> 256.
    impala = ImpalaCNN()
    obs = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.uint8)
    params = jax.eval_shape(impala.init, jax.random.key(0), obs)
    dense = params["params"]["Dense_0"]["kernel"]
    assert dense.shape == (2048, 256)


def test_uint8_pixels_are_scaled_to_unit_interval():
    net = MinAtarCNN()
    obs = jnp.full((1, 10, 10, 4), 255, jnp.uint8)
    params = jax.jit(net.init)(jax.random.key(0), obs)
    apply = jax.jit(net.apply)
    np.testing.assert_allclose(
        apply(params, obs), apply(params, jnp.ones((1, 10, 10, 4))), rtol=1e-5
    )


@pytest.mark.parametrize("encoder", ["minatar"])  # Conv itself is checked for every padding above
def test_im2col_and_xla_give_the_same_network(encoder):
    shape = (3, 10, 10, 4) if encoder == "minatar" else (2, 16, 16, 3)
    obs = jax.random.randint(jax.random.key(1), shape, 0, 256).astype(jnp.uint8)
    fast = make_network(encoder, "q", 5, conv_impl="im2col")
    plain = make_network(encoder, "q", 5, conv_impl="xla")
    params = jax.jit(plain.init)(jax.random.key(0), obs)
    fast_params = jax.eval_shape(fast.init, jax.random.key(0), obs)
    assert jax.tree.structure(params) == jax.tree.structure(fast_params)
    np.testing.assert_allclose(
        jax.jit(fast.apply)(params, obs), jax.jit(plain.apply)(params, obs), atol=1e-5
    )
