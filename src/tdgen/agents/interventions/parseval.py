"""Parseval regularisation (Chung, Cherif, Meger & Precup 2024, "Parseval regularization for
continual reinforcement learning", NeurIPS; arXiv:2412.07224).

The loss gains lam * sum_l ||W_l W_l^T - s I||_F^2 over the weight matrices W_l [out, in] of the
hidden layers, pushing each layer's rows towards orthogonality with squared norm s. Which layers:
every layer but the output layer, as the authors' code (``wechu/parseval_reg``,
agent.py: only the ``linear_orthog_*`` hidden layers, not ``linear_output``); in a tdgen network
that is every kernel of the encoder (``params["encoder"]``), the heads being the output layers.
Biases and normalisation parameters are not regularised. A flax kernel is [in, out], so
W W^T = K^T K [out, out]; a convolution kernel [kh, kw, c_in, c_out] is read as the matrix
[kh * kw * c_in, c_out] (each output channel's filter one row of W), as Parseval networks (Cisse
et al. 2017); the paper itself has only dense layers.

Defaults, from the authors' code: lam = 1e-3 (main.py, gridworld and MetaWorld; 1e-4 for CARL
LunarLander and Quadruped), s = 2 (agent.py: init_gain ** 2 with the default orthogonal gain
sqrt(2)). The authors also multiply lam by (64 / width) ** 2 for networks wider than their 64
units; here lam is used as given. Plasticine (utils.py ``PRLinear``) uses lam = 1e-3 and s = 1.
tdgen's dense layers start LeCun-normal, whose W W^T is close to I (s = 1), so s = 2 pulls the
rows to a norm sqrt(2) larger than at initialisation (He-like for ReLU).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError

ENCODER = "encoder"


def parseval_penalty(kernel: jax.Array, scale: float) -> jax.Array:
    """||W W^T - s I||_F^2 for a flax kernel [..., out] (dense [in, out] or conv [kh, kw, in, out]),
    W = kernel reshaped to [prod(...), out] and transposed."""
    matrix = kernel.reshape(-1, kernel.shape[-1])
    gram = matrix.T @ matrix
    return jnp.sum(jnp.square(gram - scale * jnp.eye(gram.shape[0], dtype=gram.dtype)))


def encoder_kernels(variables) -> list[jax.Array]:
    """The weight matrices Parseval regularises: every ``kernel`` leaf (ndim >= 2) of the encoder."""
    try:
        encoder = variables["params"][ENCODER]
    except (KeyError, TypeError):
        raise InputError(
            "parseval needs the network's variables with an encoder, {'params': {'encoder': ...}} "
            "as tdgen.nets.make_network builds them"
        ) from None
    kernels = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(encoder):
        last = path[-1]
        if getattr(last, "key", None) == "kernel" and leaf.ndim >= 2:
            kernels.append(leaf)
    return kernels


@dataclasses.dataclass(frozen=True)
class Parseval(Intervention):
    """lam * sum_l ||W_l W_l^T - s I||_F^2 over the encoder's weight matrices (Chung et al. 2024)."""

    name: ClassVar[str] = "parseval"
    kind: ClassVar[str] = "loss"
    source: ClassVar[str] = (
        "Chung, Cherif, Meger & Precup 2024, Parseval regularization for continual reinforcement "
        "learning (NeurIPS)"
    )

    lam: float = 1e-3
    """Regularisation strength lambda (authors' code: 1e-3 on gridworld and MetaWorld)."""
    scale: float = 2.0
    """Target squared row norm s (authors' code: the orthogonal init gain sqrt(2), squared)."""

    def __post_init__(self):
        if not self.lam >= 0:
            raise InputError(f"parseval lam must be >= 0, got {self.lam}")
        if not self.scale > 0:
            raise InputError(f"parseval scale must be > 0, got {self.scale}")

    def loss_term(self, params, memory, obs, context) -> jax.Array:
        """lam * sum_l ||W_l W_l^T - s I||_F^2, a float32 scalar (exactly 0 at lam = 0)."""
        del memory, obs, context
        kernels = encoder_kernels(params)
        if self.lam == 0 or not kernels:
            return jnp.zeros((), jnp.float32)
        total = sum(parseval_penalty(kernel, self.scale) for kernel in kernels)
        return self.lam * total


__all__ = ["Parseval", "encoder_kernels", "parseval_penalty"]
