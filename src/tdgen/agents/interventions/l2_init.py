"""L2 Init, regenerative regularisation (Kumar, Marklund & Van Roy 2023, "Maintaining plasticity
in continual learning via regenerative regularization", arXiv:2308.11958, Section 3).

The training loss gains lam * ||theta - theta_0||_2^2 (their L_reg, Section 3), theta_0 the
parameters at step 0, kept as this intervention's memory. theta is every leaf of the network's
``params`` collection: weights, biases and LayerNorm scales and offsets alike, as the paper's
"vector of parameter values" and Plasticine's ``torch.cat(self.parameters())``. Parameters an
intervention adds in a collection of its own (InFeR's auxiliary head) are not regularised.

lam: Kumar et al. select it per problem from {1e-2, 1e-3, 1e-4, 1e-5} (Section 5, hyper-parameters);
the default 1e-2 is Plasticine's (``plasticine_regenerative_regularization(rr_weight=0.01)``), which
however multiplies the unsquared norm ||theta - theta_0||_2; this module keeps the paper's square,
whose gradient is 2 * lam * (theta - theta_0).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError

COLLECTION = "params"


def squared_distance(params, params_0) -> jax.Array:
    """||theta - theta_0||_2^2 summed over every leaf of two equally shaped pytrees."""
    leaves = jax.tree.leaves(
        jax.tree.map(lambda p, p0: jnp.sum(jnp.square(p - p0)), params, params_0)
    )
    return sum(leaves, jnp.zeros((), jnp.float32))


@dataclasses.dataclass(frozen=True)
class L2Init(Intervention):
    """lam * ||theta - theta_0||^2 added to the loss (Kumar et al. 2023, L_reg)."""

    name: ClassVar[str] = "l2_init"
    kind: ClassVar[str] = "loss"
    source: ClassVar[str] = (
        "Kumar, Marklund & Van Roy 2023, Maintaining plasticity in continual learning via "
        "regenerative regularization (arXiv:2308.11958)"
    )

    lam: float = 1e-2
    """Regularisation strength lambda (Plasticine's 0.01; the paper sweeps 1e-2 ... 1e-5)."""

    def __post_init__(self):
        if not self.lam >= 0:
            raise InputError(f"l2_init lam must be >= 0, got {self.lam}")

    def init_memory(self, params, key, context):
        """theta_0: a copy of the initial ``params`` collection."""
        del key, context
        return jax.tree.map(jnp.array, params[COLLECTION])

    def loss_term(self, params, memory, obs, context) -> jax.Array:
        """lam * ||theta - theta_0||^2, a float32 scalar; exactly 0 (no term traced) at lam = 0."""
        del obs, context
        if self.lam == 0:
            return jnp.zeros((), jnp.float32)
        return self.lam * squared_distance(params[COLLECTION], jax.lax.stop_gradient(memory))


__all__ = ["L2Init", "squared_distance"]
