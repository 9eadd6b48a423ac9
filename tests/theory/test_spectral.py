import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tdgen.theory.mdp import circle_mdp
from tdgen.theory.spectral import (
    conjugate_closure,
    eigen_coefficients,
    eigendecomposition,
    expected_variation,
    fourier_spectrum,
    project,
)


def _stochastic(seed, n=7):
    P = np.random.default_rng(seed).random((n, n))
    return P / P.sum(axis=1, keepdims=True)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_eigenpairs_are_sorted_smooth_first_and_satisfy_both_eigen_equations(seed):
    P = _stochastic(seed)
    eig = eigendecomposition(P)
    assert np.all(np.diff(eig.values.real) <= 1e-12)
    assert eig.values[0] == pytest.approx(1.0)
    np.testing.assert_allclose(P @ eig.right, eig.right * eig.values, atol=1e-10)
    np.testing.assert_allclose(
        eig.left.conj().T @ P, eig.values[:, None] * eig.left.conj().T, atol=1e-10
    )
    np.testing.assert_allclose(np.linalg.norm(eig.right, axis=0), 1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_coefficients_reconstruct_a_real_function_and_conjugate_pairs_have_conjugate_coefficients(
    seed,
):
    P = _stochastic(seed)
    eig = eigendecomposition(P)
    V = np.random.default_rng(seed + 1).standard_normal(len(P))
    c = eigen_coefficients(V, eig)
    np.testing.assert_allclose(eig.right @ c, V, atol=1e-8)
    partner = eig.conjugate_partner()
    np.testing.assert_allclose(c[partner], c.conj(), atol=1e-8)


def test_conjugate_pairs_are_adjacent_with_positive_imaginary_part_first():
    eig = eigendecomposition(circle_mdp(6, reward_state=0).P_pi(np.zeros(6, int)))
    # A 6-cycle has the 6th roots of unity as eigenvalues.
    expected = np.exp(2j * np.pi * np.array([0, 1, -1, 2, -2, 3]) / 6)
    np.testing.assert_allclose(eig.values, expected, atol=1e-12)
    assert eig.values[1].imag > 0 and eig.values[2] == pytest.approx(eig.values[1].conjugate())


def test_projection_onto_a_set_is_real_idempotent_and_complementary():
    P = _stochastic(3, n=8)
    eig = eigendecomposition(P)
    V = np.random.default_rng(4).standard_normal(8)
    top = [0, 1, 2]
    rest = np.setdiff1d(np.arange(8), conjugate_closure(np.array(top), eig))
    smooth = project(V, eig, top)
    assert smooth.dtype == float
    np.testing.assert_allclose(project(smooth, eig, top), smooth, atol=1e-10)
    np.testing.assert_allclose(smooth + project(V, eig, rest), V, atol=1e-10)


def test_coefficients_of_a_defective_matrix_are_nan_only_where_not_simple():
    # A Jordan block for eigenvalue 0 (a chain 0 -> 1 -> 2 absorbing) next to a simple eigenvalue.
    P = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    eig = eigendecomposition(P)
    c = eigen_coefficients(np.array([1.0, 2.0, 3.0]), eig)
    assert eig.values[0] == pytest.approx(1.0)
    assert np.isfinite(c[0]) and np.all(np.isnan(c[1:]))
    np.testing.assert_allclose(c[0] * eig.right[:, 0], [3.0, 3.0, 3.0])  # the limit value 3


def test_expected_variation_of_an_eigenvector_is_one_minus_lambda_times_its_l1_norm():
    P = _stochastic(5)
    P = (P + P.T) / 2
    P = P / P.sum(axis=1, keepdims=True)  # reversible, so real eigen-pairs
    eig = eigendecomposition(P)
    for value, v in zip(eig.values.real, eig.right.T.real, strict=True):
        assert expected_variation(v, P) == pytest.approx(abs(1 - value) * np.abs(v).sum())  # Eq. 8
    assert expected_variation(np.ones(7), P) == pytest.approx(0.0)


def test_fourier_spectrum_of_a_pure_tone_peaks_at_its_frequency():
    k = np.arange(64)
    spectrum = fourier_spectrum(3.0 + np.cos(2 * np.pi * 5 * k / 64))
    assert spectrum[0] == pytest.approx(3.0 * 64)
    assert np.argmax(spectrum[1:]) + 1 == 5


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        eigendecomposition(np.ones((2, 3)))


def test_a_repeated_eigenvalue_gets_no_coefficient_even_when_well_conditioned():
    eig = eigendecomposition(np.eye(3))  # eigenvalue 1 three times: no rank-one projector
    assert not eig.simple().any()
    assert np.all(np.isnan(eigen_coefficients(np.arange(3.0), eig)))
