"""InFeR, initial feature regularisation (Lyle, Rowland & Dabney 2022, "Understanding and
preventing capacity loss in reinforcement learning", ICLR; arXiv:2204.09560, Section 5).

k auxiliary linear heads g(x; theta) = phi(x; theta) W + b read the encoder's features phi and
regress towards beta times the same heads of the *initial* network, frozen:

    L_InFeR = alpha * E_x sum_{i=1..k} (g_i(x; theta) - beta * g_i(x; theta_0))^2

(their InFeR loss, a mean over the batch and a sum over the heads), added to the agent's loss.
The heads are trainable parameters of the intervention: `InFeR.extend_params` adds them as a
collection of their own, ``variables["infer"] = {"kernel": [d, k], "bias": [k]}``, which flax's
``apply`` ignores (the network reads only ``params``), so the agent's outputs are unchanged and
its optimiser trains the heads with everything else. The memory keeps the initial network
variables (for phi(x; theta_0)) and the initial heads (W_0, b_0). Heads start as flax's Dense:
LeCun-normal kernel, zero bias.

Defaults k = 10, beta = 100, alpha = 0.1 as we read the paper's Atari setting; we could not open
its appendix from here, so check them against it. A PyTorch reimplementation
(``timoklein/infer``, config.py) uses k = 10, beta = 175, alpha = 0.05 and a mean, not
a sum, over the heads.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError

COLLECTION = "infer"


def feature_width(variables) -> int:
    """Width d of the encoder's features, read off the network's heads: each is a dense layer on
    the features (the DAAC advantage head on features and a one-hot action, hence the smallest)."""
    widths = [
        leaf.shape[0]
        for name, head in variables["params"].items()
        if name != "encoder"
        for path, leaf in jax.tree_util.tree_leaves_with_path(head)
        if getattr(path[-1], "key", None) == "kernel" and leaf.ndim == 2
    ]
    if not widths:
        raise InputError(
            "infer reads the features' width from the network's heads' kernels, and found none: "
            "give InFeR(num_features=...)"
        )
    return min(widths)


def auxiliary_outputs(head, features: jax.Array) -> jax.Array:
    """g(x) = features [n, d] @ kernel [d, k] + bias [k] -> [n, k]."""
    return features @ head["kernel"] + head["bias"]


@dataclasses.dataclass(frozen=True)
class InFeR(Intervention):
    """alpha * E_x ||g(x; theta) - beta g(x; theta_0)||^2 with k trainable auxiliary heads."""

    name: ClassVar[str] = "infer"
    kind: ClassVar[str] = "loss"
    source: ClassVar[str] = (
        "Lyle, Rowland & Dabney 2022, Understanding and preventing capacity loss in reinforcement "
        "learning (ICLR)"
    )

    num_heads: int = 10
    """Number k of auxiliary heads."""
    beta: float = 100.0
    """Scale beta of the initial network's outputs that the heads regress to."""
    alpha: float = 0.1
    """Weight alpha of the auxiliary loss."""
    num_features: int | None = None
    """Feature width d (None: read off the network's heads)."""

    def __post_init__(self):
        if self.num_heads < 1:
            raise InputError(f"infer num_heads must be >= 1, got {self.num_heads}")
        if not self.alpha >= 0:
            raise InputError(f"infer alpha must be >= 0, got {self.alpha}")
        if self.num_features is not None and self.num_features < 1:
            raise InputError(f"infer num_features must be >= 1, got {self.num_features}")

    def extend_params(self, params, key, context):
        """The variables with ``infer`` = {"kernel": [d, k], "bias": [k]} added (flax Dense init)."""
        del context
        if COLLECTION in params:
            raise InputError(f"the variables already hold an {COLLECTION!r} collection")
        width = self.num_features or feature_width(params)
        head = {
            "kernel": nn.initializers.lecun_normal()(key, (width, self.num_heads), jnp.float32),
            "bias": jnp.zeros((self.num_heads,), jnp.float32),
        }
        return {**params, COLLECTION: head}

    def init_memory(self, params, key, context):
        """The frozen initial network (its variables without the heads) and initial heads; call it
        on the variables `extend_params` returned."""
        del key, context
        if COLLECTION not in params:
            raise InputError(
                f"infer's memory is made from the extended variables: call extend_params first "
                f"(no {COLLECTION!r} collection in {sorted(params)})"
            )
        network = {name: value for name, value in params.items() if name != COLLECTION}
        return jax.tree.map(jnp.array, {"network": network, "heads": params[COLLECTION]})

    def loss_term(self, params, memory, obs, context) -> jax.Array:
        """alpha * mean over the batch of sum over the k heads of (g - beta g_0)^2, obs [n, ...]."""
        memory = jax.lax.stop_gradient(memory)
        outputs = auxiliary_outputs(params[COLLECTION], context.features(params, obs))
        initial = auxiliary_outputs(memory["heads"], context.features(memory["network"], obs))
        residual = outputs - self.beta * initial
        return self.alpha * jnp.mean(jnp.sum(jnp.square(residual), axis=-1))


__all__ = ["InFeR", "auxiliary_outputs", "feature_width"]
