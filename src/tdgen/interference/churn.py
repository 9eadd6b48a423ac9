"""Policy churn (Schaul et al. 2022, "The phenomenon of policy churn"): how much one update
changes the policy on states it was not trained on.

One optimiser step is taken on the training loss of a batch (the mean of the per-transition
loss, as the agent trains); the policy before and after is compared on a reference batch:
  value heads   the fraction of reference states whose greedy action changes (argmax, ties to
                the first action, as jnp.argmax);
  policy heads  the mean total-variation distance 1/2 sum_a |pi'(a|s) - pi(a|s)| of the
                softmax action distributions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from tdgen.errors import InputError, unknown_name
from tdgen.interference.update_matrix import check_batch

HEADS = ("value", "policy")


def greedy_churn(q_before: jax.Array, q_after: jax.Array) -> jax.Array:
    """Fraction of states [m, A] whose argmax action differs between the two Q arrays.

    q_before, q_after: [m, A]. Returns a 0-d float32 jax.Array in [0, 1].
    """
    return jnp.mean(jnp.argmax(q_before, axis=-1) != jnp.argmax(q_after, axis=-1))


def policy_churn_tv(logits_before: jax.Array, logits_after: jax.Array) -> jax.Array:
    """Mean over states of the total-variation distance of softmax(logits) [m, A].

    logits_before, logits_after: [m, A]. Returns a 0-d float jax.Array in [0, 1].
    """
    diff = jax.nn.softmax(logits_after, axis=-1) - jax.nn.softmax(logits_before, axis=-1)
    return jnp.mean(0.5 * jnp.sum(jnp.abs(diff), axis=-1))


def stepped_params(loss_fn, optimizer: optax.GradientTransformation, params, opt_state, batch):
    """params after one step of the optimiser on the mean per-transition loss of the batch."""
    grads = jax.grad(lambda p: jnp.mean(jax.vmap(loss_fn, (None, 0))(p, batch)))(params)
    updates = optimizer.update(grads, opt_state, params)[0]
    return optax.apply_updates(params, updates)


def policy_churn(
    apply_fn,
    params,
    loss_fn,
    batch,
    optimizer: optax.GradientTransformation,
    opt_state,
    reference: jax.Array,
    head: str = "value",
) -> jax.Array:
    """Churn on `reference` [m, ...] after one optimiser step on `batch` (module docstring).

    apply_fn(params, observations) -> Q-values [m, A] (head="value") or logits [m, A]
    (head="policy"). For a distributional head pass an apply_fn returning expected values.
    batch: a pytree whose leaves are [k, ...]. Returns a 0-d float jax.Array in [0, 1].
    """
    if head not in HEADS:
        raise unknown_name("churn head", head, HEADS)
    check_batch(batch)
    before = apply_fn(params, reference)
    if before.ndim != 2:
        raise InputError(
            f"apply_fn returned shape {before.shape} on the reference batch; churn needs [m, A]"
        )
    after = apply_fn(stepped_params(loss_fn, optimizer, params, opt_state, batch), reference)
    return greedy_churn(before, after) if head == "value" else policy_churn_tv(before, after)
