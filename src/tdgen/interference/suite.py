"""The JAX side of the table of measures (table.py): one function per row, ``fn(ctx) -> {key:
value}``, which `tdgen.interference.Probe` calls for the measures it was given.

A `Context` holds one call's arrays and computes what several measures share once, on first use
(a layer's activations, the loss NTK); under jit it is traced like any Python object.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import flax.linen as nn

from tdgen.interference.activations import capture_activations
from tdgen.interference.churn import policy_churn
from tdgen.interference.curvature import hessian_max_eigenvalue
from tdgen.interference.gradients import (
    distance_from_init,
    gradient_noise,
    gradient_norm,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
)
from tdgen.interference.keys import update_rank_key
from tdgen.interference.plasticity import plasticity_probe_loss
from tdgen.interference.rank import gradient_gram, update_rank
from tdgen.interference.traced_activations import capture_traced_activations
from tdgen.interference.units import (
    active_units,
    dormant_units,
    feature_ranks,
    feature_stable_ranks,
    feature_statistics,
)


class Context:
    """One Probe call: the Probe (its settings), params, opt_state, batch, reference
    observations, the initial parameters and the key of the plasticity probe's targets."""

    def __init__(self, probe, params, opt_state, batch, reference, init_params, key):
        self.probe, self.params, self.opt_state, self.batch = probe, params, opt_state, batch
        self.reference, self.init_params, self.key = reference, init_params, key

    @cached_property
    def activations(self) -> dict[str, Any]:
        """A linen model's through its modules (activations.py); any other model's (Flax NNX,
        a plain function) from apply_fn's traced computation (traced_activations.py)."""
        p = self.probe
        if isinstance(p.model, nn.Module):
            return capture_activations(p.model, self.params, self.reference, p.layers,
                                       **p.apply_kwargs)  # fmt: skip
        return capture_traced_activations(p.apply_fn, self.params, self.reference, p.layers)

    @cached_property
    def loss_ntk(self):
        """K [k, k] of the per-transition loss gradients (gradients.py)."""
        return loss_ntk(self.probe.loss_fn, self.params, self.batch)

    @cached_property
    def output_ntk(self):
        """G [m, m] of the reduced outputs' gradients at the reference states (rank.py)."""
        p = self.probe
        return gradient_gram(p._matmul_apply, self.params, {"obs": self.reference},
                             reduce=p._scalar)  # fmt: skip


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}{name}": value for name, value in values.items()}


def _grad_noise(c: Context) -> dict:
    noise = gradient_noise(c.loss_ntk)
    noise.pop("grad_norm")  # the training-loss gradient norm, as grad_norm gives
    return _prefixed("dynamics/", noise)


def _churn(c: Context) -> dict:
    p = c.probe
    churn = policy_churn(p.apply_fn, c.params, p.loss_fn, c.batch, p.optimizer, c.opt_state,
                         c.reference, p.head)  # fmt: skip
    return {"dynamics/churn": churn}


def _plasticity(c: Context) -> dict:
    p = c.probe
    init_fn = p.init_fn
    if init_fn is None:  # the linen model behind apply_fn (Probe.__post_init__ checked it)

        def init_fn(key):
            return p.model.init(key, c.reference[:1], **p.apply_kwargs)

    loss = plasticity_probe_loss(p.apply_fn, c.params, c.reference, c.key, init_fn,
                                 p.optimizer, p.plasticity_steps, p.plasticity_targets)  # fmt: skip
    return {"dynamics/plasticity_probe_loss": loss}


def _rank(center: str | None) -> Callable[[Context], dict]:
    def rank(c: Context) -> dict:
        chosen = center or c.probe.center
        A = c.probe._update_matrix(c.params, c.opt_state, c.batch, chosen)
        return {update_rank_key(chosen): update_rank(A, c.probe.eps)}

    return rank


# name -> fn(ctx): every row of table.MEASURES_TABLE (a test checks the two agree)
JAX_MEASURES: dict[str, Callable[[Context], dict]] = {
    "dormant": lambda c: _prefixed("dynamics/", dormant_units(c.activations, c.probe.taus)),
    "active": lambda c: _prefixed("dynamics/", active_units(c.activations)),
    "features": lambda c: _prefixed("dynamics/", feature_statistics(c.activations, c.probe.delta)),
    "stable_rank": lambda c: _prefixed("dynamics/", feature_stable_ranks(c.activations)),
    "feature_rank": lambda c: _prefixed(
        "dynamics/", feature_ranks(c.activations, c.probe.feature_rank_eps)
    ),
    "param_norm": lambda c: _prefixed("dynamics/", parameter_norms(c.params)),
    "init_distance": lambda c: _prefixed("dynamics/", distance_from_init(c.params, c.init_params)),
    "grad_norm": lambda c: _prefixed(
        "dynamics/", gradient_norm(c.probe.loss_fn, c.params, c.batch)
    ),
    "grad_noise": _grad_noise,
    "loss_ntk": lambda c: _prefixed("dynamics/loss_ntk/", ntk_statistics(c.loss_ntk)),
    "output_ntk": lambda c: _prefixed("dynamics/output_ntk/", ntk_statistics(c.output_ntk)),
    "churn": _churn,
    "hessian_max": lambda c: {
        "dynamics/hessian_max_eigenvalue": hessian_max_eigenvalue(
            c.probe.loss_fn, c.params, c.batch, c.probe.hessian_iterations
        )
    },
    "plasticity": _plasticity,
    "update_rank": _rank(None),  # the Probe's centring (keys.py names it)
    "update_rank_drift": _rank("drift"),
}
