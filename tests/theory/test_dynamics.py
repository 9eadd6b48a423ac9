"""Science checks for tdgen.theory.dynamics: closed forms against ODE integration, Observation 4.1,
and what Theorem 4.1 (Eq. 13) does and does not bound."""

import numpy as np
import pytest
import scipy.integrate
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tdgen.theory import dynamics, spectral

# solve_ivp is run far tighter than the comparison tolerance, so the comparison measures the
# closed form, not the integrator.
IVP_TOL = dict(rtol=1e-11, atol=1e-12)
CLOSED_FORM_TOL = dict(rtol=1e-8, atol=1e-9)


def random_mdp(seed: int, S: int = 6):
    rng = np.random.default_rng(seed)
    P = rng.random((S, S)) ** 2
    P /= P.sum(axis=1, keepdims=True)
    return P, rng.standard_normal(S), rng.standard_normal(S)


def symmetric_doubly_stochastic(seed: int, S: int = 6) -> np.ndarray:
    """A mixture of symmetrised random permutation matrices: symmetric, rows and columns sum to 1."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(4))
    P = np.zeros((S, S))
    for w in weights:
        perm = np.eye(S)[rng.permutation(S)]
        P += w * (perm + perm.T) / 2
    return P


def test_td_flow_matches_ode_integration():
    P, R, V0 = random_mdp(0)
    gamma, times = 0.9, np.linspace(0.0, 10.0, 21)
    ode = scipy.integrate.solve_ivp(
        lambda t, V: dynamics.td_vector_field(V, P, R, gamma), (0, 10), V0, t_eval=times, **IVP_TOL
    )
    np.testing.assert_allclose(dynamics.td_flow(P, R, gamma, V0, times), ode.y.T, **CLOSED_FORM_TOL)


def test_mc_flow_matches_ode_integration():
    _, V_pi, V0 = random_mdp(1)
    times = np.linspace(0.0, 8.0, 17)
    ode = scipy.integrate.solve_ivp(lambda t, V: V_pi - V, (0, 8), V0, t_eval=times, **IVP_TOL)
    np.testing.assert_allclose(dynamics.mc_flow(V_pi, V0, times), ode.y.T, **CLOSED_FORM_TOL)


def test_flows_accept_scalar_and_array_times_and_converge():
    P, R, V0 = random_mdp(2)
    V_pi = dynamics.value_of(P, R, 0.8)
    assert dynamics.td_flow(P, R, 0.8, V0, 1.0).shape == (6,)
    assert dynamics.td_flow(P, R, 0.8, V0, [0.0, 1.0, 2.0]).shape == (3, 6)
    np.testing.assert_allclose(dynamics.td_flow(P, R, 0.8, V0, 0.0), V0)
    np.testing.assert_allclose(dynamics.td_flow(P, R, 0.8, V0, 200.0), V_pi, atol=1e-10)
    np.testing.assert_allclose(dynamics.mc_flow(V_pi, V0, 60.0), V_pi, atol=1e-10)


def test_expected_td_approaches_flow_at_t_equal_n_alpha():
    P, R, V0 = random_mdp(3)
    gamma, horizon = 0.9, 5.0
    errors = []
    for alpha in (1e-2, 1e-3):
        steps = int(round(horizon / alpha))
        discrete = dynamics.expected_td(P, R, gamma, V0, alpha, steps)
        flow = dynamics.td_flow(P, R, gamma, V0, np.arange(0, steps + 1, steps // 10) * alpha)
        errors.append(np.max(np.abs(discrete[:: steps // 10] - flow)))
    # Euler is first order: the gap shrinks in proportion to alpha.
    assert errors[1] < 1e-2
    assert 7 < errors[0] / errors[1] < 13


def test_sampled_td_converges_to_V_pi():
    P, R, _ = random_mdp(4, S=5)
    gamma, steps = 0.8, 200_000
    alphas = 0.5 / (1.0 + np.arange(steps) / 2_000) ** 0.7
    trajectory = dynamics.sampled_td(
        P, R, gamma, np.zeros(5), alphas, steps, seed=0, record_every=1000
    )
    V_pi = dynamics.value_of(P, R, gamma)
    assert trajectory.shape == (201, 5)
    assert np.max(np.abs(trajectory[-1] - V_pi)) < 0.05 * np.max(np.abs(V_pi))
    assert np.max(np.abs(trajectory[-1] - V_pi)) < 0.1 * np.max(np.abs(trajectory[0] - V_pi))


def test_sampled_td_is_reproducible_from_its_seed():
    P, R, V0 = random_mdp(5)
    a = dynamics.sampled_td(P, R, 0.9, V0, 0.1, 500, seed=3)
    b = dynamics.sampled_td(P, R, 0.9, V0, 0.1, 500, seed=3)
    np.testing.assert_array_equal(a, b)


def test_coefficient_errors_decay_at_predicted_rates_including_complex_pairs():
    P, R, V0 = random_mdp(6, S=8)
    eig = spectral.eigendecomposition(P)
    assert np.sum(np.abs(eig.values.imag) > 1e-3) >= 2, "test MDP should have a complex pair"
    assert eig.conditioning().min() > 1e-3
    gamma, times = 0.95, np.linspace(0, 6, 13)
    V_pi = dynamics.value_of(P, R, gamma)
    measured = dynamics.coefficient_error(dynamics.td_flow(P, R, gamma, V0, times), V_pi, eig)
    error0 = dynamics.coefficient_error(V0, V_pi, eig)
    predicted = dynamics.predicted_coefficient_error(eig, gamma, error0, times)
    np.testing.assert_allclose(measured, predicted, rtol=1e-8, atol=1e-10)
    # |error_i(t)| = exp(-t (1 - gamma Re lambda_i)) |error_i(0)|: smooth directions decay slowest.
    rates = -np.log(np.abs(measured[-1]) / np.abs(error0)) / times[-1]
    np.testing.assert_allclose(rates, 1 - gamma * eig.values.real, rtol=1e-7)


def test_discrete_coefficient_errors_match_td_and_mc_predictions():
    P, R, V0 = random_mdp(7, S=7)
    eig = spectral.eigendecomposition(P)
    gamma, alpha, steps = 0.9, 0.1, 60
    V_pi = dynamics.value_of(P, R, gamma)
    error0 = dynamics.coefficient_error(V0, V_pi, eig)
    td = dynamics.coefficient_error(dynamics.expected_td(P, R, gamma, V0, alpha, steps), V_pi, eig)
    predicted = dynamics.predicted_discrete_coefficient_error(
        eig, gamma, alpha, error0, np.arange(steps + 1)
    )
    np.testing.assert_allclose(td, predicted, rtol=1e-8, atol=1e-10)
    mc = dynamics.coefficient_error(dynamics.expected_mc(V_pi, V0, alpha, steps), V_pi, eig)
    np.testing.assert_allclose(mc, (1 - alpha) ** np.arange(steps + 1)[:, None] * error0, rtol=1e-8)


stochastic_rows = st.integers(2, 6).flatmap(
    lambda S: arrays(float, (S, S), elements=st.floats(0.01, 1.0))
)


@settings(max_examples=60, deadline=None)
@given(raw=stochastic_rows, gamma=st.floats(0.0, 0.99), seed=st.integers(0, 2**16))
def test_td_error_lies_within_eigenbasis_sandwich_of_eq13(raw, gamma, seed):
    P = raw / raw.sum(axis=1, keepdims=True)
    eig = spectral.eigendecomposition(P)
    assume(eig.simple(min_conditioning=1e-4, min_gap=1e-6).all())  # diagonalisable, distinct
    rng = np.random.default_rng(seed)
    S = len(P)
    R, V0 = rng.standard_normal(S), rng.standard_normal(S)
    times = np.linspace(0.0, 5.0, 6)
    V_t = dynamics.td_flow(P, R, gamma, V0, times)
    td = dynamics.td_error(P, R, gamma, V_t)
    eq13 = dynamics.td_error_bound(
        eig, gamma, dynamics.coefficient_error(V_t, dynamics.value_of(P, R, gamma), eig)
    )
    lo, hi = dynamics.eigenbasis_norm_range(eig)
    assert np.all(td <= hi * eq13 * (1 + 1e-7) + 1e-12)
    assert np.all(td >= lo * eq13 * (1 - 1e-7) - 1e-12)
    # Eq. 27 is Eq. 13 along the flow (Observation 4.1 substituted in).
    error0 = dynamics.coefficient_error(V0, dynamics.value_of(P, R, gamma), eig)
    np.testing.assert_allclose(
        dynamics.td_error_bound_flow(eig, gamma, error0, times), eq13, rtol=1e-6, atol=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), S=st.integers(2, 8), gamma=st.floats(0.0, 0.99))
def test_eq13_is_an_equality_for_symmetric_P(seed, S, gamma):
    P = symmetric_doubly_stochastic(seed, S)
    eig = spectral.eigendecomposition(P)
    values = np.sort(eig.values.real)
    assume(np.min(np.diff(values)) > 1e-4)  # distinct eigenvalues: orthonormal eigenvectors
    rng = np.random.default_rng(seed)
    R, V0 = rng.standard_normal(S), rng.standard_normal(S)
    V_t = dynamics.td_flow(P, R, gamma, V0, np.linspace(0.0, 5.0, 6))
    V_pi = dynamics.value_of(P, R, gamma)
    td = dynamics.td_error(P, R, gamma, V_t)
    eq13 = dynamics.td_error_bound(eig, gamma, dynamics.coefficient_error(V_t, V_pi, eig))
    np.testing.assert_allclose(td, eq13, rtol=1e-7, atol=1e-12)


def test_eq13_is_not_an_upper_bound_for_non_orthogonal_eigenvectors():
    """A finding, not a bug: Eq. 13 drops the Gram matrix of the eigenbasis (see td_error_bound)."""
    worst = 0.0
    for seed in range(20):
        P, R, V0 = random_mdp(seed, S=5)
        gamma = 0.9
        eig = spectral.eigendecomposition(P)
        V_t = dynamics.td_flow(P, R, gamma, V0, np.linspace(0, 5, 11))
        error = dynamics.coefficient_error(V_t, dynamics.value_of(P, R, gamma), eig)
        ratio = dynamics.td_error(P, R, gamma, V_t) / dynamics.td_error_bound(eig, gamma, error)
        worst = max(worst, float(ratio.max()))
    assert worst > 1.05


def test_bad_inputs_raise_clear_errors():
    P, R, V0 = random_mdp(8)
    with pytest.raises(ValueError, match="gamma"):
        dynamics.td_flow(P, R, 1.0, V0, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        dynamics.expected_td(P, R, -0.1, V0, 0.1, 3)
    bad = P.copy()
    bad[2, 0] += 0.5
    with pytest.raises(ValueError, match="row 2"):
        dynamics.td_flow(bad, R, 0.9, V0, 1.0)
    with pytest.raises(ValueError, match="square"):
        dynamics.td_error(P[:, :3], R, 0.9, V0)
    with pytest.raises(ValueError, match="alpha"):
        dynamics.expected_td(P, R, 0.9, V0, 0.0, 3)
    with pytest.raises(ValueError, match="non-negative"):
        dynamics.td_flow(P, R, 0.9, V0, -1.0)
    defective = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # Jordan block at 0
    eig = spectral.eigendecomposition(defective)
    error = dynamics.coefficient_error(np.ones(3), np.zeros(3), eig)
    assert np.any(np.isnan(error))
    with pytest.raises(ValueError, match="not simple"):
        dynamics.td_error_bound(eig, 0.9, error)
