"""Tabular learning dynamics of Monte Carlo and TD updates (section 4.1, appendix A.2).

Continuous time: the MC flow `dV/dt = V^pi - V` and the TD flow `dV/dt = R^pi + gamma P^pi V - V`
(Eq. 9), solved in closed form (Eq. 10). Discrete time: expected updates
`V <- V + alpha (R + gamma P V - V)`, the MC regression `V <- V + alpha (V^pi - V)`, and TD on sampled
transitions. The error along each eigenvector of `P^pi` (Observation 4.1) is read through spectral
projectors (`spectral.eigen_coefficients`), which stay exact for simple eigenvalues of a
non-diagonalisable `P^pi`: with `w_i^H P = lambda_i w_i^H`, `w_i^H (V_t - V^pi)` evolves by the
scalar factor `exp(-t (1 - gamma lambda_i))`, complex when `lambda_i` is.

Shapes: `S` states, `T` times. A value function is `[S]`, a trajectory `[T, S]`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from tdgen.errors import InputError
from tdgen.theory import spectral

_ROW_SUM_TOL = 1e-8


def _check_gamma(gamma: float) -> float:
    if not 0.0 <= float(gamma) < 1.0:
        raise InputError(f"gamma must lie in [0, 1), got {gamma}")
    return float(gamma)


def _check_transition(P: np.ndarray) -> np.ndarray:
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"P_pi must be a square [S, S] matrix, got shape {P.shape}")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise InputError("P_pi must have finite, non-negative entries")
    row_sums = P.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > _ROW_SUM_TOL:
        raise InputError(
            f"rows of P_pi must sum to 1 (row-stochastic): row {worst} sums to {row_sums[worst]:.6g}"
        )
    return P


def _check_alpha(alpha: float) -> float:
    if not 0.0 < float(alpha) <= 1.0:
        raise InputError(f"step size alpha must lie in (0, 1], got {alpha}")
    return float(alpha)


def _times(t: float | np.ndarray) -> tuple[np.ndarray, bool]:
    times = np.asarray(t, dtype=float)
    if np.any(times < 0) or not np.all(np.isfinite(times)):
        raise InputError("times t must be finite and non-negative")
    return np.atleast_1d(times), times.ndim == 0


def value_of(P_pi: np.ndarray, R_pi: np.ndarray, gamma: float) -> np.ndarray:
    """`V^pi = (I - gamma P^pi)^-1 R^pi`, the fixed point of the TD flow; `[S]`."""
    P = _check_transition(P_pi)
    gamma = _check_gamma(gamma)
    return np.linalg.solve(np.eye(len(P)) - gamma * P, np.asarray(R_pi, dtype=float))


def mc_flow(V_pi: np.ndarray, V0: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """MC flow `V_t = exp(-t)(V0 - V^pi) + V^pi` (section 4.1); `[S]` for scalar t, else `[T, S]`."""
    times, scalar = _times(t)
    V_pi, V0 = np.asarray(V_pi, dtype=float), np.asarray(V0, dtype=float)
    trajectory = V_pi[None] + np.exp(-times)[:, None] * (V0 - V_pi)[None]
    return trajectory[0] if scalar else trajectory


def td_flow(
    P_pi: np.ndarray, R_pi: np.ndarray, gamma: float, V0: np.ndarray, t: float | np.ndarray
) -> np.ndarray:
    """TD flow `V_t = exp(-t (I - gamma P^pi))(V0 - V^pi) + V^pi` (Eq. 10), by `scipy.linalg.expm`.

    Solves Eq. 9, `dV/dt = -(I - gamma P^pi) V + R^pi`. Returns `[S]` for scalar t, else `[T, S]`.
    """
    P = _check_transition(P_pi)
    times, scalar = _times(t)
    V_pi = value_of(P, R_pi, gamma)
    A = np.eye(len(P)) - gamma * P
    offset = np.asarray(V0, dtype=float) - V_pi
    propagators = scipy.linalg.expm(-times[:, None, None] * A[None])  # [T, S, S], batched
    trajectory = V_pi[None] + propagators @ offset
    return trajectory[0] if scalar else trajectory


def td_vector_field(V: np.ndarray, P_pi: np.ndarray, R_pi: np.ndarray, gamma: float) -> np.ndarray:
    """Right-hand side of Eq. 9, `T^pi V - V = R^pi + gamma P^pi V - V`; `[S]`."""
    return R_pi + gamma * (P_pi @ V) - V


def expected_td(
    P_pi: np.ndarray, R_pi: np.ndarray, gamma: float, V0: np.ndarray, alpha: float, num_steps: int
) -> np.ndarray:
    """Expected tabular TD, `V <- V + alpha (R^pi + gamma P^pi V - V)` on every state at once.

    The Euler discretisation of Eq. 9 with step alpha, so step n approximates `td_flow` at
    `t = n alpha`. Returns the trajectory `[num_steps + 1, S]`, starting with V0.
    """
    P = _check_transition(P_pi)
    gamma, alpha = _check_gamma(gamma), _check_alpha(alpha)
    R = np.asarray(R_pi, dtype=float)
    trajectory = np.empty((num_steps + 1, len(P)))
    trajectory[0] = V0
    for n in range(num_steps):
        V = trajectory[n]
        trajectory[n + 1] = V + alpha * td_vector_field(V, P, R, gamma)
    return trajectory


def expected_mc(V_pi: np.ndarray, V0: np.ndarray, alpha: float, num_steps: int) -> np.ndarray:
    """Discrete MC regression `V <- V + alpha (V^pi - V)`, in closed form; `[num_steps + 1, S]`.

    Every direction contracts by the same factor `(1 - alpha)` per step.
    """
    alpha = _check_alpha(alpha)
    V_pi, V0 = np.asarray(V_pi, dtype=float), np.asarray(V0, dtype=float)
    decay = (1.0 - alpha) ** np.arange(num_steps + 1)
    return V_pi[None] + decay[:, None] * (V0 - V_pi)[None]


def sampled_td(
    P_pi: np.ndarray,
    R_pi: np.ndarray,
    gamma: float,
    V0: np.ndarray,
    alpha: float | np.ndarray,
    num_steps: int,
    seed: int,
    record_every: int = 1,
) -> np.ndarray:
    """Tabular TD(0) on sampled transitions: `V[s] <- V[s] + alpha_k (R^pi[s] + gamma V[s'] - V[s])`.

    Each step draws the state s uniformly at random (i.i.d., not along a trajectory) and
    `s' ~ P^pi(s, .)` from `numpy.random.default_rng(seed)`; the reward is the expected reward
    `R^pi[s]`. `alpha` is a constant or a schedule `[num_steps]` (decaying schedules converge to
    V^pi). Returns V0 and every `record_every`-th iterate, `[num_steps // record_every + 1, S]`.
    """
    P = _check_transition(P_pi)
    gamma = _check_gamma(gamma)
    S = len(P)
    alphas = np.broadcast_to(np.asarray(alpha, dtype=float), (num_steps,))
    if np.any(alphas <= 0) or np.any(alphas > 1):
        raise InputError("step sizes alpha must lie in (0, 1]")
    rng = np.random.default_rng(seed)
    states = rng.integers(S, size=num_steps)
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0
    uniforms = rng.random(num_steps)
    next_states = np.empty(num_steps, dtype=int)
    for start in range(0, num_steps, 4096):
        chunk = slice(start, start + 4096)
        next_states[chunk] = (cdf[states[chunk]] < uniforms[chunk, None]).sum(axis=1)
    R = np.asarray(R_pi, dtype=float)
    V = np.array(V0, dtype=float)
    recorded = [V.copy()]
    for k in range(num_steps):
        s = states[k]
        V[s] += alphas[k] * (R[s] + gamma * V[next_states[k]] - V[s])
        if (k + 1) % record_every == 0:
            recorded.append(V.copy())
    return np.array(recorded)


def coefficient_error(
    V: np.ndarray, V_pi: np.ndarray, eig: spectral.Eigendecomposition
) -> np.ndarray:
    """`alpha_i^t - alpha_i^pi` of Observation 4.1 for V `[S]` or a trajectory `[T, S]`.

    Coefficients along each right eigenvector through spectral projectors (complex in general; NaN
    for non-simple eigenvalues). Returns `[n]` or `[T, n]`, eigenvalues in `eig` order.
    """
    difference = np.asarray(V, dtype=float) - np.asarray(V_pi, dtype=float)
    return spectral.eigen_coefficients(difference.T, eig).T


def predicted_coefficient_error(
    eig: spectral.Eigendecomposition, gamma: float, error0: np.ndarray, t: float | np.ndarray
) -> np.ndarray:
    """Observation 4.1: `alpha_i^t - alpha_i^pi = exp(-t (1 - gamma lambda_i)) (alpha_i^0 - alpha_i^pi)`.

    `error0` `[n]` (complex); complex `lambda_i` give rotating, decaying errors with rate
    `1 - gamma Re(lambda_i)`. Returns `[n]` for scalar t, else `[T, n]`.
    """
    gamma = _check_gamma(gamma)
    times, scalar = _times(t)
    decay = np.exp(-times[:, None] * (1.0 - gamma * eig.values)[None])
    predicted = decay * np.asarray(error0)[None]
    return predicted[0] if scalar else predicted


def predicted_discrete_coefficient_error(
    eig: spectral.Eigendecomposition,
    gamma: float,
    alpha: float,
    error0: np.ndarray,
    steps: np.ndarray,
) -> np.ndarray:
    """Coefficient error of expected TD after n steps: `(1 - alpha (1 - gamma lambda_i))^n error0_i`.

    The discrete analogue of Observation 4.1 (exact for `expected_td`); `[len(steps), n]`.
    """
    gamma, alpha = _check_gamma(gamma), _check_alpha(alpha)
    factor = 1.0 - alpha * (1.0 - gamma * eig.values)
    steps = np.asarray(steps)
    return factor[None] ** steps[:, None] * np.asarray(error0)[None]


def td_error(P_pi: np.ndarray, R_pi: np.ndarray, gamma: float, V: np.ndarray) -> np.ndarray:
    """TD error `||T^pi V - V||^2 = ||R^pi + gamma P^pi V - V||^2` (Eq. 11); scalar or `[T]`."""
    P = _check_transition(P_pi)
    gamma = _check_gamma(gamma)
    V = np.asarray(V, dtype=float)
    residual = np.asarray(R_pi, dtype=float) + gamma * V @ P.T - V
    return np.sum(residual**2, axis=-1)


def td_error_bound(eig: spectral.Eigendecomposition, gamma: float, error: np.ndarray) -> np.ndarray:
    """Right side of Eq. 13: `sum_i |1 - gamma lambda_i|^2 |alpha_i^t - alpha_i^pi|^2`.

    `error` is `coefficient_error(...)`, `[n]` or `[T, n]`, with unit-norm eigenvectors (as in
    `spectral.eigendecomposition`); complex coefficients enter through `|.|^2`.

    Which inequality this is: Eq. 12 writes the TD error as `||U D e||^2` with U the matrix of
    unit-norm right eigenvectors, `D = diag(1 - gamma lambda_i)` and e the coefficient errors, and
    Eq. 13 replaces it by `||D e||^2`. That is an *equality* when U is unitary (orthonormal
    eigenvectors, e.g. symmetric P), but for non-orthogonal eigenvectors `||U x||^2` can exceed
    `||x||^2`, so Eq. 13 is generally NOT an upper bound. What always holds is
    `s_min(U)^2 ||D e||^2 <= TD <= s_max(U)^2 ||D e||^2`; see `eigenbasis_norm_range`.
    Requires every eigenvalue simple (no NaN coefficients); raises ValueError otherwise.
    """
    gamma = _check_gamma(gamma)
    error = np.asarray(error)
    if np.any(np.isnan(error)):
        raise InputError(
            "Eq. 13 needs a coefficient for every eigenvector, but some eigenvalues are not simple "
            "(NaN coefficients); use a diagonalisable P_pi with distinct eigenvalues"
        )
    weights = np.abs(1.0 - gamma * eig.values) ** 2
    return np.sum(weights * np.abs(error) ** 2, axis=-1)


def td_error_bound_flow(
    eig: spectral.Eigendecomposition, gamma: float, error0: np.ndarray, t: float | np.ndarray
) -> np.ndarray:
    """Eq. 27: `sum_i exp(-2t (1 - gamma Re lambda_i)) |1 - gamma lambda_i|^2 |alpha_i^pi - alpha_i^0|^2`.

    Eq. 13 evaluated along the TD flow through Observation 4.1 (the same caveat about
    non-orthogonal eigenvectors applies). Returns a scalar for scalar t, else `[T]`.
    """
    return td_error_bound(eig, gamma, predicted_coefficient_error(eig, gamma, error0, t))


def eigenbasis_norm_range(eig: spectral.Eigendecomposition) -> tuple[float, float]:
    """`(s_min(U)^2, s_max(U)^2)` for U the `[S, S]` matrix of unit-norm right eigenvectors.

    These factors sandwich the TD error: `s_min^2 * Eq.13 <= TD <= s_max^2 * Eq.13`. Both equal 1
    exactly when the eigenvectors are orthonormal; `s_max^2 >= 1` always (unit-norm columns).
    """
    singular = np.linalg.svd(eig.right, compute_uv=False)
    return float(singular[-1] ** 2), float(singular[0] ** 2)
