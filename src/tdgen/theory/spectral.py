"""Spectral view of a transition matrix `P^pi`: smoothness, eigen-coefficients, projections (section 4).

`P^pi` need be neither symmetric nor diagonalisable, so eigenvectors are complex in general and not
orthogonal. Coefficients are taken through spectral projectors: for a simple eigenvalue with right
eigenvector `v_i` and left eigenvector `w_i` (`w_i^H P = lambda_i w_i^H`), the coefficient of V is
`c_i = w_i^H V / (w_i^H v_i)`. This is exactly the i-th coordinate of V in the eigenbasis when P is
diagonalisable, and stays well defined for simple eigenvalues of a defective P, where inverting the
(singular) matrix of right eigenvectors fails. For a real V the coefficients of a complex-conjugate
pair are conjugate, and the pair contributes the real vector `2 Re(c_i v_i)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from tdgen.errors import InputError

# An eigenvalue counts as simple when |w^H v| (unit-norm vectors) and its distance to every other
# eigenvalue both exceed these: then its rank-one spectral projector exists and is bounded.
MIN_CONDITIONING = 1e-8
MIN_EIGENGAP = 1e-8


@dataclass(frozen=True, eq=False)
class Eigendecomposition:
    """Eigen-pairs of a square matrix, sorted smoothest first (largest real part first).

    values: `[n]` complex eigenvalues. right: `[n, n]`, column i is the unit-norm right eigenvector
    `v_i`. left: `[n, n]`, column i is the unit-norm left eigenvector `w_i` of the same eigenvalue.
    """

    values: np.ndarray
    right: np.ndarray
    left: np.ndarray

    @property
    def is_real(self) -> bool:
        return bool(np.all(np.abs(self.values.imag) < 1e-10))

    def conditioning(self) -> np.ndarray:
        """`|w_i^H v_i|` per eigenvalue: near zero for repeated or defective eigenvalues."""
        return np.abs(np.einsum("ni,ni->i", self.left.conj(), self.right))

    def simple(
        self, min_conditioning: float = MIN_CONDITIONING, min_gap: float = MIN_EIGENGAP
    ) -> np.ndarray:
        """Boolean mask of eigenvalues with a well-defined, bounded rank-one spectral projector.

        Excludes repeated eigenvalues (another within `min_gap`, e.g. one eigenvalue 1 per absorbing
        state) and defective or badly conditioned ones (`|w^H v| <= min_conditioning`).
        """
        gaps = np.abs(self.values[:, None] - self.values[None, :])
        np.fill_diagonal(gaps, np.inf)
        return (self.conditioning() > min_conditioning) & (gaps.min(axis=1) > min_gap)

    def conjugate_partner(self) -> np.ndarray:
        """Index of each eigenvalue's complex conjugate (itself when real)."""
        distance = np.abs(self.values[:, None] - self.values.conj()[None, :])
        return np.argmin(distance, axis=1)


def eigendecomposition(P: np.ndarray) -> Eigendecomposition:
    """Eigen-pairs of `P`, sorted from smoothest (largest real part) to least smooth.

    Ties in the real part are broken by |imaginary part|, then by the sign of the imaginary part, so
    conjugate pairs sit next to each other. Right and left eigenvectors have unit norm; real ones
    are returned with zero imaginary part and their largest entry positive.
    """
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"P must be square, got shape {P.shape}")
    values, left, right = scipy.linalg.eig(P, left=True, right=True)
    order = np.lexsort((-values.imag, np.abs(values.imag), -np.round(values.real, 12)))
    values, left, right = values[order], left[:, order], right[:, order]
    real = np.abs(values.imag) < 1e-12
    values = np.where(real, values.real + 0j, values)
    right = _normalise(right, real)
    left = _normalise(left, real)
    return Eigendecomposition(values, right, left)


def _normalise(vectors: np.ndarray, real: np.ndarray) -> np.ndarray:
    vectors = vectors / np.linalg.norm(vectors, axis=0, keepdims=True)
    for i in np.flatnonzero(real):
        v = vectors[:, i]
        phase = v[np.argmax(np.abs(v))]
        v = (v * abs(phase) / phase).real
        vectors[:, i] = v / np.linalg.norm(v)
    return vectors


def expected_variation(V: np.ndarray, P: np.ndarray) -> float:
    """Expected variation `rho(V) = sum_x |V(x) - E_{P(x'|x)} V(x')|` (Definition 4.1, Eq. 7)."""
    V = np.asarray(V)
    return float(np.sum(np.abs(V - P @ V)))


def eigen_coefficients(V: np.ndarray, eig: Eigendecomposition) -> np.ndarray:
    """Coefficients `c_i = w_i^H V / (w_i^H v_i)` of V (`[n]` or `[n, m]`) along each eigenvector.

    Complex in general (see the module docstring). Eigenvalues that are not simple (see
    `Eigendecomposition.simple`: repeated, e.g. eigenvalue 1 once per absorbing state, or defective)
    have no rank-one spectral projector; their coefficients are NaN rather than arbitrary numbers.
    """
    V = np.asarray(V)
    numerator = eig.left.conj().T @ V
    denominator = np.einsum("ni,ni->i", eig.left.conj(), eig.right)
    ok = eig.simple()
    safe = np.where(ok, denominator, 1.0)
    coefficients = numerator / (safe if V.ndim == 1 else safe[:, None])
    coefficients[~ok] = np.nan
    return coefficients


def conjugate_closure(indices: np.ndarray, eig: Eigendecomposition) -> np.ndarray:
    """The index set extended by the conjugate partner of every complex eigenvalue in it."""
    indices = np.asarray(indices, dtype=int)
    return np.unique(np.concatenate([indices, eig.conjugate_partner()[indices]]))


def project(V: np.ndarray, eig: Eigendecomposition, indices: np.ndarray) -> np.ndarray:
    """Spectral projection of V onto the span of the chosen eigenvectors: `sum_i c_i v_i`.

    The index set is closed under complex conjugation first, so the projection of a real V is real.
    This is the oblique projection along the other eigenvectors, not an orthogonal one: for a
    non-normal P an orthogonal projection onto a span would mix in components of the others.
    """
    chosen = conjugate_closure(indices, eig)
    coefficients = eigen_coefficients(V, eig)[chosen]
    if np.any(np.isnan(coefficients)):
        raise InputError("cannot project onto eigenvectors of non-simple eigenvalues")
    return (eig.right[:, chosen] @ coefficients).real


def fourier_spectrum(values: np.ndarray) -> np.ndarray:
    """Magnitudes of the discrete Fourier coefficients of a real sequence, frequencies 0..k//2."""
    return np.abs(np.fft.rfft(np.asarray(values, dtype=float)))
