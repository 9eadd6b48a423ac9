"""Rank metrics on matrices whose answers are known in closed form."""

import numpy as np
import pytest

from tdgen.interference import (
    effective_dimension,
    identity_distance,
    singular_values,
    srank,
    update_rank,
)


def with_spectrum(sigmas, seed=0):
    """A matrix U diag(sigmas) V^T with random orthogonal U, V."""
    rng = np.random.default_rng(seed)
    n = len(sigmas)
    u, _ = np.linalg.qr(rng.normal(size=(n, n)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (u * np.asarray(sigmas)) @ v.T


def test_update_rank_thresholds_relative_to_largest():
    A = with_spectrum([10.0, 5.0, 1.01, 0.99, 0.1, 0.0])
    assert update_rank(A) == 3  # 1.01 > 0.1 * 10 > 0.99
    assert update_rank(A, eps=0.05) == 4
    assert update_rank(np.eye(7)) == 7
    assert update_rank(np.ones((5, 5))) == 1
    assert update_rank(np.zeros((4, 4))) == 0
    np.testing.assert_allclose(singular_values(A)[:2], [10.0, 5.0], rtol=1e-5)


def test_srank_counts_mass_of_singular_values():
    assert srank(np.eye(6)) == 6
    assert srank(with_spectrum([1.0, 1.0, 0.0, 0.0])) == 2
    # cumulative fractions 100/111 = 0.901, 110/111 = 0.991, 1
    A = with_spectrum([100.0, 10.0, 1.0])
    assert srank(A) == 2
    assert srank(A, delta=0.005) == 3
    assert srank(A, delta=0.05) == 2
    assert srank(A, delta=0.1) == 1


@pytest.mark.parametrize("kind", ["entropy", "participation"])
def test_effective_dimension_of_equal_spectra(kind):
    np.testing.assert_allclose(effective_dimension(np.eye(5), kind), 5.0, rtol=1e-5)
    np.testing.assert_allclose(effective_dimension(np.ones((4, 4)), kind), 1.0, rtol=1e-5)
    d = effective_dimension(with_spectrum([1.0, 0.5, 0.1]), kind)
    assert 1.0 < d < 3.0
    s = np.array([1.0, 0.5, 0.1])
    p = s / s.sum()
    # exp of the entropy of sigma / sum(sigma); (sum sigma^2)^2 / sum sigma^4
    want = np.exp(-np.sum(p * np.log(p))) if kind == "entropy" else (s @ s) ** 2 / np.sum(s**4)
    np.testing.assert_allclose(d, want, rtol=1e-5)


def test_identity_distance_scale_invariant():
    assert float(identity_distance(3e-4 * np.eye(6))) < 1e-6
    ones = np.ones((9, 9))
    np.testing.assert_allclose(identity_distance(ones), np.sqrt(2 - 2 / 3), rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"eps must lie in \(0, 1\), got 1.5"):
        update_rank(np.eye(3), eps=1.5)
    with pytest.raises(ValueError, match="eps must lie in"):
        update_rank(np.eye(3), eps=0.0)
    with pytest.raises(ValueError, match="delta must lie in"):
        srank(np.eye(3), delta=1.0)
    with pytest.raises(ValueError, match="2-D matrix"):
        update_rank(np.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        update_rank(np.ones((0, 3)))
    with pytest.raises(ValueError, match="square"):
        identity_distance(np.ones((2, 3)))
    with pytest.raises(ValueError, match="did you mean 'entropy'"):
        effective_dimension(np.eye(2), "entropie")


def test_singular_values_of_wide_and_tall_matrices_through_qr():
    rng = np.random.default_rng(3)
    for shape in [(6, 40), (40, 6), (5, 11)]:
        A = rng.normal(size=shape).astype(np.float32)
        np.testing.assert_allclose(
            singular_values(A), np.linalg.svd(A, compute_uv=False), rtol=1e-4, atol=1e-5
        )
