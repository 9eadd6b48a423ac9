"""Policy-gradient losses and estimators (batched arrays): GAE, PPO's clipped surrogate and
clipped value loss, categorical entropy, log-probabilities, KL between categorical policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    reward: jax.Array,
    value: jax.Array,
    done: jax.Array,
    last_value: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and returns (Schulman et al. 2016), arrays [T, ...].

    done[t] ends the episode after step t (no bootstrap across it; a truncated episode's
    bootstrap is already folded into reward[t]); last_value is V of the state after step T-1.
    Returns (advantages, advantages + value).
    """

    def backward(carry, step):
        next_advantage, next_value = carry
        r, v, d = step
        nonterminal = 1.0 - d.astype(v.dtype)
        delta = r + gamma * next_value * nonterminal - v
        advantage = delta + gamma * lam * nonterminal * next_advantage
        return (advantage, v), advantage

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(backward, init, (reward, value, done), reverse=True)
    return advantages, advantages + value


def clipped_surrogate(
    logp: jax.Array, logp_old: jax.Array, advantage: jax.Array, clip: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped objective as a loss, mean over the batch: -E[min(r A, clip(r) A)].

    Also returns the share of clipped ratios and the approximate KL E[(r - 1) - log r].
    """
    log_ratio = logp - logp_old
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantage
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    stats = {
        "clipfrac": jnp.mean((jnp.abs(ratio - 1.0) > clip).astype(jnp.float32)),
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
    }
    return loss, stats


def clipped_value_loss(
    value: jax.Array, value_old: jax.Array, target: jax.Array, clip: float, clip_value: bool
) -> jax.Array:
    """0.5 E[(V - target)^2], or PPO2's pessimistic max with V clipped to value_old +- clip."""
    unclipped = jnp.square(value - target)
    if not clip_value:
        return 0.5 * jnp.mean(unclipped)
    clipped_v = value_old + jnp.clip(value - value_old, -clip, clip)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(clipped_v - target)))


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """Entropy of softmax(logits) over the last axis, [...]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(action | s) for logits [..., A] and integer actions [...]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    """KL(p || q) between softmax(logits_p) and softmax(logits_q) over the last axis, [...]."""
    logp = jax.nn.log_softmax(logits_p, axis=-1)
    logq = jax.nn.log_softmax(logits_q, axis=-1)
    return jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)


__all__ = [
    "categorical_entropy",
    "categorical_kl",
    "clipped_surrogate",
    "clipped_value_loss",
    "gae",
    "log_prob",
]
