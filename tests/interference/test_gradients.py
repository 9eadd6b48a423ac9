"""Norms, gradient noise and empirical NTKs against closed forms for linear models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.interference import (
    distance_from_init,
    gradient_gram,
    gradient_noise,
    gradient_norm,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
    per_sample_gradients,
)

jax.config.update("jax_enable_x64", False)
K, D = 6, 4


def linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(K, D)).astype(np.float32)
    w = rng.normal(size=(D,)).astype(np.float32)
    y = rng.normal(size=(K,)).astype(np.float32)
    return X, w, y


def linear_loss(params, t):
    return 0.5 * (t["obs"] @ params["w"] - t["target"]) ** 2


def test_linear_output_ntk_is_x_xt():
    X, w, _ = linear_problem()

    def apply_fn(params, obs):  # scalar output v(x) = x . w (+ b)
        return obs @ params["w"] + params["b"]

    G = gradient_gram(apply_fn, {"w": w, "b": np.float32(0.3)}, {"obs": X}, reduce="none")
    np.testing.assert_allclose(G, X @ X.T + 1.0, rtol=1e-5)  # the bias adds 1 * 1


def test_loss_ntk_of_squared_loss_is_residual_weighted_gram():
    X, w, y = linear_problem()
    batch = {"obs": X, "target": y}
    r = X @ w - y  # grad loss_i = r_i x_i
    J = per_sample_gradients(linear_loss, {"w": w}, batch)
    np.testing.assert_allclose(J, r[:, None] * X, rtol=1e-5)
    Kmat = loss_ntk(linear_loss, {"w": w}, batch)
    np.testing.assert_allclose(Kmat, np.outer(r, r) * (X @ X.T), rtol=1e-5, atol=1e-6)

    noise = gradient_noise(Kmat)
    g = r[:, None] * X
    g_bar = g.mean(0)
    var = np.sum((g - g_bar) ** 2) / (K - 1)
    np.testing.assert_allclose(noise["grad_norm"], np.linalg.norm(g_bar), rtol=1e-4)
    np.testing.assert_allclose(
        noise["per_sample_grad_norm"], np.linalg.norm(g, axis=1).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(noise["grad_variance"], var, rtol=1e-4)
    np.testing.assert_allclose(noise["grad_noise_scale"], var / (g_bar @ g_bar), rtol=1e-3)
    direct = gradient_norm(linear_loss, {"w": w}, batch)
    np.testing.assert_allclose(direct["grad_norm"], np.linalg.norm(g_bar), rtol=1e-5)
    np.testing.assert_allclose(direct["grad_norm/w"], np.linalg.norm(g_bar), rtol=1e-5)


def test_identical_per_sample_gradients_have_no_noise():
    ones = np.ones((3, 3), np.float32) * 4.0  # three gradients equal, norm 2 each
    noise = gradient_noise(ones)
    assert float(noise["grad_variance"]) == pytest.approx(0.0, abs=1e-6)
    assert float(noise["grad_coherence"]) == pytest.approx(1.0)
    opposed = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)  # g and -g
    assert float(gradient_noise(opposed)["grad_coherence"]) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(gradient_noise(opposed)["grad_noise_scale"])  # mean gradient exactly zero


def test_ntk_statistics_by_hand():
    Kmat = np.array([[4.0, -1.0, 0.0], [-1.0, 2.0, 1.0], [0.0, 1.0, 3.0]], np.float32)
    out = ntk_statistics(Kmat)
    assert float(out["diagonal_mean"]) == pytest.approx(3.0)
    assert float(out["diagonal_std"]) == pytest.approx(np.std([4.0, 2.0, 3.0]), rel=1e-5)
    assert float(out["off_diagonal_mean"]) == pytest.approx(0.0)  # (-1 - 1 + 1 + 1) / 6
    assert float(out["positive_frac"]) == pytest.approx(5 / 9)
    assert float(out["negative_frac"]) == pytest.approx(2 / 9)
    s = np.linalg.svd(Kmat, compute_uv=False)
    for t in (0.0, 0.001, 0.01):
        assert int(out[f"rank_{t:g}"]) == int(np.sum(s / s.max() > t))
    low = ntk_statistics(np.diag([1.0, 0.005, 0.0005]).astype(np.float32))
    assert [int(low[f"rank_{t}"]) for t in ("0", "0.001", "0.01")] == [3, 2, 1]
    assert int(ntk_statistics(np.zeros((4, 4)))["rank_0"]) == 0


def test_parameter_norms_and_distance_from_init_per_layer():
    init = {
        "params": {
            "enc": {"kernel": np.ones((2, 2)), "bias": np.zeros(2)},
            "head": {"kernel": np.full((2,), 2.0), "bias": np.zeros(1)},
        }
    }
    params = jax.tree.map(lambda x: x + 1.0, init)
    norms = parameter_norms(params)
    assert float(norms["param_norm/enc"]) == pytest.approx(np.sqrt(4 * 4 + 2))
    assert float(norms["param_norm/head"]) == pytest.approx(np.sqrt(2 * 9 + 1))
    assert float(norms["param_norm"]) == pytest.approx(np.sqrt(18 + 19))
    dist = distance_from_init(params, init)
    assert float(dist["init_distance/enc"]) == pytest.approx(np.sqrt(6))
    assert float(dist["init_distance"]) == pytest.approx(np.sqrt(9))
    assert float(dist["init_distance_relative/enc"]) == pytest.approx(np.sqrt(6) / 2)
    assert float(dist["init_distance_relative"]) == pytest.approx(3 / np.sqrt(4 + 8))
    zero = distance_from_init({"w": jnp.ones(2)}, {"w": jnp.zeros(2)})
    assert np.isnan(zero["init_distance_relative"])  # no initial scale: undefined, not inf
    with pytest.raises(ValueError, match="different tree structures"):
        distance_from_init({"w": 1.0}, {"v": 1.0})
