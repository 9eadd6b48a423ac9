"""Distributional losses on one transition: C51's categorical projection and cross-entropy
(Bellemare et al. 2017), QR-DQN's quantile Huber loss (Dabney et al. 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tdgen.errors import InputError


def categorical_projection(
    support: jax.Array, target_support: jax.Array, probs: jax.Array
) -> jax.Array:
    """Project a distribution on ``target_support`` [N'] onto the fixed atoms ``support`` [N].

    Bellemare et al. 2017, Algorithm 1: each target atom is clipped to [z_0, z_{N-1}] and its
    mass split between the two neighbouring atoms in proportion to closeness. Written as the
    triangular kernel q_j = sum_i p_i * clip(1 - |Tz_i - z_j| / dz, 0, 1) (rlax's form), which
    also handles a target atom landing exactly on an atom, where floor = ceil. ``support`` must be
    evenly spaced and increasing. Returns probabilities [N].
    """
    if support.ndim != 1 or target_support.shape != probs.shape or probs.ndim != 1:
        raise InputError(
            f"expected support [N], target_support and probs [N'], got {support.shape}, "
            f"{target_support.shape}, {probs.shape}"
        )
    delta = support[1] - support[0]
    clipped = jnp.clip(target_support, support[0], support[-1])
    weights = jnp.clip(1.0 - jnp.abs(clipped[None, :] - support[:, None]) / delta, 0.0, 1.0)
    return weights @ probs


def expected_values(logits: jax.Array, support: jax.Array) -> jax.Array:
    """Expected return per action [..., A] of categorical logits [..., A, N]."""
    return jax.nn.softmax(logits, axis=-1) @ support


def categorical_q_learning_loss(
    logits_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    logits_t: jax.Array,
    support: jax.Array,
) -> jax.Array:
    """Cross-entropy between the projected target and the online distribution, one transition.

    logits_tm1 [A, N] online at x; logits_t [A, N] target network at x'. The target distribution
    is that of the target network's greedy action at x' (by expected value, as Dopamine), shifted
    to r + discount * z and projected onto the atoms; no gradient flows through it.
    """
    if logits_tm1.ndim != 2 or logits_t.shape != logits_tm1.shape:
        raise InputError(f"logits must be [A, N], got {logits_tm1.shape} and {logits_t.shape}")
    greedy = jnp.argmax(expected_values(logits_t, support))
    target_probs = jax.nn.softmax(logits_t[greedy])
    target = categorical_projection(support, r_t + discount_t * support, target_probs)
    target = jax.lax.stop_gradient(target)
    return -jnp.sum(target * jax.nn.log_softmax(logits_tm1[a_tm1]))


def quantile_midpoints(num_quantiles: int, dtype=jnp.float32) -> jax.Array:
    """The quantile fractions tau_i = (2i + 1) / 2N that QR-DQN's outputs estimate [N]."""
    return (jnp.arange(num_quantiles, dtype=dtype) + 0.5) / num_quantiles


def quantile_huber_loss(pred: jax.Array, target: jax.Array, kappa: float = 1.0) -> jax.Array:
    """QR-DQN's quantile Huber loss between predicted quantiles [N] and target samples [N'].

    Dabney et al. 2018, Eq. 10: sum_i mean_j |tau_i - 1{u_ij < 0}| * Huber_kappa(u_ij) / kappa,
    u_ij = target_j - pred_i (kappa = 0 is the plain quantile loss). No gradient through target.
    """
    if pred.ndim != 1 or target.ndim != 1:
        raise InputError(f"pred and target must be [N], got {pred.shape} and {target.shape}")
    tau = quantile_midpoints(pred.shape[0], pred.dtype)
    u = jax.lax.stop_gradient(target)[None, :] - pred[:, None]  # [N pred, N' target]
    if kappa > 0:
        abs_u = jnp.abs(u)
        quadratic = jnp.minimum(abs_u, kappa)
        elementwise = (0.5 * quadratic**2 + kappa * (abs_u - quadratic)) / kappa
    else:
        elementwise = jnp.abs(u)
    weight = jnp.abs(tau[:, None] - (u < 0).astype(pred.dtype))
    return jnp.sum(jnp.mean(weight * elementwise, axis=1))


def quantile_q_learning_loss(
    theta_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    theta_t: jax.Array,
    kappa: float = 1.0,
) -> jax.Array:
    """QR-DQN on one transition: quantiles theta_tm1 [A, N] at x regress onto the target
    r + discount * theta_t[a*] [N], a* the target network's greedy action by mean quantile."""
    if theta_tm1.ndim != 2 or theta_t.shape != theta_tm1.shape:
        raise InputError(f"quantiles must be [A, N], got {theta_tm1.shape} and {theta_t.shape}")
    greedy = jnp.argmax(jnp.mean(theta_t, axis=-1))
    target = r_t + discount_t * theta_t[greedy]
    return quantile_huber_loss(theta_tm1[a_tm1], target, kappa)


__all__ = [
    "categorical_projection",
    "categorical_q_learning_loss",
    "expected_values",
    "quantile_huber_loss",
    "quantile_midpoints",
    "quantile_q_learning_loss",
]
