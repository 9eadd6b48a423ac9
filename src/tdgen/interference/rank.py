"""Summaries of an update matrix: update rank (Appendix B.1) and its relatives.

All take a 2-D array and work under jax.jit (eps, delta and kind are Python constants).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from tdgen.errors import InputError, unknown_name
from tdgen.interference.reductions import Reduction
from tdgen.interference.table import FEATURE_RANK_EPS
from tdgen.interference.update_matrix import (
    _chunk,
    check_batch,
    check_chunk_size,
    check_loss,
    state_inputs,
    value_jacobian,
)


def _matrix(A) -> jax.Array:
    A = jnp.asarray(A)
    if A.ndim != 2 or 0 in A.shape:
        raise InputError(f"expected a non-empty 2-D matrix, got shape {A.shape}")
    return A


def _fraction(name: str, value: float) -> None:
    if not 0.0 < float(value) < 1.0:
        raise InputError(f"{name} must lie in (0, 1), got {value}")


def singular_values(A) -> jax.Array:
    """Singular values of A, largest first.

    A: [r, c]. Returns the singular values [min(r, c)], in descending order.
    A matrix more than twice as wide as tall (features [n, d] of a conv layer) or the reverse
    is first reduced to the [min, min] triangle R of a QR decomposition (same singular values):
    on XLA:CPU the SVD of a [128, 12800] matrix took ~14x longer than QR + SVD of R.
    """
    A = _matrix(A)
    n, d = A.shape
    if d > 2 * n:
        A = jnp.linalg.qr(A.T, mode="r")
    elif n > 2 * d:
        A = jnp.linalg.qr(A, mode="r")
    return jnp.linalg.svd(A, compute_uv=False)


def update_rank(A, eps: float = 0.1) -> jax.Array:
    """|{sigma : sigma > eps * max sigma}|, the update rank of Appendix B.1 (Maddox et al. 2020).

    A: the update matrix [k, m]. Returns a 0-d int32 jax.Array; an all-zero matrix has rank 0.
    """
    _fraction("eps", eps)
    s = singular_values(A)
    return jnp.sum(s > eps * s[0]).astype(jnp.int32)


def srank(features, delta: float = 0.01) -> jax.Array:
    """Effective rank of Kumar et al. (2021): min{r : sum_{i<=r} sigma_i / sum sigma >= 1 - delta}.

    `features` is [n, d] (e.g. penultimate-layer features of n states) or an update matrix.
    Returns a 0-d int32 jax.Array; an all-zero matrix has srank 0 (no singular value mass), as
    update_rank.
    """
    _fraction("delta", delta)
    s = singular_values(features)
    total = jnp.sum(s)
    cumulative = jnp.cumsum(s) / jnp.maximum(total, jnp.finfo(s.dtype).tiny)
    return jnp.where(total > 0, jnp.sum(cumulative < 1.0 - delta) + 1, 0).astype(jnp.int32)


def stable_rank(features) -> jax.Array:
    """||Phi||_F^2 / ||Phi||_2^2 (Rudelson & Vershynin 2007): the sum of the squared singular
    values over the largest, a real number in [1, rank]; 0 for an all-zero matrix. Not Kumar et
    al.'s srank, which Plasticine logs under the name "stable rank" (see `srank`).

    features: Phi [n, d] (or any 2-D matrix). Returns a 0-d float jax.Array.
    """
    power = singular_values(features) ** 2
    return jnp.sum(power) / jnp.maximum(power[0], jnp.finfo(power.dtype).tiny)


def feature_rank(features, eps: float = FEATURE_RANK_EPS) -> jax.Array:
    """InFeR's feature rank (Lyle et al. 2022, capacity loss): #{sigma(Phi / sqrt(n)) > eps}
    for features Phi [n, d] of n inputs. Returns a 0-d int32 jax.Array."""
    if not eps > 0:
        raise InputError(f"feature rank: eps must be positive, got {eps!r}")
    phi = _matrix(features)
    s = singular_values(phi / jnp.sqrt(jnp.asarray(phi.shape[0], phi.dtype)))
    return jnp.sum(s > eps).astype(jnp.int32)


def effective_dimension(A, kind: str = "entropy") -> jax.Array:
    """A smooth count of the directions A spans, in [1, min(A.shape)].

    kind="entropy": exp(H(p)) with p = sigma / sum(sigma), the effective rank of Roy and
    Vetterli (2007). kind="participation": (sum sigma^2)^2 / sum sigma^4, the participation ratio
    of the eigenvalues sigma^2 of A A^T. Both equal r for r equal non-zero singular values.
    A: [r, c] (features [n, d] or an update matrix [k, m]). Returns a 0-d float jax.Array
    (for an all-zero A: 1 with "entropy", 0 with "participation").
    """
    kinds = ("entropy", "participation")
    if kind not in kinds:
        raise unknown_name("effective dimension kind", kind, kinds)
    s = singular_values(A)
    tiny = jnp.finfo(s.dtype).tiny
    if kind == "participation":
        power = s**2
        return jnp.sum(power) ** 2 / jnp.maximum(jnp.sum(power**2), tiny)
    p = s / jnp.maximum(jnp.sum(s), tiny)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def identity_distance(A) -> jax.Array:
    """|| A / ||A||_F - I / ||I||_F ||_F for a square A, in [0, 2] (Daneshmand et al. 2021).

    Both matrices are scaled to unit Frobenius norm so the distance does not depend on the
    learning rate: 0 for a tabular (uniform diagonal) update matrix, near sqrt(2 - 2/sqrt(k)) for
    a rank-one matrix of equal entries. As the paper notes (Section 5.1), momentum's constant
    term makes A far from the identity even when updates do not interfere; use center="drift".
    A: [k, k]. Returns a 0-d float jax.Array.
    """
    A = _matrix(A)
    if A.shape[0] != A.shape[1]:
        raise InputError(f"identity_distance needs a square matrix, got shape {A.shape}")
    eye = jnp.eye(A.shape[0], dtype=A.dtype) / jnp.sqrt(A.shape[0])
    scaled = A / jnp.maximum(jnp.linalg.norm(A), jnp.finfo(A.dtype).tiny)
    return jnp.linalg.norm(scaled - eye)


def gradient_gram(
    apply_fn,
    params,
    batch,
    loss_fn=None,
    *,
    inputs=None,
    reduce="max",
    action_index=None,
    support=None,
    chunk_size=None,
) -> jax.Array:
    """The gradient dot-product matrix that A reduces to for plain SGD at first order.

    With loss_fn: G[i, j] = -<grad loss_i(params), grad v(params, x_j)>, so that one SGD step of
    size lr gives A = lr * G + O(lr^2). Without loss_fn: the empirical NTK of the reduced output,
    G[i, j] = <grad v(x_i), grad v(x_j)> over the states x (inputs, default batch["obs"]).
    batch: a pytree whose leaves are [k, ...]; inputs: [m, ...]. Returns G as a jax.Array of
    shape [k, m] with a loss, [m, m] without. reduce="policy" is not a scalar and is refused.
    """
    if reduce == "policy":
        raise InputError("gradient_gram needs a scalar reduction; 'policy' is a vector of probs")
    reduction = Reduction(
        reduce, action_index, None if support is None else tuple(np.asarray(support).tolist())
    )
    check_chunk_size(chunk_size)
    k = check_batch(batch)
    inputs, actions = state_inputs(apply_fn, params, batch, inputs, reduction)
    chunk = _chunk(chunk_size, max(k, inputs.shape[0]), "linearized")
    if loss_fn is not None:
        check_loss(loss_fn, params, batch)
    return _gram(apply_fn, loss_fn, reduction, params, batch, inputs, actions, chunk)


def _gram_impl(apply_fn, loss_fn, reduction, params, batch, inputs, actions, chunk):
    jac = value_jacobian(apply_fn, reduction, params, inputs, actions, chunk)
    if loss_fn is None:
        return jac @ jac.T

    def row(transition):
        grads = jax.grad(loss_fn)(params, transition)
        return -(jac @ ravel_pytree(grads)[0])

    k = jax.tree.leaves(batch)[0].shape[0]
    return jax.lax.map(row, batch, batch_size=min(chunk, k))


_gram = jax.jit(_gram_impl, static_argnums=(0, 1, 2, 7))
