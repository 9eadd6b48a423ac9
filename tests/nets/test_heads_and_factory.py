import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.nets import AdvantageHead, make_network

OBS = {"mlp": (8,), "minatar": (10, 10, 4), "impala": (64, 64, 3)}


@pytest.mark.parametrize(
    ("head", "shape"),
    [
        ("q", (3, 6)),
        ("c51", (3, 6, 51)),
        ("policy", (3, 6)),
        ("value", (3,)),
        ("advantage", (3, 6)),
    ],
)
def test_head_output_shapes(head, shape):
    net = make_network("mlp", head, 6)
    obs = jnp.ones((3, 8))
    params = net.init(jax.random.key(0), obs)
    assert net.apply(params, obs).shape == shape


@pytest.mark.parametrize("encoder", ["mlp", "minatar", "impala"])
def test_every_encoder_composes_with_every_head(encoder):
    net = make_network(encoder, "q+c51+policy+value+advantage", 4, num_atoms=11)
    obs = jax.ShapeDtypeStruct((2, *OBS[encoder]), jnp.uint8)
    out = jax.eval_shape(net.apply, jax.eval_shape(net.init, jax.random.key(0), obs), obs)
    assert {k: v.shape for k, v in out.items()} == {
        "q": (2, 4), "c51": (2, 4, 11), "policy": (2, 4), "value": (2,), "advantage": (2, 4),
    }  # fmt: skip


def test_advantage_head_reads_the_one_hot_action():
    head = AdvantageHead(num_actions=3)
    features = jax.random.normal(jax.random.key(0), (5, 7))
    params = head.init(jax.random.key(1), features, jnp.zeros(5, jnp.int32))
    kernel = params["params"]["Dense_0"]["kernel"][:, 0]
    bias = params["params"]["Dense_0"]["bias"][0]
    actions = jnp.array([0, 1, 2, 1, 0])
    expected = features @ kernel[:7] + kernel[7 + actions] + bias
    np.testing.assert_allclose(head.apply(params, features, actions), expected, rtol=1e-5)
    every = head.apply(params, features)
    np.testing.assert_allclose(every[jnp.arange(5), actions], expected, rtol=1e-5)


def test_network_action_argument_reaches_the_advantage_head():
    net = make_network("mlp", "policy+advantage", 4)
    obs = jnp.ones((2, 8))
    params = net.init(jax.random.key(0), obs)
    out = net.apply(params, obs, jnp.array([1, 3]))
    assert out["advantage"].shape == (2,)


def test_init_is_deterministic_per_seed():
    net = make_network("minatar", "c51", 3)
    obs = jnp.zeros((1, 10, 10, 4))
    init = jax.jit(net.init)
    a, b, c = (
        init(jax.random.key(7), obs),
        init(jax.random.key(7), obs),
        init(jax.random.key(8), obs),
    )
    assert all(jax.tree.leaves(jax.tree.map(lambda x, y: bool((x == y).all()), a, b)))
    assert not all(jax.tree.leaves(jax.tree.map(lambda x, y: bool((x == y).all()), a, c)))


def test_jit_and_vmap_over_seeds():
    net = make_network("minatar", "q", 3, conv_impl="im2col")
    obs = jnp.ones((4, 10, 10, 4))
    keys = jax.random.split(jax.random.key(0), 2)
    params = jax.jit(jax.vmap(net.init, in_axes=(0, None)))(keys, obs)
    out = jax.jit(jax.vmap(net.apply, in_axes=(0, None)))(params, obs)
    assert out.shape == (2, 4, 3)
    one_seed = jax.tree.map(lambda x: x[1], params)
    np.testing.assert_allclose(out[1], jax.jit(net.apply)(one_seed, obs), atol=1e-5)


def test_encode_returns_features():
    net = make_network("minatar", "value", 3)
    obs = jax.ShapeDtypeStruct((4, 10, 10, 4), jnp.float32)
    params = jax.eval_shape(net.init, jax.random.key(0), obs)
    assert jax.eval_shape(lambda p, o: net.apply(p, o, method="encode"), params, obs).shape == (
        4,
        128,
    )


def test_unknown_names_and_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown encoder 'resnet': choose one of mlp, minatar"):
        make_network("resnet", "q", 3)
    with pytest.raises(ValueError, match="unknown head 'dueling': choose one of q, c51"):
        make_network("mlp", "dueling", 3)
    with pytest.raises(TypeError, match=r"unexpected arguments \['hiden_size'\]"):
        make_network("nature", "q", 3, hiden_size=3)
