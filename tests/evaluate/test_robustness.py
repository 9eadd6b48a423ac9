"""Robustness to Gaussian input noise against closed forms, invariances and exact limits.

Models are `Partial(affine, W, b, v)` on obs [N, D] with 4 scales wherever possible, so the tests
share one compilation (the noise generator dominates compile time on CPU).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from tdgen.evaluate import Robustness, robustness
from tdgen.nets import make_network

KEY = jax.random.key(0)
N, D = 10_000, 8
OBS = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)  # numpy: no compilation
SCALES = jnp.array([0.0, 0.1, 0.5, 2.0])


def affine(W, b, v, x):
    """Logits x W + b + v |x|^2: v adds a per-input offset to every action (like a dueling V)."""
    return x @ W + b + v * jnp.sum(x**2, axis=1, keepdims=True)


def model(W, b=(0.0, 0.0), v=0.0):
    W, b, v = (jnp.asarray(a, jnp.float32) for a in (W, b, v))
    return jax.tree_util.Partial(affine, W, b, v)


def measure(fn, key=KEY, **kwargs):
    return robustness(fn, OBS, SCALES, key, **kwargs)


def test_constant_network_agrees_at_every_scale():
    result = robustness(
        model(np.zeros((D, 2)), b=(0.3, 2.0)), OBS, jnp.array([0, 0.1, 10, 1e3]), KEY
    )
    np.testing.assert_array_equal(result.action_agreement, 1.0)
    np.testing.assert_array_equal(result.policy_l1, 0.0)
    np.testing.assert_array_equal(result.standardized_l1, 0.0)


def test_linear_model_matches_closed_form():
    """Logits [w.x, 0]: w.(x + sigma eps) = w.x + sigma |w| z, so P(argmax kept) = Phi(|w.x| / (sigma |w|))."""
    w = np.linspace(-1.0, 2.0, D)
    result = measure(model(np.stack([w, np.zeros(D)], axis=1)))
    assert result.action_agreement[0] == 1.0 and result.policy_l1[0] == 0.0

    u = np.asarray(OBS) @ w  # clean logit gap per state
    noise = np.asarray(SCALES[1:])[:, None] * np.linalg.norm(w)
    agreement = norm.cdf(np.abs(u) / noise).mean(axis=1)
    tolerance = 4 * np.sqrt(agreement * (1 - agreement) / N) + 1e-3
    np.testing.assert_array_less(np.abs(result.action_agreement[1:] - agreement), tolerance)

    # ||softmax([u, 0]) - softmax([u + s z, 0])||_1 = 2 |sigmoid(u) - sigmoid(u + s z)|, its
    # expectation over z by Gauss-Hermite quadrature per state; per-state l1 in [0, 2] has std <= 1.
    z, weight = np.polynomial.hermite_e.hermegauss(60)
    weight = weight / weight.sum()

    def sigmoid(t):
        return 1 / (1 + np.exp(-t))

    shifted = u[None, :, None] + noise[:, :, None] * z
    l1 = (2 * np.abs(sigmoid(u)[None, :, None] - sigmoid(shifted)) @ weight).mean(axis=1)
    np.testing.assert_array_less(np.abs(result.policy_l1[1:] - l1), 4 / np.sqrt(N))


def test_standardized_l1_is_free_of_output_scale_and_offset():
    """Logits c x W + v |x|^2: only the raw softmax l1 changes with c, no metric with v."""
    W = np.random.default_rng(1).normal(size=(D, 2))
    small, unit, large, offset = (
        measure(model(c * W, v=v)) for c, v in ((0.01, 0), (1, 0), (100, 0), (1, 1))
    )
    for other in (small, large, offset):
        np.testing.assert_allclose(
            other.standardized_l1, unit.standardized_l1, rtol=1e-4, atol=1e-6
        )
        np.testing.assert_array_equal(other.action_agreement, unit.action_agreement)
    np.testing.assert_allclose(offset.policy_l1, unit.policy_l1, rtol=1e-4, atol=1e-6)
    # A flat softmax (small outputs) looks robust for that reason alone; large outputs look fragile.
    assert np.all(small.policy_l1[1:] < 0.05 * unit.policy_l1[1:])
    assert np.all(large.policy_l1[1:] > unit.policy_l1[1:])


def test_deterministic_given_key_and_independent_of_chunking():
    fn = model(np.random.default_rng(2).normal(size=(D, 2)))
    chunked = measure(fn)  # 40 chunks of 256, the last one shifted back to end at row N
    np.testing.assert_array_equal(measure(fn).policy_l1, chunked.policy_l1)
    assert not np.array_equal(measure(fn, key=jax.random.key(8)).policy_l1, chunked.policy_l1)

    @jax.jit
    def whole(W, scales, key):  # params, scales and key traced; one chunk of N states
        return robustness(model(W), OBS, scales, key, chunk_size=N)

    result = whole(fn.args[0], SCALES, KEY)
    assert isinstance(result, Robustness)
    np.testing.assert_array_equal(result.action_agreement, chunked.action_agreement)
    np.testing.assert_allclose(result.policy_l1, chunked.policy_l1, rtol=1e-5)
    assert result.as_dict()["action_agreement"][0] == 1.0


def test_pixels_are_perturbed_in_network_units_and_scale_zero_is_unclipped():
    """uint8 frames are scaled to [0, 1] before the noise, as a tdgen network scales them."""
    net = make_network("mlp", "q", 4, obs_ndim=3, hidden_sizes=(32,))
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (40, 6, 6, 2), dtype=np.uint8)
    shapes = jax.eval_shape(net.init, KEY, frames[:1])  # random weights without compiling init
    params = jax.tree.map(lambda s: 0.3 * rng.normal(size=s.shape).astype(s.dtype), shapes)
    fn = jax.tree_util.Partial(net.apply, params)
    scales = jnp.array([0.0, 0.02, 0.3, 0.0])
    clip = (0.2, 0.8)  # clipping changes the clean frame; scale 0 is the frame itself
    from_uint8 = robustness(fn, frames, scales, KEY, clip=clip)
    from_float = robustness(fn, frames.astype(np.float32) / 255.0, scales, KEY, clip=clip)
    for a, b in zip(jax.tree.leaves(from_uint8), jax.tree.leaves(from_float), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)  # XLA and numpy divide by 255 differently
    clean = np.array([0, 3])
    for result in (from_uint8, from_float):
        np.testing.assert_array_equal(np.asarray(result.action_agreement)[clean], 1.0)
        np.testing.assert_array_equal(np.asarray(result.policy_l1)[clean], 0.0)
        np.testing.assert_array_equal(np.asarray(result.standardized_l1)[clean], 0.0)
    assert from_uint8.action_agreement[2] < 1.0
    assert 0.0 < from_uint8.policy_l1[1] < from_uint8.policy_l1[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scales": [0.0, -0.1]}, "scales must be finite and >= 0, got -0.1"),
        ({"scales": [np.inf]}, "scales must be finite and >= 0, got inf"),
        ({"scales": [[0.1]]}, "scales must be a non-empty 1-D array"),
        ({"scales": []}, "scales must be a non-empty 1-D array"),
        ({"obs": np.zeros((0, 3))}, "obs must be a non-empty batch"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"clip": (1.0, 0.0)}, "clip must be"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"logits_fn": lambda x: x[:, 0]}, r"logits_fn must map obs \[n, ...\]"),
    ],
)
def test_bad_input_raises_one_clear_line(kwargs, message):
    args = {"logits_fn": lambda x: x, "obs": np.ones((4, 3)), "scales": [0.1], "key": KEY}
    args.update(kwargs)
    fn, obs, scales, key = (args.pop(k) for k in ("logits_fn", "obs", "scales", "key"))
    with pytest.raises(ValueError, match=message) as error:
        robustness(fn, obs, scales, key, **args)
    assert "\n" not in str(error.value)
