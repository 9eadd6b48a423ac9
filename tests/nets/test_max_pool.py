"""The strided-slice max-pool (IMPALA's default lowering) against XLA's reduce_window."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.nets import ImpalaCNN
from tdgen.nets.layers import max_pool_slices


def pool_reference(x: np.ndarray) -> np.ndarray:
    """3x3 stride-2 SAME max-pool by loops (padding -inf, extra pixel at the end)."""
    n, h, w, c = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    ph, pw = max((oh - 1) * 2 + 3 - h, 0), max((ow - 1) * 2 + 3 - w, 0)
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)),
               constant_values=-np.inf)  # fmt: skip
    out = np.array([[x[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max((1, 2)) for j in range(ow)]
                    for i in range(oh)])  # fmt: skip
    return out.transpose(2, 0, 1, 3)  # [oh, ow, n, c] -> [n, oh, ow, c]


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (3, 9, 7, 2), (1, 64, 64, 4)])
def test_slices_pool_equals_reduce_window_values_and_gradients_with_ties(shape):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 3, shape), jnp.float32)  # small integers: many tied maxima
    ours = max_pool_slices(x, 3, 2)
    np.testing.assert_array_equal(ours, pool_reference(np.asarray(x)))
    cotangent = jnp.asarray(rng.normal(size=ours.shape), jnp.float32)
    xla = jax.vjp(lambda v: nn.max_pool(v, (3, 3), (2, 2), "SAME"), x)[1](cotangent)[0]
    grad = jax.vjp(lambda v: max_pool_slices(v, 3, 2), x)[1](cotangent)[0]
    # select-and-scatter gives each window's gradient to its first maximum: so do we
    np.testing.assert_allclose(grad, xla, atol=1e-6)
    assert float(jnp.sum(grad)) == pytest.approx(float(jnp.sum(cotangent)), abs=1e-3)


@pytest.mark.parametrize("conv_impl", ["xla", "im2col"])
def test_impala_pool_lowerings_give_the_same_outputs_and_gradients(conv_impl):
    rng = np.random.default_rng(1)
    obs = jnp.asarray(rng.integers(0, 256, (4, 64, 64, 3)), jnp.uint8)
    obs = obs.at[:, :32].set(0)  # a flat region: tied maxima inside the network
    new, old = (ImpalaCNN(conv_impl=conv_impl, pool_impl=p) for p in ("slices", "reduce_window"))
    params = jax.jit(new.init)(jax.random.PRNGKey(0), obs)
    np.testing.assert_allclose(jax.jit(new.apply)(params, obs), jax.jit(old.apply)(params, obs),
                               rtol=1e-5, atol=1e-6)  # fmt: skip

    def grads(module):  # compiled: op by op, the network's gradient takes ~10x longer on the CPU
        return jax.jit(jax.grad(lambda p: jnp.sum(module.apply(p, obs) ** 2)))(params)

    for a, b in zip(jax.tree.leaves(grads(new)), jax.tree.leaves(grads(old)), strict=True):
        # float32 summation order only: tolerance relative to the gradient's scale
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(jnp.abs(b).max()))


def test_unknown_pool_impl_is_rejected():
    module = ImpalaCNN(pool_impl="avg")
    with pytest.raises(ValueError, match="unknown pool impl 'avg'"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3), jnp.uint8))


def test_procgen_preset_network_matches_the_old_lowering_outputs_and_gradients():
    """The preset's XLA conv + slices pool against the former im2col + reduce_window network."""
    from tdgen.agents import PPOConfig
    from tdgen.nets import make_network

    config = PPOConfig.procgen("procgen/bigfish", num_levels=10)
    assert (config.conv_impl, ImpalaCNN.pool_impl) == ("xla", "slices")
    rng = np.random.default_rng(2)
    obs = jnp.asarray(rng.integers(0, 256, (3, 64, 64, 3)), jnp.uint8).at[:, 40:].set(7)
    new = make_network("impala", "policy+value", 15, conv_impl="xla")
    old = make_network("impala", "policy+value", 15, conv_impl="im2col", pool_impl="reduce_window")
    params = jax.jit(new.init)(jax.random.PRNGKey(3), obs)

    def loss(module):
        def fn(p):
            out = module.apply(p, obs)
            return jnp.sum(jax.nn.log_softmax(out["policy"])[:, 0]) + jnp.sum(out["value"] ** 2)

        return jax.jit(jax.value_and_grad(fn))(params)

    (a, grad_a), (b, grad_b) = loss(new), loss(old)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    for x, y in zip(jax.tree.leaves(grad_a), jax.tree.leaves(grad_b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5 * float(jnp.abs(y).max()))
