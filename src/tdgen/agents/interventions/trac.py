"""TRAC (Muppidi, Zhang & Yang 2024, "Fast TRAC: a parameter-free optimizer for lifelong
reinforcement learning", NeurIPS; arXiv:2405.16642, Algorithms 1 and 2) as an optax wrapper.

The base optimiser runs on its own iterate theta^base, started at theta_ref (the initial
parameters); the network's parameters are theta_t = theta_ref + S_t (theta^base_t - theta_ref),
the scale S_t = max(sum_j s_{t,j}, 0) summed over n one-dimensional discounted "erfi" tuners, one
per discount beta_j. At each step, with g_t the gradient at theta_t:

    h_t = <g_t, theta^base_t - theta_ref>                        (the tuners' surrogate gradient)
    theta^base_{t+1} = theta^base_t + base_update(g_t)
    v_{t,j} = beta_j^2 v_{t-1,j} + h_t^2,    sigma_{t,j} = beta_j sigma_{t-1,j} - h_t
    s_{t+1,j} = s_init / erfi(1/sqrt 2) * erfi(sigma_{t,j} / (sqrt(2 v_{t,j}) + eps))
    theta_{t+1} = theta_ref + S_{t+1} (theta^base_{t+1} - theta_ref)

Settings and initial values follow the authors' PyTorch code (``ComputationalRobotics/TRAC``,
package/src/trac_optimizer/trac.py, PyPI trac-optimizer 0.0.2/0.0.3): betas 0.9 ...
0.999999, s_init (their ``s_prev``) = 1e-8, eps = 1e-8, s_1 = 0, v_0 = 0, sigma_0 = 1e-8, and the
clamp of the scale at 0 (``scale = max(s_sum, 0.0)``). One difference, on purpose: that code keeps
no theta^base but recovers it each step as (theta_t - theta_ref) / (S_t + eps), which shrinks
it by S_t / (S_t + eps) per step, loses it whenever S_t <= 0, and in float32 rounds
theta_ref + S_t * delta to theta_ref while S_t is near 1e-8; this module stores the offset
theta^base - theta_ref (one more parameter-sized array), as Algorithm 1 keeps theta^base. On a
least-squares toy both reach the same loss; the scale differs early (S at step 30: 7.8e-4 here,
5.6e-4 in the reference; see the module's test for Algorithm 1 in numpy). The base optimiser is given theta^base as its parameters (the reference's gives theta_t; the two agree for
Adam and RMSProp, which ignore them). erfi(x) = 2 / sqrt(pi) * exp(x^2) * dawsn(x); it overflows
to inf beyond |x| ~ 9.3 in float32, as the reference's complex erf does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import dawsn
from scipy import special

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError

BETAS = (0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)


def erfi(x: jax.Array) -> jax.Array:
    """The imaginary error function -i erf(ix) = 2 / sqrt(pi) * exp(x^2) * D(x), D Dawson's."""
    return (2.0 / math.sqrt(math.pi)) * jnp.exp(jnp.square(x)) * dawsn(x)


class TracState(NamedTuple):
    """TRAC's state, all arrays: the base optimiser's state, theta_ref, the base iterate's offset
    theta^base - theta_ref, and the n tuners' s, sigma and v (each [n])."""

    base: Any
    theta_ref: Any
    offset: Any
    s: jax.Array
    sigma: jax.Array
    variance: jax.Array


def trac(
    optimizer: optax.GradientTransformation,
    betas: tuple[float, ...] = BETAS,
    s_init: float = 1e-8,
    eps: float = 1e-8,
    sigma_init: float = 1e-8,
) -> optax.GradientTransformation:
    """TRAC around ``optimizer`` (Muppidi et al. 2024, Algorithm 1 with n Algorithm-2 tuners);
    ``update(g, state, params)`` needs the current parameters theta_t."""
    beta = jnp.asarray(betas, jnp.float32)
    erfi_scale = s_init / float(special.erfi(1.0 / math.sqrt(2.0)))

    def scale_of(s):
        return jnp.maximum(jnp.sum(s), 0.0)

    def init_fn(params):
        theta_ref = jax.tree.map(jnp.array, params)
        return TracState(
            base=optimizer.init(theta_ref),
            theta_ref=theta_ref,
            offset=jax.tree.map(jnp.zeros_like, params),
            s=jnp.zeros_like(beta),
            sigma=jnp.full_like(beta, sigma_init),
            variance=jnp.zeros_like(beta),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("trac needs the parameters: update(g, state, params)")
        h = optax.tree_utils.tree_vdot(updates, state.offset).astype(jnp.float32)
        base_params = jax.tree.map(jnp.add, state.theta_ref, state.offset)
        base_updates, base_state = optimizer.update(updates, state.base, base_params)
        offset = jax.tree.map(jnp.add, state.offset, base_updates)
        variance = jnp.square(beta) * state.variance + jnp.square(h)
        sigma = beta * state.sigma - h
        s = erfi_scale * erfi(sigma / (jnp.sqrt(2.0 * variance) + eps))
        scale = scale_of(s)
        new_updates = jax.tree.map(
            lambda ref, d, p: (ref + (scale * d).astype(d.dtype)) - p,
            state.theta_ref,
            offset,
            params,
        )
        return new_updates, TracState(base_state, state.theta_ref, offset, s, sigma, variance)

    return optax.GradientTransformation(init_fn, update_fn)


@dataclasses.dataclass(frozen=True)
class TRAC(Intervention):
    """The agent's optimiser as TRAC's base (Muppidi, Zhang & Yang 2024)."""

    name: ClassVar[str] = "trac"
    kind: ClassVar[str] = "optimizer"
    source: ClassVar[str] = (
        "Muppidi, Zhang & Yang 2024, Fast TRAC: a parameter-free optimizer for lifelong "
        "reinforcement learning (NeurIPS)"
    )

    betas: tuple[float, ...] = BETAS
    """Discount factors of the 1D tuners, one tuner each."""
    s_init: float = 1e-8
    """Initial scale s_init (the reference code's ``s_prev``)."""
    eps: float = 1e-8
    """Added to the tuners' denominator sqrt(2 v)."""

    def __post_init__(self):
        if not self.betas or not all(0 < b <= 1 for b in self.betas):
            raise InputError(f"trac betas must be a non-empty tuple in (0, 1], got {self.betas}")
        if not self.s_init > 0 or not self.eps > 0:
            raise InputError(f"trac s_init and eps must be > 0, got {self.s_init}, {self.eps}")

    def wrap_optimizer(
        self, optimizer: optax.GradientTransformation
    ) -> optax.GradientTransformation:
        """`trac` around the agent's optimiser."""
        return trac(optimizer, tuple(self.betas), self.s_init, self.eps)


__all__ = ["BETAS", "TRAC", "TracState", "erfi", "trac"]
