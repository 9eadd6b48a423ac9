"""The per-transition losses: C51's categorical projection by hand, Q-learning targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.losses import categorical_projection, categorical_q_learning_loss, huber, q_learning_loss


def test_projection_hand_worked_example():
    # Atoms z = (-1, 0, 1); r = 0.5, discount 0.5: the target atoms r + 0.5 z = (0, 0.5, 1).
    # p = (0.2, 0.3, 0.5): 0.2 lands on z=0; 0.3 at 0.5 splits 0.15 / 0.15 between z=0 and z=1;
    # 0.5 lands on z=1. Projected: (0, 0.35, 0.65).
    support = jnp.array([-1.0, 0.0, 1.0])
    probs = jnp.array([0.2, 0.3, 0.5])
    projected = categorical_projection(support, 0.5 + 0.5 * support, probs)
    np.testing.assert_allclose(projected, [0.0, 0.35, 0.65], atol=1e-6)


def test_projection_clips_and_splits_by_distance():
    # Atoms (0, 2, 4, 6), dz = 2. Target atoms (-3, 1, 4.5, 9) with p = (0.1, 0.2, 0.3, 0.4):
    # -3 clips to 0 (0.1 -> z=0); 1 is halfway 0..2 (0.1, 0.1); 4.5 is 1/4 of the way 4..6
    # (0.225 -> 4, 0.075 -> 6); 9 clips to 6 (0.4 -> 6). Projected: (0.2, 0.1, 0.225, 0.475).
    support = jnp.array([0.0, 2.0, 4.0, 6.0])
    projected = categorical_projection(
        support, jnp.array([-3.0, 1.0, 4.5, 9.0]), jnp.array([0.1, 0.2, 0.3, 0.4])
    )
    np.testing.assert_allclose(projected, [0.2, 0.1, 0.225, 0.475], atol=1e-6)


def test_projection_matches_bellemare_algorithm_1_loop():
    """Against Algorithm 1 of Bellemare et al. 2017 written plainly (floor/ceil, l == u case)."""
    rng = np.random.default_rng(0)
    support = np.linspace(-10, 10, 51)
    dz = support[1] - support[0]
    for _ in range(5):
        probs = rng.dirichlet(np.ones(51))
        r, discount = rng.uniform(-3, 3), rng.choice([0.0, 0.99])
        expected = np.zeros(51)
        for p, z in zip(probs, support, strict=True):
            tz = np.clip(r + discount * z, support[0], support[-1])
            b = (tz - support[0]) / dz
            lo, hi = int(np.floor(b)), int(np.ceil(b))
            if lo == hi:
                expected[lo] += p
            else:
                expected[lo] += p * (hi - b)
                expected[hi] += p * (b - lo)
        got = categorical_projection(
            jnp.asarray(support, jnp.float32),
            jnp.asarray(r + discount * support, jnp.float32),
            jnp.asarray(probs, jnp.float32),
        )
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_c51_loss_is_cross_entropy_to_the_projected_greedy_target():
    support = jnp.array([-1.0, 0.0, 1.0])
    logits_t = jnp.log(jnp.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]]))  # action 1 is greedy
    logits_tm1 = jnp.zeros((2, 3))
    loss = categorical_q_learning_loss(logits_tm1, 0, 0.5, 0.5, logits_t, support)
    target = np.array([0.0, 0.35, 0.65])
    np.testing.assert_allclose(loss, -np.sum(target * np.log(1 / 3)), rtol=1e-5)


def test_q_learning_target_and_losses():
    q_tm1, q_t = jnp.array([1.0, 2.0]), jnp.array([3.0, -1.0])
    # target 0.5 + 0.9 * 3 = 3.2; td on action 1: 1.2
    assert q_learning_loss(q_tm1, 1, 0.5, 0.9, q_t, "mse") == pytest.approx(0.5 * 1.2**2)
    assert q_learning_loss(q_tm1, 1, 0.5, 0.9, q_t, "huber") == pytest.approx(0.7)
    assert huber(jnp.array(0.5)) == pytest.approx(0.125)
    # terminal: discount 0 -> the target is the reward alone; no gradient through q_t
    grad = jax.grad(lambda q: q_learning_loss(q_tm1, 0, 0.5, 0.0, q, "mse"))(q_t)
    np.testing.assert_array_equal(grad, 0.0)
    assert q_learning_loss(q_tm1, 0, 0.5, 0.0, q_t, "mse") == pytest.approx(0.125)
