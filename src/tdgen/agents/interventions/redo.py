"""ReDo, recycling dormant neurons (Sokar et al. 2023, "The dormant neuron phenomenon in deep RL").

Every ``period`` gradient updates, each hidden unit's score s_i = E|h_i| / (1/H sum_j E|h_j|)
(Eq. 1; `tdgen.interference.units.unit_scores`, the instrument's definition, over the batch of
observations and, for conv channels, positions) is computed on the post-activations
(`tdgen.interference.activations.capture_activations`); a unit with s_i <= tau is tau-dormant.
Its incoming weights (kernel column and bias) are redrawn from a fresh initialisation
(``context.init_params(key)``), its outgoing weights (its rows in every layer that reads it: the
next encoder layer, or every head after the encoder's last layer; for conv -> dense, the rows of
that channel at every position, flatten order h, w, c) are set to zero, and the optimiser entries
of both are reset (Dopamine's ``labs/redo/weight_recyclers.py`` zeroes Adam's mu and nu there).
Where a weight is both incoming to a recycled unit and outgoing from another, zero wins, as in
Dopamine (outgoing masks are applied after incoming ones).

Defaults: tau = 0.025 and period = 1000 updates, the paper's value-based (DQN) setting (recycling
period F = 1000 gradient steps, tau = 0.025); the Dopamine code's class defaults (threshold 0.0,
reset_period 200_000) are generic placeholders, not the paper's runs.
Departures from Dopamine: the fresh weights come from the network's own initialisers, not
Xavier-uniform; Dopamine's conv -> dense outgoing mask repeats each channel over consecutive rows
(a (c, h, w) flatten), whereas our encoders flatten NHWC maps as (h, w, c).

Only sequential encoders (mlp, minatar, nature) are supported: `ReDo.check` refuses impala, whose
residual blocks add a unit's output to a skip path read by more than the next layer.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from tdgen.agents.interventions.base import Context, Intervention
from tdgen.agents.interventions.layers import (
    check_sequential,
    consumer_rows,
    flags,
    flat_params,
    kernel_layers,
    reset_optimizer_entries,
    with_flat_params,
)
from tdgen.errors import InputError
from tdgen.interference.activations import capture_activations
from tdgen.interference.units import unit_scores
from tdgen.nets.options import DOUBLING


@dataclasses.dataclass(frozen=True)
class ReDo(Intervention):
    """Recycle tau-dormant units every ``period`` updates (Sokar et al. 2023, Alg. 1)."""

    name: ClassVar[str] = "redo"
    kind: ClassVar[str] = "event"
    source: ClassVar[str] = "Sokar et al. 2023, The dormant neuron phenomenon in deep RL (ICML)"

    tau: float = 0.025
    """A unit is dormant when its score is <= tau (Eq. 1; 0.025 for DQN)."""
    period: int = 1000
    """Gradient updates between recyclings (the paper's recycling period F)."""

    def __post_init__(self):
        if not self.tau >= 0:
            raise InputError(f"redo tau must be >= 0, got {self.tau}")
        self.require_period()

    def check(self, network) -> None:
        """InputError unless the network's encoder is sequential (mlp, minatar, nature) with one
        output per unit (not the concatenating crelu or fourier activations)."""
        check_sequential(network, self.name)
        activation = getattr(network.encoder, "activation", "relu")
        if activation in DOUBLING:
            raise InputError(
                f"redo recycles units with one output each; the encoder's activation "
                f"{activation!r} gives each unit two: leave out redo or {activation}"
            )

    def dormant(self, params, obs: jax.Array, context: Context) -> dict[str, jax.Array]:
        """{encoder layer name: [units] bool}, the tau-dormant units of each hidden layer."""
        acts = capture_activations(context.network, params, obs)
        return {name: unit_scores(a) <= self.tau for name, a in acts.items()}

    def fire(self, params, opt_state, memory, key, obs, context):
        """Recycle the dormant units; logs how many, and one firing."""
        self.check(context.network)
        layers = kernel_layers(context.network, params, obs)
        encoder = [layer for layer in layers if not layer.head]
        heads = [layer for layer in layers if layer.head]
        dormant = self.dormant(params, obs, context)
        flat, fresh = flat_params(params), flat_params(context.init_params(key))
        incoming = {k: jnp.zeros(v.shape, bool) for k, v in flat.items()}
        outgoing = dict(incoming)
        recycled = jnp.zeros((), jnp.int32)
        for i, layer in enumerate(encoder):
            if layer.name not in dormant:
                continue  # no activation follows it: not a layer of units
            mask = dormant[layer.name]
            kernel_key, bias_key = layer.path + ("kernel",), layer.path + ("bias",)
            if mask.shape[0] != flat[kernel_key].shape[-1]:
                raise InputError(
                    f"redo: layer {layer.name} has {mask.shape[0]} units but "
                    f"{flat[kernel_key].shape[-1]} kernel columns; ReDo needs one unit per "
                    "column (activation 'relu')"
                )
            incoming[kernel_key] = jnp.broadcast_to(mask, flat[kernel_key].shape)
            incoming[bias_key] = mask
            for reader in [encoder[i + 1]] if i + 1 < len(encoder) else heads:
                reader_key = reader.path + ("kernel",)
                rows = consumer_rows(mask, flat[kernel_key], flat[reader_key])
                outgoing[reader_key] = outgoing[reader_key] | rows
            recycled = recycled + mask.sum()
        new = {
            k: jnp.where(outgoing[k], 0.0, jnp.where(incoming[k], fresh[k], v)).astype(v.dtype)
            for k, v in flat.items()
        }
        new_params = with_flat_params(params, new)
        reset = flags(params, {k: incoming[k] | outgoing[k] for k in flat})
        opt_state = reset_optimizer_entries(context.optimizer, opt_state, new_params, reset)
        logged = {
            "interventions/redo/recycled": recycled,
            "interventions/redo/firings": jnp.int32(1),
        }
        return new_params, opt_state, memory, logged


__all__ = ["ReDo"]
