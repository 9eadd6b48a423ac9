"""Dormant units, active units and feature rank on layers built with known answers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.interference import (
    active_units,
    capture_activations,
    dormant_units,
    feature_statistics,
    unit_scores,
)
from tdgen.nets.factory import make_network


def with_rank(n, d, r, seed=0):
    """[n, d] features U diag(1, ..., 1, 0, ...) V^T of rank r with r equal singular values."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, n)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = np.zeros(min(n, d))
    s[:r] = 1.0
    return (u[:, : len(s)] * s) @ v[:, : len(s)].T


def test_dormant_ratio_of_a_relu_layer_with_known_dead_units():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 4))
    w = rng.normal(size=(4, 10))
    b = np.zeros(10)
    b[[1, 4, 7]] = -100.0  # |x w| <= 4 * max|w| < 100: these units are zero on every input
    h = np.maximum(x @ w + b, 0.0)
    out = dormant_units({"dense": h})
    assert float(out["dormant_0/dense"]) == pytest.approx(0.3)
    assert float(out["dormant_0"]) == pytest.approx(0.3)
    assert float(active_units({"dense": h})["active"]) == pytest.approx(0.7)


def test_dormant_thresholds_on_scores_set_by_hand():
    # unit i is constant c_i on every input: score_i = c_i / mean(c) = c_i (mean 1)
    c = np.array([0.0, 0.02, 0.05, 1.93, 2.0, 2.0])
    dense = np.tile(c, (5, 1))
    np.testing.assert_allclose(unit_scores(dense), c, rtol=1e-6)
    conv = np.zeros((3, 2, 2, 4))  # NHWC: channels 0, 1 zero; channels 2, 3 equal
    conv[..., 2:] = 1.0
    out = dormant_units({"dense": dense, "conv": conv})
    assert [float(out[f"dormant_{t}/dense"]) for t in ("0", "0.025", "0.1")] == pytest.approx(
        [1 / 6, 2 / 6, 3 / 6]
    )
    assert float(out["dormant_0/conv"]) == pytest.approx(0.5)
    # overall: dormant units of both layers over their 10 units
    assert float(out["dormant_0"]) == pytest.approx(3 / 10)
    assert float(out["dormant_0.1"]) == pytest.approx(5 / 10)


def test_active_units_count_a_unit_alive_on_one_input():
    h = np.zeros((4, 3))
    h[2, 0] = 0.5  # unit 0 is active on one input only; unit 2 on all; unit 1 never
    h[:, 2] = 1.0
    out = active_units(h)
    assert float(out["active"]) == pytest.approx(2 / 3)
    assert float(dormant_units(h)["dormant_0"]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("r", [1, 3, 5])
def test_features_of_known_rank(r):
    phi = with_rank(12, 8, r)
    out = feature_statistics({"f": phi})
    assert int(out["feature_srank/f"]) == r
    assert float(out["feature_erank/f"]) == pytest.approx(r, rel=1e-4)
    np.testing.assert_allclose(out["feature_norm/f"], np.linalg.norm(phi, axis=1).mean(), rtol=1e-5)
    # a conv layer's activations are flattened per input: same rank
    conv = feature_statistics({"c": phi.reshape(12, 2, 2, 2)})
    assert int(conv["feature_srank/c"]) == r


class TanhHead(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(6, name="hidden")(x))
        return nn.Dense(2, name="out")(h)


def test_capture_gives_post_activation_of_hidden_layers_only():
    net = make_network("minatar", "q", 3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 10, 10, 4))
    variables = net.init(jax.random.PRNGKey(1), x)
    acts = capture_activations(net, variables, x)
    assert list(acts) == ["encoder/Conv_0", "encoder/Dense_0"]  # the Q head is linear: left out
    features = net.apply(variables, x, method=net.encode)
    np.testing.assert_array_equal(acts["encoder/Dense_0"], features)  # after the relu
    assert float(jnp.min(acts["encoder/Conv_0"])) == 0.0
    q = capture_activations(net, variables, x, layers=["heads_0/Dense_0"])["heads_0/Dense_0"]
    np.testing.assert_array_equal(q, net.apply(variables, x))  # named output: module output
    jitted = jax.jit(lambda v, x: capture_activations(net, v, x))(variables, x)
    np.testing.assert_allclose(jitted["encoder/Dense_0"], features, rtol=1e-6)

    tanh = TanhHead()
    v = tanh.init(jax.random.PRNGKey(0), x[:, 0, 0])
    h = capture_activations(tanh, v, x[:, 0, 0])
    assert list(h) == ["hidden"]
    kernel = v["params"]["hidden"]
    np.testing.assert_allclose(
        h["hidden"], np.tanh(x[:, 0, 0] @ kernel["kernel"] + kernel["bias"]), rtol=1e-5
    )


def test_capture_and_unit_errors_name_the_fix():
    net = make_network("mlp", "q", 2, hidden_sizes=(4,))
    x = jnp.ones((3, 5))
    variables = net.init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match=r"unknown layer 'encoder/Dense_1'.*did you mean"):
        capture_activations(net, variables, x, layers=["encoder/Dense_1"])
    with pytest.raises(ValueError, match="expected \\[n, ..., units\\] with n >= 1"):
        dormant_units({"f": np.zeros((0, 4))})
    with pytest.raises(ValueError, match="no layers"):
        feature_statistics({})
