"""Curvature of the training loss: the top eigenvalue of its Hessian (Lewandowski et al. 2023,
who find lost curvature directions with, and sometimes before, lost plasticity).

The loss is the batch loss the optimiser sees, the mean of ``loss_fn(params, transition)`` over
the batch; a TD loss's bootstrapped target must be held fixed in ``loss_fn`` (stop-gradient or
target parameters), as it is for the optimiser. The eigenvalue is found by power iteration on
Hessian-vector products (forward-over-reverse, never forming the Hessian), so it is the
eigenvalue of largest magnitude, the "sharpness" of the edge-of-stability literature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from tdgen.errors import InputError
from tdgen.interference.table import HESSIAN_ITERATIONS
from tdgen.interference.update_matrix import check_batch

ITERATIONS = HESSIAN_ITERATIONS


def start_vector(size: int) -> np.ndarray:
    """The power iteration's first vector: all ones, of unit norm. It does not depend on the
    parameters' order, so the JAX and torch versions take the same steps on the same weights."""
    return np.full(size, 1.0 / np.sqrt(size), np.float32)


def hessian_max_eigenvalue(loss_fn, params, batch, iterations: int = ITERATIONS) -> jax.Array:
    """The largest-magnitude eigenvalue of the Hessian of mean_i loss_fn(params, batch_i), after
    ``iterations`` power-iteration steps (a Rayleigh quotient: exact for a converged vector).

    batch: a pytree whose leaves are [k, ...]; the Hessian is [P, P] but never formed. Returns a
    0-d jax.Array of the parameters' float dtype (signed: it may be negative).
    """
    if not (isinstance(iterations, int) and iterations >= 1):
        raise InputError(f"hessian iterations must be a positive integer, got {iterations!r}")
    check_batch(batch)
    flat, unravel = ravel_pytree(params)

    def loss(theta):
        return jnp.mean(jax.vmap(loss_fn, (None, 0))(unravel(theta), batch))

    def hvp(v):
        return jax.jvp(jax.grad(loss), (flat,), (v,))[1]

    def step(v, _):
        w = hvp(v)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny), None

    v0 = jnp.asarray(start_vector(flat.size), flat.dtype)
    v, _ = jax.lax.scan(step, v0, None, length=iterations - 1)
    return jnp.vdot(v, hvp(v))


__all__ = ["ITERATIONS", "hessian_max_eigenvalue", "start_vector"]
