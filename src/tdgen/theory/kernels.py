"""Kernel gradient descent on value functions with train and test states (section 4.2, appendix A.2, C.2).

A kernel `K` (an `[S, S]` Gram matrix over all states) says how an update at one state moves the value
at another: it is a proxy for interference. Updates are computed on training states only; test states
move through `K(X_test, X_train)` (Theorem 4.2, Eq. 16):

    dV(X) = K_all [(T V - V)(X_train)],   K_all = K(X_train, X_train) stacked on K(X_test, X_train).

Equivalently `dV = K[:, train] @ delta_train`, the form used below. The alternative form of Eq. 51
moves test states by `K(X_test, X_train) K(X_train, X_train)^-1 (V_t - V_0)(X_train)`; the two agree in
exact arithmetic whenever `K(X_train, X_train)` is invertible, and differ numerically when it is not
(e.g. an RBF kernel with a long lengthscale), which `test_form="inverse"` lets one measure.

Eigenvector kernels `K_S = sum_{i in S} v_i v_i^T` (appendix C.2) use the eigenvectors of a
reversible `P^pi` (a random walk on an undirected graph), obtained through the symmetrisation
`D^{1/2} P D^{-1/2}` so that eigenvalues are real and eigenvectors are well conditioned even when
eigenvalues repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from tdgen.errors import InputError

TEST_FORMS = ("kernel", "inverse")


def rbf_kernel(x: np.ndarray, y: np.ndarray, lengthscale: float) -> np.ndarray:
    """Gaussian (RBF) kernel `exp(-|x - y|^2 / (2 l^2))` between state coordinates.

    x: `[n]` or `[n, d]`; y: `[m]` or `[m, d]`. Returns `[n, m]`. Euclidean distance on the
    coordinates (not a circular one: on a ring that makes the Gaussian kernel indefinite).
    """
    if not np.isfinite(lengthscale) or lengthscale <= 0:
        raise InputError(f"lengthscale must be a positive number, got {lengthscale}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise InputError(
            f"x and y must be [n, d] and [m, d] with equal d, got {x.shape}, {y.shape}"
        )
    squared = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    return np.exp(-squared / (2.0 * lengthscale**2))


@dataclass(frozen=True, eq=False)
class ReversibleEigenbasis:
    """Real eigen-pairs of a reversible `P`, sorted smoothest (largest eigenvalue) first.

    values: `[S]` real eigenvalues, descending. right: `[S, S]`, column i the unit-norm right
    eigenvector `v_i` of `P`. symmetric: `[S, S]`, column i the orthonormal eigenvector `u_i` of
    `D^{1/2} P D^{-1/2}` (`v_i` is proportional to `D^{-1/2} u_i`). stationary: `[S]` distribution `d`.
    """

    values: np.ndarray
    right: np.ndarray
    symmetric: np.ndarray
    stationary: np.ndarray


def reversible_eigenbasis(P: np.ndarray, tol: float = 1e-9) -> ReversibleEigenbasis:
    """Eigendecomposition of a reversible stochastic `P` via `D^{1/2} P D^{-1/2}` (D = diag(stationary)).

    Detailed balance `d_i P_ij = d_j P_ji` makes the symmetrised matrix symmetric; a ValueError is
    raised when `P` is not reversible (then the eigenvalues may be complex: use spectral.py).
    The right eigenvectors are D-orthogonal, so the spectral projection onto a subset of them is the
    orthogonal projection in the `D`-weighted inner product.
    """
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"P must be square, got shape {P.shape}")
    values, vectors = scipy.linalg.eig(P.T)
    d = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    d = d / d.sum()
    if np.any(d <= 0):
        raise InputError("P must be irreducible (a stationary distribution with full support)")
    flow = d[:, None] * P
    if np.max(np.abs(flow - flow.T)) > tol:
        raise InputError(
            "P is not reversible (detailed balance fails); use spectral.eigendecomposition"
        )
    root = np.sqrt(d)
    symmetric = root[:, None] * P / root[None, :]
    eigenvalues, U = np.linalg.eigh(0.5 * (symmetric + symmetric.T))
    order = np.argsort(-eigenvalues, kind="stable")
    eigenvalues, U = eigenvalues[order], U[:, order]
    right = U / root[:, None]
    right = right / np.linalg.norm(right, axis=0, keepdims=True)
    return ReversibleEigenbasis(eigenvalues, right, U, d)


def eigenvector_kernel(vectors: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
    """`K_S(x, y) = sum_{i in S} v_i(x) v_i(y)` (appendix C.2) from eigenvector columns `[S, k]`.

    With all columns of an orthonormal basis this is the identity.
    """
    vectors = np.asarray(vectors, dtype=float)
    if vectors.ndim != 2:
        raise InputError(f"vectors must be [states, k], got shape {vectors.shape}")
    chosen = vectors if indices is None else vectors[:, np.asarray(indices, dtype=int)]
    return chosen @ chosen.T


def _check_train(train: np.ndarray, num_states: int) -> np.ndarray:
    train = np.asarray(train)
    if train.dtype == bool:
        if train.shape != (num_states,):
            raise InputError(
                f"boolean train mask must have shape ({num_states},), got {train.shape}"
            )
        train = np.flatnonzero(train)
    train = train.astype(int)
    if train.ndim != 1 or len(train) == 0:
        raise InputError("train must be a non-empty 1-d array of state indices")
    if train.min() < 0 or train.max() >= num_states or len(np.unique(train)) != len(train):
        raise InputError(f"train must hold distinct state indices in [0, {num_states})")
    return train


def _check_kernel(K: np.ndarray, num_states: int) -> np.ndarray:
    K = np.asarray(K, dtype=float)
    if K.shape != (num_states, num_states):
        raise InputError(f"K must be [states, states] = {(num_states, num_states)}, got {K.shape}")
    return K


def _check_chain(P: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=float)
    R = np.asarray(R, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"P must be [states, states], got {P.shape}")
    if R.shape != (P.shape[0],):
        raise InputError(f"R must be [states] = ({P.shape[0]},), got {R.shape}")
    return P, R


def td_iteration_matrix(
    K: np.ndarray, P: np.ndarray, gamma: float, train: np.ndarray
) -> np.ndarray:
    """`B = (gamma P - I)[X_train, :] K(X, X_train)`, `[n_train, n_train]`.

    Kernel TD (Eq. 16) moves the TD error on training states by `delta <- (I + eta B) delta`;
    the nonzero eigenvalues of the full `[S, S]` map `K(X, X_train) (gamma P - I)[X_train]` are those
    of B, the rest are 0 (directions the updates never reach). The continuous flow is stable iff
    every eigenvalue of B has negative real part; discrete steps iff the spectral radius of
    `I + eta B` is below 1.
    """
    P = np.asarray(P, dtype=float)
    K = _check_kernel(K, P.shape[0])
    train = _check_train(train, P.shape[0])
    M = (gamma * P - np.eye(P.shape[0]))[train]
    return M @ K[:, train]


def td_spectral_radius(
    K: np.ndarray, P: np.ndarray, gamma: float, train: np.ndarray, step_size: float
) -> float:
    """Spectral radius of `I + eta B` (see `td_iteration_matrix`): above 1 means discrete TD diverges."""
    B = td_iteration_matrix(K, P, gamma, train)
    return float(np.max(np.abs(1.0 + step_size * np.linalg.eigvals(B))))


def mc_spectral_radius(K: np.ndarray, train: np.ndarray, step_size: float) -> float:
    """Spectral radius of `I - eta K(X_train, X_train)`: above 1 means discrete kernel MC diverges."""
    K = np.asarray(K, dtype=float)
    train = _check_train(train, K.shape[0])
    eig = np.linalg.eigvalsh(K[np.ix_(train, train)])
    return float(np.max(np.abs(1.0 - step_size * eig)))


def _test_map(K: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """`K(X_test, X_train) K(X_train, X_train)^-1` of Eq. 51, `[n_test, n_train]`."""
    K_train = K[np.ix_(train, train)]
    try:
        return np.linalg.solve(K_train, K[np.ix_(test, train)].T).T
    except np.linalg.LinAlgError as err:
        raise InputError(
            "K(X_train, X_train) is singular: use test_form='kernel' (Eq. 16)"
        ) from err


def _kernel_descent(
    V0: np.ndarray,
    K: np.ndarray,
    train: np.ndarray,
    error_fn,
    step_size: float,
    num_steps: int,
    test_form: str,
) -> np.ndarray:
    if test_form not in TEST_FORMS:
        raise InputError(f"test_form must be one of {TEST_FORMS}, got {test_form!r}")
    if num_steps < 0 or step_size <= 0:
        raise InputError(f"need num_steps >= 0 and step_size > 0, got {num_steps}, {step_size}")
    S = len(V0)
    test = np.setdiff1d(np.arange(S), train)
    K_col = K[:, train]
    test_map = _test_map(K, train, test) if test_form == "inverse" and len(test) else None
    trajectory = np.empty((num_steps + 1, S))
    trajectory[0] = V = np.array(V0, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(num_steps):
            delta = error_fn(V)
            if test_map is None:
                V = V + step_size * (K_col @ delta)
            else:
                V = V.copy()
                V[train] = V[train] + step_size * (K_col[train] @ delta)
                V[test] = V0[test] + test_map @ (V[train] - V0[train])
            trajectory[t + 1] = V
    return trajectory


def kernel_td(
    V0: np.ndarray,
    K: np.ndarray,
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    train: np.ndarray,
    step_size: float,
    num_steps: int,
    test_form: str = "kernel",
) -> np.ndarray:
    """Discrete kernel semi-gradient TD on training states (Theorem 4.2, Eq. 16 / 52-56).

    `V_{t+1} = V_t + eta K(X, X_train) [(R + gamma P V_t - V_t)(X_train)]`; bootstrap targets read
    test states too. With `test_form="inverse"` test states follow Eq. 51 instead. V0, R: `[S]`;
    K, P: `[S, S]`; train: indices or a boolean mask. Returns the trajectory `[num_steps + 1, S]`
    (non-finite entries once it overflows).
    """
    P, R = _check_chain(P, R)
    K = _check_kernel(K, len(R))
    V0 = np.asarray(V0, dtype=float)
    if V0.shape != R.shape:
        raise InputError(f"V0 must be [states] = {R.shape}, got {V0.shape}")
    train = _check_train(train, len(R))
    return _kernel_descent(
        V0, K, train, lambda V: (R + gamma * (P @ V) - V)[train], step_size, num_steps, test_form
    )


def kernel_mc(
    V0: np.ndarray,
    K: np.ndarray,
    target: np.ndarray,
    train: np.ndarray,
    step_size: float,
    num_steps: int,
    test_form: str = "kernel",
) -> np.ndarray:
    """Discrete kernel Monte Carlo regression: `V_{t+1} = V_t + eta K(X, X_train)(V^pi - V_t)(X_train)`.

    The expected Monte Carlo return is `V^pi`, so `target` is usually `V^pi` `[S]`. Shapes and
    `test_form` as in `kernel_td`. Returns `[num_steps + 1, S]`.
    """
    target = np.asarray(target, dtype=float)
    V0 = np.asarray(V0, dtype=float)
    if V0.shape != target.shape or target.ndim != 1:
        raise InputError(f"V0 and target must both be [states], got {V0.shape}, {target.shape}")
    K = _check_kernel(K, len(target))
    train = _check_train(train, len(target))
    return _kernel_descent(
        V0, K, train, lambda V: (target - V)[train], step_size, num_steps, test_form
    )


def _affine_flow(A: np.ndarray, b: np.ndarray, V0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Solution of `dV/dt = A V + b` at `times`, through the exponential of the augmented matrix."""
    S = len(V0)
    augmented = np.zeros((S + 1, S + 1))
    augmented[:S, :S] = A
    augmented[:S, S] = b
    state = np.append(V0, 1.0)
    return np.stack([(scipy.linalg.expm(t * augmented) @ state)[:S] for t in np.atleast_1d(times)])


def kernel_td_flow(
    V0: np.ndarray,
    K: np.ndarray,
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    train: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Continuous-time kernel TD (Eq. 16) in closed form: `V(t)` at each time, `[len(times), S]`."""
    P, R = _check_chain(P, R)
    K = _check_kernel(K, len(R))
    train = _check_train(train, len(R))
    K_col = K[:, train]
    A = K_col @ (gamma * P - np.eye(len(R)))[train]
    return _affine_flow(A, K_col @ R[train], np.asarray(V0, dtype=float), np.asarray(times))


def kernel_mc_flow(
    V0: np.ndarray, K: np.ndarray, target: np.ndarray, train: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Continuous-time kernel MC: `dV/dt = K(X, X_train)(target - V)(X_train)`, `[len(times), S]`."""
    target = np.asarray(target, dtype=float)
    K = _check_kernel(K, len(target))
    train = _check_train(train, len(target))
    K_col = K[:, train]
    A = np.zeros_like(K)
    A[:, train] = -K_col
    return _affine_flow(A, K_col @ target[train], np.asarray(V0, dtype=float), np.asarray(times))


def kernel_regression(
    K: np.ndarray, y_train: np.ndarray, train: np.ndarray, test: np.ndarray, ridge: float = 0.0
) -> np.ndarray:
    """Kernel (ridge) regression: `K(X_test, X_train) (K(X_train, X_train) + ridge I)^+ y_train`.

    `ridge=0` is the minimum-norm interpolant (pseudo-inverse). K: `[S, S]`; y_train: `[n_train]`
    or `[n_train, m]` (m targets at once). Returns predictions on `test`, `[n_test]` or `[n_test, m]`.
    """
    if ridge < 0:
        raise InputError(f"ridge must be >= 0, got {ridge}")
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"K must be square, got {K.shape}")
    train = _check_train(train, K.shape[0])
    test = np.asarray(test, dtype=int)
    y_train = np.asarray(y_train, dtype=float)
    if y_train.ndim not in (1, 2) or y_train.shape[0] != len(train):
        raise InputError(
            f"y_train must be [n_train] or [n_train, m], n_train={len(train)}, got {y_train.shape}"
        )
    K_train = K[np.ix_(train, train)] + ridge * np.eye(len(train))
    if ridge > 0:
        weights = scipy.linalg.solve(K_train, y_train, assume_a="pos")
    else:
        weights = np.linalg.pinv(K_train, hermitian=True) @ y_train
    return K[np.ix_(test, train)] @ weights


def n_step_target(
    P: np.ndarray, R: np.ndarray, gamma: float, n: int, V_bootstrap: np.ndarray | None = None
) -> np.ndarray:
    """The expected n-step return `sum_{k<n} gamma^k P^k R + gamma^n P^n V_bootstrap`, `[S]`.

    The default bootstrap is zero, so the target holds only rewards within n steps: local
    information, and exactly what n sweeps of TD/value iteration from `V_0 = 0` have seen. With
    `V_bootstrap = V^pi` it equals `V^pi` for every n (the Bellman equation), so it carries no
    dependence on n.
    """
    P, R = _check_chain(P, R)
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    value = np.zeros_like(R) if V_bootstrap is None else np.asarray(V_bootstrap, dtype=float)
    if value.shape != R.shape:
        raise InputError(f"V_bootstrap must be [states] = {R.shape}, got {value.shape}")
    for _ in range(n):
        value = R + gamma * (P @ value)
    return value
