import numpy as np
import pytest

from tdgen.theory import kernels
from tdgen.theory.mdp import circle_mdp, random_graph_mdp


def _chain(num_states=8, gamma=0.9, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.random((num_states, num_states))
    P /= P.sum(axis=1, keepdims=True)
    return P, rng.standard_normal(num_states), gamma


def _linear_td_reference(Phi, w0, P, R, gamma, train, eta, steps):
    """Eq. 42 restricted to training states: w <- w + eta Phi_train^T (R + gamma P V - V)(train)."""
    w, values = w0.copy(), [Phi @ w0]
    for _ in range(steps):
        V = Phi @ w
        w = w + eta * Phi[train].T @ (R + gamma * P @ V - V)[train]
        values.append(Phi @ w)
    return np.array(values)


@pytest.mark.parametrize("test_form", ["kernel", "inverse"])
def test_kernel_td_equals_linear_td_in_parameter_space(test_form):
    P, R, gamma = _chain()
    train = np.array([0, 1, 3, 4, 6])
    rng = np.random.default_rng(1)
    Phi = rng.standard_normal((8, 12))  # more features than training states: K_train invertible
    w0 = 0.1 * rng.standard_normal(12)
    expected = _linear_td_reference(Phi, w0, P, R, gamma, train, 0.01, 30)
    got = kernels.kernel_td(Phi @ w0, Phi @ Phi.T, P, R, gamma, train, 0.01, 30, test_form)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)
    test = np.setdiff1d(np.arange(8), train)
    assert np.abs(got[-1, test] - got[0, test]).max() > 1e-3  # test states did move


def test_kernel_td_flow_matches_small_euler_steps():
    P, R, gamma = _chain()
    train = np.arange(5)
    K = kernels.rbf_kernel(np.arange(8.0), np.arange(8.0), 1.5)
    flow = kernels.kernel_td_flow(np.zeros(8), K, P, R, gamma, train, [2.0])[0]
    euler = kernels.kernel_td(np.zeros(8), K, P, R, gamma, train, 1e-4, 20_000)[-1]
    np.testing.assert_allclose(flow, euler, atol=1e-3)


def test_kernel_mc_with_identity_is_tabular_mc():
    rng = np.random.default_rng(0)
    target, V0 = rng.standard_normal(6), rng.standard_normal(6)
    got = kernels.kernel_mc(V0, np.eye(6), target, np.arange(6), 0.3, 10)
    expected = target + (V0 - target) * (1 - 0.3) ** np.arange(11)[:, None]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    flow = kernels.kernel_mc_flow(V0, np.eye(6), target, np.arange(6), [0.0, 1.0])
    np.testing.assert_allclose(flow[1], target + (V0 - target) * np.exp(-1.0), atol=1e-10)


def test_kernel_td_with_identity_on_all_states_converges_to_v_pi():
    mdp = circle_mdp(10, 3, 0.8)
    policy = np.zeros(10, dtype=int)
    P, R = mdp.P_pi(policy), mdp.R_pi(policy)
    V = kernels.kernel_td(np.zeros(10), np.eye(10), P, R, 0.8, np.arange(10), 1.0, 200)[-1]
    np.testing.assert_allclose(V, mdp.V_pi(policy), atol=1e-10)


def test_kernel_regression_full_rank_on_all_states_recovers_targets():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 7))
    K, y = A @ A.T + 0.1 * np.eye(7), rng.standard_normal(7)
    states = np.arange(7)
    np.testing.assert_allclose(kernels.kernel_regression(K, y, states, states), y, atol=1e-8)


def test_eigenvector_kernel_of_all_eigenvectors_is_identity():
    P = random_graph_mdp(30, 0.2, seed=3).P[0]
    basis = kernels.reversible_eigenbasis(P)
    np.testing.assert_allclose(kernels.eigenvector_kernel(basis.symmetric), np.eye(30), atol=1e-10)
    # Right eigenvectors of P are real eigenvectors, sorted smooth first (lambda_1 = 1, constant).
    np.testing.assert_allclose(P @ basis.right, basis.right * basis.values, atol=1e-10)
    assert basis.values[0] == pytest.approx(1.0)
    assert np.all(np.diff(basis.values) <= 1e-12)
    # D-orthogonality: the oblique spectral projection is D-weighted orthogonal.
    gram = basis.right.T @ (basis.stationary[:, None] * basis.right)
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-10)


def test_eigenvector_kernel_regression_recovers_in_span_targets():
    P = random_graph_mdp(40, 0.2, seed=1).P[0]
    basis = kernels.reversible_eigenbasis(P)
    K = kernels.eigenvector_kernel(basis.right, np.arange(10))
    y = basis.right[:, :10] @ np.random.default_rng(0).standard_normal(10)
    train, test = np.arange(0, 40, 2), np.arange(1, 40, 2)
    np.testing.assert_allclose(
        kernels.kernel_regression(K, y[train], train, test), y[test], atol=1e-8
    )


def test_n_step_target():
    P, R, gamma = _chain()
    assert np.allclose(kernels.n_step_target(P, R, gamma, 1), R)
    expected = R + gamma * P @ R + gamma**2 * P @ P @ R
    np.testing.assert_allclose(kernels.n_step_target(P, R, gamma, 3), expected)
    V_pi = np.linalg.solve(np.eye(8) - gamma * P, R)
    np.testing.assert_allclose(kernels.n_step_target(P, R, gamma, 4, V_bootstrap=V_pi), V_pi)


def test_rbf_kernel_values():
    K = kernels.rbf_kernel(np.arange(3.0), np.arange(2.0), 2.0)
    assert K.shape == (3, 2)
    assert K[2, 0] == pytest.approx(np.exp(-4 / 8))
    assert np.allclose(kernels.rbf_kernel(np.arange(5.0), np.arange(5.0), 0.01), np.eye(5))


def test_spectral_radius_of_tabular_td_and_mc():
    P, _, gamma = _chain()
    # K = I on all states: I + eta (gamma P - I); for eta = 1 it is gamma P, radius gamma.
    assert kernels.td_spectral_radius(np.eye(8), P, gamma, np.arange(8), 1.0) == pytest.approx(
        gamma
    )
    assert kernels.mc_spectral_radius(np.eye(8), np.arange(8), 0.25) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "call",
    [
        lambda: kernels.rbf_kernel(np.arange(3.0), np.arange(3.0), 0.0),
        lambda: kernels.rbf_kernel(np.arange(3.0), np.arange(3.0), -1.0),
        lambda: kernels.rbf_kernel(np.zeros((3, 2)), np.zeros((3, 1)), 1.0),
        lambda: kernels.kernel_td(np.zeros(4), np.eye(5), np.eye(5), np.zeros(5), 0.9, [0], 0.1, 1),
        lambda: kernels.kernel_td(np.zeros(5), np.eye(4), np.eye(5), np.zeros(5), 0.9, [0], 0.1, 1),
        lambda: kernels.kernel_td(np.zeros(5), np.eye(5), np.eye(5), np.zeros(5), 0.9, [7], 0.1, 1),
        lambda: kernels.kernel_mc(np.zeros(5), np.eye(5), np.zeros(4), [0], 0.1, 1),
        lambda: kernels.kernel_mc(np.zeros(5), np.eye(5), np.zeros(5), [0], 0.1, 1, "bogus"),
        lambda: kernels.kernel_regression(np.eye(5), np.zeros(3), [0, 1], [2]),
        lambda: kernels.kernel_regression(np.eye(5), np.zeros(2), [0, 1], [2], ridge=-1.0),
        lambda: kernels.reversible_eigenbasis(circle_mdp(5).P[0] * 0.5 + 0.5 * np.eye(5)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
