"""Encoder options (tdgen.nets.options): defaults bit-identical to the plain ReLU networks,
LayerNorm / CReLU / deep Fourier features as their papers define them, widths and parameter
counts as documented, and the instrument still finding every hidden layer's units."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.errors import InputError
from tdgen.interference.activations import capture_activations
from tdgen.interference.traced_activations import capture_traced_activations
from tdgen.nets import ImpalaCNN, MinAtarCNN, NatureCNN, make_network
from tdgen.nets.encoders import MLP
from tdgen.nets.layers import Conv, max_pool_slices, scale_observation
from tdgen.nets.options import LayerNorm, crelu, fourier_features, layer_norm


def _flatten(x, num_dims):
    return x.reshape(x.shape[: x.ndim - num_dims] + (-1,))


# The encoders as they were written before the options, plain ReLU: the reference for defaults.
class PlainMLP(nn.Module):
    hidden_sizes: Sequence[int] = (64, 64)
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = _flatten(scale_observation(obs), self.obs_ndim)
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return x


class PlainMinAtar(nn.Module):
    @nn.compact
    def __call__(self, obs):
        x = nn.relu(Conv(16, (3, 3), (1, 1), "VALID")(scale_observation(obs)))
        return nn.relu(nn.Dense(128)(_flatten(x, 3)))


class PlainNature(nn.Module):
    @nn.compact
    def __call__(self, obs):
        x = scale_observation(obs)
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.relu(Conv(features, (kernel, kernel), (stride, stride), "VALID")(x))
        return nn.relu(nn.Dense(512)(_flatten(x, 3)))


class ResidualBlock(nn.Module):  # named as the encoder's, so the parameter trees match
    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        y = Conv(c, (3, 3), (1, 1), "SAME")(nn.relu(x))
        return x + Conv(c, (3, 3), (1, 1), "SAME")(nn.relu(y))


class PlainImpala(nn.Module):
    channels: Sequence[int] = (16, 32, 32)

    @nn.compact
    def __call__(self, obs):
        x = scale_observation(obs)
        for channels in self.channels:
            x = max_pool_slices(Conv(channels, (3, 3), (1, 1), "SAME")(x), 3, 2)
            x = ResidualBlock()(x)
            x = ResidualBlock()(x)
        x = nn.relu(_flatten(x, 3))
        return nn.relu(nn.Dense(256)(x))


ENCODERS = {  # name: (encoder, plain reference, observation shape)
    "mlp": (MLP(hidden_sizes=(32, 16), obs_ndim=3), PlainMLP((32, 16), 3), (10, 10, 4)),
    "minatar": (MinAtarCNN(), PlainMinAtar(), (10, 10, 4)),
    "nature": (NatureCNN(), PlainNature(), (84, 84, 4)),
    "impala": (ImpalaCNN(channels=(4, 8, 8)), PlainImpala((4, 8, 8)), (64, 64, 3)),
}
OPTIONS = [("none", "crelu"), ("none", "fourier"), ("layer", "relu"), ("layer", "crelu"),
           ("layer", "fourier")]  # fmt: skip


def n_params(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def shapes(tree):
    return jax.tree.map(lambda x: x.shape, tree)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_defaults_are_bit_identical_to_the_plain_relu_networks(name):
    module, plain, obs_shape = ENCODERS[name]
    assert (module.norm, module.activation) == ("none", "relu")
    obs = jax.random.uniform(jax.random.key(0), (2, *obs_shape))
    if name == "nature":  # 84x84: shapes only, to keep the file fast
        spec = jax.ShapeDtypeStruct(obs.shape, obs.dtype)
        new = jax.eval_shape(module.init, jax.random.key(1), spec)
        assert shapes(new) == shapes(jax.eval_shape(plain.init, jax.random.key(1), spec))
        return
    new, old = module.init(jax.random.key(1), obs), plain.init(jax.random.key(1), obs)
    assert shapes(new) == shapes(old)
    jax.tree.map(np.testing.assert_array_equal, new, old)
    np.testing.assert_array_equal(module.apply(new, obs), plain.apply(old, obs))


def test_layer_norm_gives_mean_zero_and_unit_variance_per_position_before_scale():
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (2, 5, 5, 8))
    params = LayerNorm().init(jax.random.key(1), x)
    assert shapes(params["params"]) == {"scale": (8,), "bias": (8,)}
    y = LayerNorm().apply(params, x)  # initial scale 1, bias 0
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, atol=1e-4)
    scale, bias = jnp.arange(8.0), jnp.ones(8)
    np.testing.assert_allclose(layer_norm(x, scale, bias), y * scale + bias, rtol=1e-5, atol=1e-5)
    ref = nn.LayerNorm().apply({"params": {"scale": scale, "bias": bias}}, x)  # flax's own
    np.testing.assert_allclose(layer_norm(x, scale, bias), ref, rtol=1e-5, atol=1e-5)


def test_crelu_passes_gradient_through_every_unit_on_any_nonzero_input():
    x = jnp.array([-2.0, -0.5, 0.3, 1.0, -1e-3, 4.0])
    np.testing.assert_array_equal(crelu(x), jnp.concatenate([nn.relu(x), nn.relu(-x)]))
    jac = jax.jacobian(crelu)(x)  # [2d, d]
    assert bool(jnp.all(jnp.any(jac != 0, axis=0)))
    assert not bool(jnp.all(jnp.any(jax.jacobian(nn.relu)(x) != 0, axis=0)))  # relu's dead half


def test_fourier_is_the_concatenation_of_sine_and_cosine():
    x = jax.random.normal(jax.random.key(0), (3, 4))
    np.testing.assert_allclose(fourier_features(x), jnp.concatenate([jnp.sin(x), jnp.cos(x)], -1))


def _kernels(params) -> dict[str, tuple]:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"/".join(p.key for p in path[:-1]): leaf.shape for path, leaf in flat
            if path[-1].key == "kernel"}  # fmt: skip


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize(("norm", "activation"), OPTIONS)
def test_options_keep_widths_and_give_the_documented_kernels(name, norm, activation):
    module, _, obs_shape = ENCODERS[name]
    spec = jax.ShapeDtypeStruct((2, *obs_shape), jnp.float32)
    relu = jax.eval_shape(module.init, jax.random.key(0), spec)
    option = module.clone(norm=norm, activation=activation)
    params = jax.eval_shape(option.init, jax.random.key(0), spec)
    assert jax.eval_shape(option.apply, params, spec).shape == (2, module_feature_dim(name))
    for layer, shape in _kernels(relu["params"]).items():
        got = _kernels(params["params"])[layer]
        hidden = name != "impala" or layer == "Dense_0" or "Block" in layer and "Conv_0" in layer
        if activation == "relu" or not hidden:
            assert got == shape, layer  # IMPALA's stage convolutions and blocks' Conv_1
        elif name == "impala":  # the stream's activation doubles the fan-in: same kernel size
            assert got == shape[:-2] + (2 * shape[-2], shape[-1] // 2), layer
        else:
            assert got == shape[:-1] + (shape[-1] // 2,), layer
    norms = [k for k in jax.tree_util.tree_flatten_with_path(params)[0] if "LayerNorm" in str(k)]
    assert bool(norms) == (norm == "layer")


def module_feature_dim(name: str) -> int:
    return {"mlp": 16, "minatar": 128, "nature": 512, "impala": 256}[name]


@pytest.mark.parametrize(
    ("cls", "obs_shape", "counts"),
    [
        (lambda **k: MLP(obs_ndim=1, **k), (4,), (4_480, 2_240, 4_736, 2_368)),
        (MinAtarCNN, (10, 10, 4), (131_792, 65_896, 132_080, 66_040)),
        (NatureCNN, (84, 84, 4), (1_684_128, 842_064, 1_685_472, 842_736)),
        (ImpalaCNN, (64, 64, 3), (622_144, 621_936, 623_360, 622_736)),
    ],
)
def test_parameter_counts_are_the_documented_ones(cls, obs_shape, counts):
    spec = jax.ShapeDtypeStruct((1, *obs_shape), jnp.float32)
    combos = (("none", "relu"), ("none", "crelu"), ("layer", "relu"), ("layer", "crelu"))
    got = [n_params(jax.eval_shape(cls(norm=n, activation=a).init, jax.random.key(0), spec))
           for n, a in combos]  # fmt: skip
    assert tuple(got) == counts
    fourier = cls(activation="fourier").init
    assert n_params(jax.eval_shape(fourier, jax.random.key(0), spec)) == counts[1]


@pytest.mark.parametrize("name", list(ENCODERS))
def test_capture_finds_the_same_hidden_layers_with_every_option(name):
    _, _, obs_shape = ENCODERS[name]
    kwargs = {"hidden_sizes": (32, 16)} if name == "mlp" else {}
    obs = jax.ShapeDtypeStruct((2, *obs_shape), jnp.float32)

    def captured(norm, activation):  # traced, not run: shapes are what is checked
        net = make_network(name, "q", 3, norm=norm, activation=activation, **kwargs)
        params = jax.eval_shape(net.init, jax.random.key(0), obs)
        acts = jax.eval_shape(lambda p, x: capture_activations(net, p, x), params, obs)
        return {layer: a.shape for layer, a in acts.items()}

    plain = captured("none", "relu")
    assert len(plain) == {"mlp": 2, "minatar": 2, "nature": 4, "impala": 7}[name]
    for norm, activation in OPTIONS:
        assert captured(norm, activation) == plain, (norm, activation)


def test_captured_units_are_the_networks_post_activations():
    x = jax.random.normal(jax.random.key(0), (6, 5))
    for norm, activation in OPTIONS:
        net = make_network("mlp", "q", 3, hidden_sizes=(8, 4), norm=norm, activation=activation)
        variables = net.init(jax.random.key(1), x)
        p = variables["params"]["encoder"]
        pre = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
        if norm == "layer":
            pre = layer_norm(pre, p["LayerNorm_0"]["scale"], p["LayerNorm_0"]["bias"])
        units = {"relu": nn.relu, "crelu": crelu, "fourier": fourier_features}[activation](pre)
        acts = capture_activations(net, variables, x)
        np.testing.assert_allclose(acts["encoder/Dense_0"], units, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts["encoder/Dense_1"], net.apply(variables, x,
                                   method=net.encode), rtol=1e-6)  # fmt: skip
        traced = capture_traced_activations(net.apply, variables, x)  # generic tracer too
        assert {k: v.shape for k, v in traced.items()} == {
            "encoder/Dense_0": (6, 8), "encoder/Dense_1": (6, 4)}  # fmt: skip
        np.testing.assert_allclose(traced["encoder/Dense_0"], units, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "batch"}, r"unknown norm 'batch'.*expected one of none, layer"),
        ({"activation": "gelu"}, r"unknown activation 'gelu'.*relu, crelu, fourier"),
        ({"activation": "crelu", "hidden_size": 127}, r"hidden_size: width 127 is odd"),
        ({"activation": "fourier", "channels": 15}, r"channels: width 15 is odd"),
    ],
)
def test_bad_options_are_one_line_input_errors(kwargs, match):
    net = make_network("minatar", "q", 3, **kwargs)
    with pytest.raises(InputError, match=match) as info:
        jax.eval_shape(net.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 10, 10, 4), bool))
    assert "\n" not in str(info.value)


def test_odd_mlp_width_names_its_field():
    with pytest.raises(InputError, match=r"hidden_sizes: width 9 is odd"):
        MLP(hidden_sizes=(8, 9), activation="crelu").init(jax.random.key(0), jnp.zeros((1, 3)))
