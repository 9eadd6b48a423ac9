"""Consistency of a policy under interpolation between observations (Section 6.1, Figure 5).

Section 6.1 asks "whether, given a convex combination of observations o1 and o2, the network takes
the same action under the combination as it does in either of the original observations". Mixing
happens in network input units, after `tdgen.nets.scale_observation` (uint8 pixels -> [0, 1]), and
mixed pixels are not rounded back to integers.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.evaluate.robustness import (
    DEFAULT_CHUNK,
    LogitsFn,
    as_partial,
    check_batch,
    check_chunk_size,
    check_range,
    map_in_chunks,
    plain_dict,
    policy_logits,
)
from tdgen.nets.layers import scale_observation


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class InterpolationConsistency:
    """Fractions of pairs (a, b) whose greedy action at x = (1 - w) a + w b matches; [num_weights].

    either: the action at x is a's or b's (the paper's measure); equals_a, equals_b: it is a's,
    it is b's. endpoints_agree (scalar): a and b already share an action; for those pairs
    `either` only asks x to keep it.
    """

    weights: jax.Array
    either: jax.Array
    equals_a: jax.Array
    equals_b: jax.Array
    endpoints_agree: jax.Array

    def as_dict(self) -> dict[str, list[float] | float]:
        """Plain Python numbers, for result.json."""
        return plain_dict(self)


def interpolation_consistency(
    logits_fn: LogitsFn, obs_a, obs_b, weights, *, chunk_size: int = DEFAULT_CHUNK
) -> InterpolationConsistency:
    """Greedy-action consistency on the segments between obs_a[i] and obs_b[i], per weight w.

    obs_a, obs_b: [m, ...] paired observations of one shape and dtype (see `draw_pairs`);
    weights: [W] values of w in [0, 1]. w = 0 gives exactly a's action and w = 1 exactly b's.
    Pairs are processed `chunk_size` at a time and weights one after another. Jit-compatible;
    logits_fn is passed as in `robustness`.
    """
    obs_a, obs_b, weights = jnp.asarray(obs_a), jnp.asarray(obs_b), jnp.asarray(weights)
    m = check_batch(obs_a, "obs_a")
    if obs_a.shape != obs_b.shape or obs_a.dtype != obs_b.dtype:
        raise InputError(
            f"obs_a and obs_b must be pairs of one shape and dtype, got "
            f"{obs_a.shape} {obs_a.dtype} and {obs_b.shape} {obs_b.dtype}"
        )
    check_range("weights", weights, low=0.0, high=1.0)
    chunk = min(check_chunk_size(chunk_size), m)
    return _consistency(as_partial(logits_fn), obs_a, obs_b, weights, chunk)


@jax.jit(static_argnums=(4,))
def _consistency(logits_fn, obs_a, obs_b, weights, chunk) -> InterpolationConsistency:
    def per_chunk(start):
        a = scale_observation(jax.lax.dynamic_slice_in_dim(obs_a, start, chunk))
        b = scale_observation(jax.lax.dynamic_slice_in_dim(obs_b, start, chunk))
        action_a = jnp.argmax(policy_logits(logits_fn, a), -1)
        action_b = jnp.argmax(policy_logits(logits_fn, b), -1)

        def per_weight(w):
            action = jnp.argmax(policy_logits(logits_fn, (1 - w) * a + w * b), -1)
            # Exact endpoints, whatever rounding a different batch composition brings.
            action = jnp.where(w == 0, action_a, jnp.where(w == 1, action_b, action))
            return action == action_a, action == action_b

        equals_a, equals_b = jax.lax.map(per_weight, weights)  # each [W, chunk]
        return equals_a.T, equals_b.T, action_a == action_b

    equals_a, equals_b, agree = map_in_chunks(per_chunk, obs_a.shape[0], chunk)  # [m, W], [m]
    fraction = jnp.float32
    return InterpolationConsistency(
        weights=weights,
        either=jnp.mean(equals_a | equals_b, axis=0, dtype=fraction),
        equals_a=jnp.mean(equals_a, axis=0, dtype=fraction),
        equals_b=jnp.mean(equals_b, axis=0, dtype=fraction),
        endpoints_agree=jnp.mean(agree, dtype=fraction),
    )


def draw_pairs(obs, key: jax.Array, num_pairs: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Random disjoint pairs from a batch obs [n, ...]: (obs_a, obs_b), each [num_pairs, ...].

    A random permutation split in two, so no observation appears twice and none is paired with
    itself; num_pairs defaults to n // 2, the most there are.
    """
    obs = jnp.asarray(obs)
    n = obs.shape[0] if obs.ndim else 0
    if n < 2:
        raise InputError(
            f"draw_pairs needs a batch of at least 2 observations, got shape {obs.shape}"
        )
    num_pairs = n // 2 if num_pairs is None else num_pairs
    if int(num_pairs) != num_pairs or not 1 <= num_pairs <= n // 2:
        raise InputError(
            f"num_pairs must be an integer in [1, {n // 2}] for n={n}, got {num_pairs}"
        )
    order = jax.random.permutation(key, n)
    return obs[order[:num_pairs]], obs[order[num_pairs : 2 * num_pairs]]
