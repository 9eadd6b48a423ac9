"""Interpolation consistency: exact endpoints, a hand-computed piecewise policy, a plain reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.evaluate import draw_pairs, interpolation_consistency


def bands(x):
    """Logits [-x - 1, x - 1, 0] on 1-D inputs: action 0 for x < -1, 2 on (-1, 1), 1 for x > 1."""
    x = x[:, 0]
    return jnp.stack([-x - 1, x - 1, jnp.zeros_like(x)], axis=-1)


def test_piecewise_policy_gives_hand_computed_consistency():
    """Pairs (-3, 3) cross the middle band for w in (1/3, 2/3); pairs (-3, -2) stay in action 0."""
    a = jnp.full((10, 1), -3.0)
    b = jnp.array([[3.0]] * 5 + [[-2.0]] * 5)
    result = interpolation_consistency(bands, a, b, jnp.array([0.0, 0.2, 0.5, 0.8, 1.0]))
    np.testing.assert_allclose(result.either, [1.0, 1.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(result.equals_a, [1.0, 1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(result.equals_b, [0.5, 0.5, 0.5, 1.0, 1.0])
    assert result.endpoints_agree == 0.5


def linear(W, x):
    return x.reshape(x.shape[0], -1) @ W


def test_matches_a_plain_loop_and_endpoints_are_exact():
    rng = np.random.default_rng(0)
    W, obs = rng.normal(size=(8, 4)), rng.normal(size=(301, 8)).astype(np.float32)
    a, b = draw_pairs(obs, jax.random.key(2))  # 150 pairs
    weights = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    fn = jax.tree_util.Partial(linear, jnp.asarray(W))
    result = interpolation_consistency(fn, a, b, weights, chunk_size=64)  # last chunk shifted

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    action_a, action_b = np.argmax(a @ W, 1), np.argmax(b @ W, 1)
    for i, w in enumerate(weights):
        action = np.array([np.argmax(((1 - w) * a[j] + w * b[j]) @ W) for j in range(len(a))])
        assert result.equals_a[i] == pytest.approx(np.mean(action == action_a))
        assert result.equals_b[i] == pytest.approx(np.mean(action == action_b))
        assert result.either[i] == pytest.approx(
            np.mean((action == action_a) | (action == action_b))
        )
    assert result.endpoints_agree == pytest.approx(np.mean(action_a == action_b))
    # w = 0 is a's action and w = 1 is b's, exactly; a and b disagree on most pairs.
    assert result.equals_a[0] == 1.0 and result.equals_b[-1] == 1.0
    assert result.equals_b[0] == result.endpoints_agree == result.equals_a[-1] < 0.5
    assert 0.0 < result.either[2] < 1.0  # linear argmax regions: the middle can be a third action


def test_runs_under_jit():
    a = jnp.full((4, 1), -3.0)
    b = jnp.full((4, 1), 3.0)
    result = jax.jit(lambda w: interpolation_consistency(bands, a, b, w))(jnp.array([0.5, 1.0]))
    np.testing.assert_array_equal(result.either, [0.0, 1.0])
    assert result.as_dict()["weights"] == [0.5, 1.0]


def test_draw_pairs_are_disjoint_and_deterministic():
    obs = jnp.arange(301)[:, None]
    a, b = draw_pairs(obs, jax.random.key(3))
    assert a.shape == b.shape == (150, 1)
    used = np.concatenate([a[:, 0], b[:, 0]])
    assert len(set(used.tolist())) == 300  # nothing twice, nothing paired with itself
    np.testing.assert_array_equal(draw_pairs(obs, jax.random.key(3), num_pairs=150)[1], b)
    assert draw_pairs(obs, jax.random.key(3), num_pairs=2)[0].shape == (2, 1)
    with pytest.raises(ValueError, match=r"num_pairs must be an integer in \[1, 150\]"):
        draw_pairs(obs, jax.random.key(3), num_pairs=151)
    with pytest.raises(ValueError, match="at least 2 observations"):
        draw_pairs(obs[:1], jax.random.key(3))


@pytest.mark.parametrize(
    ("b", "weights", "message"),
    [
        (np.zeros((5, 1)), [0.5], "obs_a and obs_b must be pairs of one shape and dtype"),
        (np.zeros((4, 2)), [0.5], "obs_a and obs_b must be pairs of one shape and dtype"),
        (np.zeros((4, 1), np.uint8), [0.5], "obs_a and obs_b must be pairs of one shape and dtype"),
        (np.zeros((4, 1)), [0.0, 1.5], r"weights must be in \[0, 1\], got 1.5"),
        (np.zeros((4, 1)), [-0.1], r"weights must be in \[0, 1\], got -0.1"),
        (np.zeros((4, 1)), [[0.5]], "weights must be a non-empty 1-D array"),
    ],
)
def test_bad_input_raises_one_clear_line(b, weights, message):
    a = np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match=message) as error:
        interpolation_consistency(
            bands, a, b.astype(b.dtype if b.dtype == np.uint8 else np.float32), weights
        )
    assert "\n" not in str(error.value)
