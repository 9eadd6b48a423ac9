import numpy as np
import pytest

from tdgen.theory.mdp import random_graph_mdp
from tdgen.theory.second_order import TDSystem, init_mlp_params, integrate_flow, num_params


@pytest.fixture(scope="module")
def system():
    mdp = random_graph_mdp(6, 0.5, seed=3, gamma=0.8)
    features = np.random.default_rng(0).standard_normal((6, 3))
    return TDSystem(features, mdp.P[0], mdp.R[:, 0], mdp.gamma, (8, 8))


@pytest.fixture(scope="module")
def theta(system):
    return system.init_params(1)


def test_parameter_count_and_init():
    assert num_params((3, 8, 8, 1)) == 3 * 8 + 8 + 8 * 8 + 8 + 8 + 1
    assert init_mlp_params((3, 8, 8, 1), 0).shape == (num_params((3, 8, 8, 1)),)


def test_td_map_is_semi_gradient(system, theta):
    G = system.value_jacobian(theta)
    V = system.values(theta)
    delta = system.R + system.gamma * system.P @ V - V
    np.testing.assert_allclose(system.f(theta), G.T @ delta, rtol=1e-12, atol=1e-12)


def test_f1_closed_form_equals_minus_jacobian_times_f(system, theta):
    closed, by_jvp = system.f1_closed_form(theta), system.f1_jvp(theta)
    np.testing.assert_allclose(closed, by_jvp, rtol=1e-9, atol=1e-12)
    # The paper's Eq. 19 as printed is +J_f f: the opposite sign.
    np.testing.assert_allclose(system.paper_eq19(theta), -by_jvp, rtol=1e-9, atol=1e-12)


def test_jacobian_times_f_against_plain_finite_differences(system, theta):
    f = system.f(theta)
    eps = 1e-4 / np.linalg.norm(f)
    reference = (system.f(theta + eps * f) - system.f(theta - eps * f)) / (2 * eps)
    np.testing.assert_allclose(-system.f1_jvp(theta), reference, rtol=1e-6, atol=1e-9)


def test_two_terms_of_eq19_against_plain_formulas(system, theta):
    """(1/2) grad||grad TD||^2 = sum_s delta_s H_s f - G^T G f; gamma term = gamma G^T P G f."""
    G, f, delta = system.value_jacobian(theta), system.f(theta), system.td_error(theta)
    eps = 1e-4 / np.linalg.norm(f)
    hessian_term = (
        system.value_jacobian(theta + eps * f).T @ delta
        - system.value_jacobian(theta - eps * f).T @ delta
    ) / (2 * eps)
    np.testing.assert_allclose(
        system.grad_norm_penalty_grad(theta), hessian_term - G.T @ G @ f, rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        system.gamma_term(theta), system.gamma * G.T @ system.P @ G @ f, rtol=1e-10
    )


def test_f1_from_the_discrete_map_converges_linearly(system, theta):
    exact = system.f1_jvp(theta)
    errors = [np.linalg.norm(system.f1_discrete_difference(theta, a) - exact) for a in (1e-4, 5e-5)]
    assert errors[0] < 1e-2 * np.linalg.norm(exact)
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)


def test_flow_integration_matches_plain_rk4(system, theta):
    """solve_ivp (DOP853, rtol 1e-11, atol 1e-12) vs fixed-step RK4 (h = 5e-4) at t = 0.25."""
    alpha, T, h = 0.05, 0.25, 5e-4
    ivp = integrate_flow(system, theta, np.array([0.0, T]), alpha)[-1]
    x = theta.copy()
    field = lambda y: system.modified_field(y, alpha)  # noqa: E731
    for _ in range(round(T / h)):
        k1 = field(x)
        k2 = field(x + h / 2 * k1)
        k3 = field(x + h / 2 * k2)
        k4 = field(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(ivp, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(system.modified_field(theta, 0.0), system.f(theta), rtol=1e-14)


def test_local_error_orders(system, theta):
    """One step: first-order flow misses by O(alpha^2), the modified flow by O(alpha^3)."""
    errors = {}
    for alpha in (0.02, 0.01):
        step = system.discrete_step(theta, alpha)
        times = np.array([0.0, alpha])
        errors[alpha] = (
            np.linalg.norm(step - integrate_flow(system, theta, times, 0.0)[-1]),
            np.linalg.norm(step - integrate_flow(system, theta, times, alpha)[-1]),
        )
    first_ratio = errors[0.02][0] / errors[0.01][0]
    modified_ratio = errors[0.02][1] / errors[0.01][1]
    assert first_ratio == pytest.approx(4.0, rel=0.1)
    assert modified_ratio == pytest.approx(8.0, rel=0.15)


def test_iterate_matches_repeated_steps(system, theta):
    thetas = system.iterate(theta, 0.03, 3)
    x = theta
    for _ in range(3):
        x = system.discrete_step(x, 0.03)
    np.testing.assert_allclose(thetas[-1], x, rtol=1e-12)
    assert thetas.shape == (4, system.num_params)


def test_validation_messages():
    with pytest.raises(ValueError, match="P must be"):
        TDSystem(np.zeros((3, 2)), np.eye(2), np.zeros(3), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        TDSystem(np.zeros((2, 2)), np.eye(2), np.zeros(2), 1.0)
