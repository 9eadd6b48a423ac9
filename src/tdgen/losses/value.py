"""Value losses on one transition (batched by callers with `jax.vmap`): TD (Eq. 4), double Q.

Every loss takes the online outputs at x, the action, reward, discount = gamma * (1 - terminated)
and target outputs at x', and returns a scalar; no gradient flows through a target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tdgen.errors import InputError

LOSSES = ("huber", "mse")


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
    """Huber loss, quadratic within ``delta`` (Mnih et al. 2015's error clipping)."""
    abs_x = jnp.abs(x)
    quadratic = jnp.minimum(abs_x, delta)
    return 0.5 * quadratic**2 + delta * (abs_x - quadratic)


def mse(x: jax.Array) -> jax.Array:
    """Half the squared error (Dopamine's mse_loss)."""
    return 0.5 * x**2


def _check_values(q_tm1: jax.Array, q_t: jax.Array) -> None:
    if q_tm1.ndim != 1 or q_t.shape != q_tm1.shape:
        raise InputError(f"q_tm1 and q_t must be [A], got {q_tm1.shape} and {q_t.shape}")


def q_learning_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    loss: str = "huber",
) -> jax.Array:
    """Loss of the TD error r + discount * max_a q_t[a] - q_tm1[a_tm1] on one transition (Eq. 4).

    q_tm1 [A] online values at x; q_t [A] target-network values at x' (no gradient flows
    through the target); discount_t = gamma * (1 - terminated).
    """
    _check_values(q_tm1, q_t)
    target = jax.lax.stop_gradient(r_t + discount_t * jnp.max(q_t))
    td_error = target - q_tm1[a_tm1]
    return huber(td_error) if loss == "huber" else mse(td_error)


def double_q_learning_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_target: jax.Array,
    q_t_online: jax.Array,
    loss: str = "huber",
) -> jax.Array:
    """Double Q-learning (van Hasselt et al. 2016): the target network evaluates the online
    network's greedy action at x', r + discount * q_t_target[argmax q_t_online]."""
    _check_values(q_tm1, q_t_target)
    greedy = jnp.argmax(q_t_online)
    target = jax.lax.stop_gradient(r_t + discount_t * q_t_target[greedy])
    td_error = target - q_tm1[a_tm1]
    return huber(td_error) if loss == "huber" else mse(td_error)


__all__ = ["LOSSES", "double_q_learning_loss", "huber", "mse", "q_learning_loss"]
