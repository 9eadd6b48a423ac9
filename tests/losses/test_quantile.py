"""QR-DQN's quantile Huber loss (Dabney et al. 2018, Eq. 10) by hand and against a plain loop,
and the double Q-learning target."""

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.losses import (
    double_q_learning_loss,
    quantile_huber_loss,
    quantile_midpoints,
    quantile_q_learning_loss,
)


def test_midpoints_are_the_centres_of_n_equal_bins():
    np.testing.assert_allclose(quantile_midpoints(4), [0.125, 0.375, 0.625, 0.875])


def test_quantile_loss_by_hand():
    # Two quantiles (tau 1/4, 3/4) at 0 and 1; one target sample at 0.5, kappa 0 (plain loss).
    # u = 0.5 - 0 = 0.5 >= 0: weight 1/4 -> 0.125; u = 0.5 - 1 = -0.5 < 0: weight 1/4 -> 0.125.
    loss = quantile_huber_loss(jnp.array([0.0, 1.0]), jnp.array([0.5]), kappa=0.0)
    np.testing.assert_allclose(loss, 0.25, rtol=1e-6)
    # kappa 1: Huber(0.5) = 0.125 for both, weights 1/4: 2 * 0.25 * 0.125 = 0.0625.
    loss = quantile_huber_loss(jnp.array([0.0, 1.0]), jnp.array([0.5]), kappa=1.0)
    np.testing.assert_allclose(loss, 0.0625, rtol=1e-6)


def _reference(pred, target, kappa):
    n = len(pred)
    total = 0.0
    for i in range(n):
        tau = (2 * i + 1) / (2 * n)
        row = 0.0
        for t in target:
            u = t - pred[i]
            h = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
            row += abs(tau - (u < 0)) * h / kappa
        total += row / len(target)
    return total


def test_quantile_loss_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=7) * 3, rng.normal(size=5) * 3
    for kappa in (0.5, 1.0, 2.0):
        got = quantile_huber_loss(jnp.asarray(pred), jnp.asarray(target), kappa=kappa)
        np.testing.assert_allclose(got, _reference(pred, target, kappa), rtol=1e-5)


def test_quantiles_converge_to_the_quantiles_of_the_targets():
    # Minimising the quantile loss over samples of U(0, 1) puts theta_i at tau_i.
    samples = jnp.linspace(0.0, 1.0, 2001)
    grad = jax.grad(lambda th: quantile_huber_loss(th, samples, kappa=0.0))
    step = lambda _, th: th - 0.05 * grad(th)  # noqa: E731
    theta = jax.jit(lambda th: jax.lax.fori_loop(0, 3000, step, th))(jnp.zeros(4))  # 3000 steps
    np.testing.assert_allclose(theta, [0.125, 0.375, 0.625, 0.875], atol=0.01)


def test_quantile_q_learning_targets_the_greedy_action_by_mean():
    theta_t = jnp.array([[0.0, 0.0], [1.0, 3.0]])  # action 1 has the larger mean
    theta_tm1 = jnp.zeros((2, 2))
    loss = quantile_q_learning_loss(theta_tm1, 0, jnp.float32(1.0), jnp.float32(0.5), theta_t)
    expected = quantile_huber_loss(jnp.zeros(2), 1.0 + 0.5 * jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # no gradient flows through the target
    g = jax.grad(lambda t: quantile_q_learning_loss(theta_tm1, 0, 1.0, 0.5, t))(theta_t)
    np.testing.assert_array_equal(g, 0.0)


def test_double_q_evaluates_the_online_greedy_action_with_the_target_network():
    q_tm1 = jnp.array([0.0, 0.0])
    target = jnp.array([10.0, 2.0])  # the target network prefers action 0
    online = jnp.array([0.0, 1.0])  # the online network prefers action 1: its value, 2, is used
    loss = double_q_learning_loss(q_tm1, 0, 1.0, 0.5, target, online, loss="mse")
    np.testing.assert_allclose(loss, 0.5 * (1.0 + 0.5 * 2.0) ** 2, rtol=1e-6)
