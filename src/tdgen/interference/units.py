"""Unit and feature statistics of layer activations: dormant units, active units, feature rank.

Activations are arrays [n, ..., units] (Dense [n, d]; NHWC conv [n, h, w, channels], a channel
being one unit as in ReDo). All functions are pure, work under jax.jit, and take a dict
{layer: activations} (from `capture_activations`) or one array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.interference.rank import effective_dimension, feature_rank, srank, stable_rank
from tdgen.interference.table import FEATURE_RANK_EPS

TAUS = (0.0, 0.025, 0.1)


def unit_scores(activations: jax.Array) -> jax.Array:
    """ReDo score s_i = E|h_i| / (1/H sum_j E|h_j|) per unit (Sokar et al. 2023, Eq. 1).

    activations: [n, ..., units]. Returns the scores [units] (float32). The expectation runs over
    inputs and, for conv layers, spatial positions. A layer whose activations are all zero has
    every score 0 (every unit dormant), not 0/0.
    """
    a = jnp.abs(jnp.asarray(activations, jnp.float32))
    mean_abs = a.reshape(-1, a.shape[-1]).mean(axis=0)
    layer_mean = mean_abs.mean()
    return jnp.where(layer_mean > 0, mean_abs / jnp.where(layer_mean > 0, layer_mean, 1.0), 0.0)


def dormant_units(
    activations: Mapping[str, jax.Array] | jax.Array, taus: Sequence[float] = TAUS
) -> dict[str, jax.Array]:
    """Fractions of tau-dormant units (score <= tau, Sokar et al. 2023), per layer and overall.

    activations: {layer: [n, ..., units]} or one array [n, ..., units] (layer "features").
    Returns {"dormant_{tau}/{layer}": ..., "dormant_{tau}": ...} of 0-d float arrays, tau written
    with :g ("dormant_0.025"); the overall key counts all layers' dormant units over all their
    units, as ReDo counts. tau = 0 counts units that are exactly zero on every input.
    """
    layers = _as_layers(activations)
    out, counts = {}, {tau: 0 for tau in taus}
    total = 0
    for name, acts in layers.items():
        scores = unit_scores(acts)
        total += scores.shape[0]
        for tau in taus:
            dormant = jnp.sum(scores <= tau)
            counts[tau] = counts[tau] + dormant
            out[f"dormant_{tau:g}/{name}"] = dormant / scores.shape[0]
    for tau in taus:
        out[f"dormant_{tau:g}"] = counts[tau] / total
    return out


def active_units(activations: Mapping[str, jax.Array] | jax.Array) -> dict[str, jax.Array]:
    """Fraction of units that are non-zero on at least one input (per layer and overall).

    The complement of the dead-unit fraction of Lyle et al. (2023, "Understanding plasticity in
    neural networks", a ReLU unit is dead when it is zero on every input), the "active units"
    of Plasticine. For ReLU layers it equals 1 - dormant_0. activations: {layer: [n, ..., units]}
    or one array [n, ..., units]. Returns {"active/{layer}": ..., "active": ...} of 0-d arrays.
    """
    out, alive, total = {}, 0, 0
    for name, acts in _as_layers(activations).items():
        a = jnp.asarray(acts)
        on = jnp.any(a.reshape(-1, a.shape[-1]) != 0, axis=0)
        out[f"active/{name}"] = on.mean()
        alive, total = alive + on.sum(), total + on.shape[0]
    out["active"] = alive / total
    return out


def feature_statistics(
    activations: Mapping[str, jax.Array] | jax.Array, delta: float = 0.01
) -> dict[str, jax.Array]:
    """Per layer: srank (Kumar et al. 2021, delta), effective rank (Roy & Vetterli 2007), norm.

    activations: {layer: [n, ..., units]} or one array [n, ..., units]; features are the
    activations flattened to [n, features]. feature_norm is the mean over inputs of
    ||phi(x)||_2. Returns {"feature_srank/{layer}": 0-d int32, "feature_erank/{layer}",
    "feature_norm/{layer}": 0-d float32}. All-zero features have srank 0 and effective rank 1
    (the conventions of rank.py: exp of the entropy of no mass), norm 0.
    """
    out = {}
    for name, acts in _as_layers(activations).items():
        phi = jnp.asarray(acts, jnp.float32).reshape(acts.shape[0], -1)
        out[f"feature_srank/{name}"] = srank(phi, delta)
        out[f"feature_erank/{name}"] = effective_dimension(phi, "entropy")
        out[f"feature_norm/{name}"] = jnp.linalg.norm(phi, axis=-1).mean()
    return out


def feature_stable_ranks(activations: Mapping[str, jax.Array] | jax.Array) -> dict[str, jax.Array]:
    """Per layer: the stable rank ||Phi||_F^2 / ||Phi||_2^2 of the features [n, features]
    ("feature_stable_rank/{layer}").

    activations: {layer: [n, ..., units]} or one array [n, ..., units], flattened to
    [n, features]. Returns {"feature_stable_rank/{layer}": 0-d float32}.
    """
    return {f"feature_stable_rank/{name}": stable_rank(_features(acts))
            for name, acts in _as_layers(activations).items()}  # fmt: skip


def feature_ranks(
    activations: Mapping[str, jax.Array] | jax.Array, eps: float = FEATURE_RANK_EPS
) -> dict[str, jax.Array]:
    """Per layer: InFeR's feature rank #{sigma(Phi / sqrt(n)) > eps} ("feature_rank/{layer}").

    activations: {layer: [n, ..., units]} or one array [n, ..., units], flattened to
    [n, features]. Returns {"feature_rank/{layer}": 0-d int32}.
    """
    return {f"feature_rank/{name}": feature_rank(_features(acts), eps)
            for name, acts in _as_layers(activations).items()}  # fmt: skip


def _features(acts) -> jax.Array:
    return jnp.asarray(acts, jnp.float32).reshape(acts.shape[0], -1)


def _as_layers(activations) -> dict[str, jax.Array]:
    if isinstance(activations, Mapping):
        if not activations:
            raise InputError("no layers: pass {layer: activations [n, ..., units]}")
        layers = dict(activations)
    else:
        layers = {"features": activations}
    for name, acts in layers.items():
        shape = jnp.shape(acts)
        if len(shape) < 2 or 0 in shape:
            raise InputError(
                f"activations of layer {name!r} have shape {shape}; expected [n, ..., units] "
                "with n >= 1 inputs"
            )
    return layers
