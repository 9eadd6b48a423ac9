"""Normalize-and-Project (Lyle et al. 2024, "Normalization and effective learning rates in
reinforcement learning", NeurIPS).

Normalize: LayerNorm before every hidden nonlinearity, the network option ``norm="layer"``
(`tdgen.nets.options`). Project: after every optimiser step, each weight matrix W_l of a layer
followed by a normalisation is rescaled to its initial norm, W_l <- W_l * ||W_l^0|| / ||W_l||
(Frobenius norm, per layer). Such a layer's output is invariant to the scale of W_l, so the
projection leaves the function unchanged and fixes the effective learning rate, which would
otherwise decay as ||W_l|| grows. Biases, LayerNorm scales and offsets, and layers not followed by
a normalisation (the heads) are not projected. (Plasticine's ``*_nap.py`` projects every weight,
the output layer's too, and the LayerNorm scale and offset jointly to norm sqrt(2).)

Fit to the interface: kind "network" (its options add the normalisation), memory = the initial
norms {"params": {module: {"kernel": ||W^0||}}} of the projected kernels, and `after_step` is the
projection, which the agent applies to the parameters after every optimiser step. No settings.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import traverse_util

from tdgen.agents.interventions.base import Intervention
from tdgen.agents.interventions.layers import flat_params, traced_kernel_layers, with_flat_params
from tdgen.errors import InputError


@dataclasses.dataclass(frozen=True)
class NormalizeProject(Intervention):
    """LayerNorm + projection of normalised layers' weights to their initial norms."""

    name: ClassVar[str] = "normalize_project"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = (
        "Lyle et al. 2024, Normalization and effective learning rates in RL (NeurIPS)"
    )

    def network_options(self) -> dict[str, str]:
        """LayerNorm before every hidden nonlinearity."""
        return {"norm": "layer"}

    def init_memory(self, params, key, context):
        """The initial Frobenius norms of the kernels of layers followed by a normalisation."""
        layers = traced_kernel_layers(lambda: context.init_params(key))
        projected = [layer.path + ("kernel",) for layer in layers if layer.norm is not None]
        if not projected:
            raise InputError(
                "normalize_project: no layer of the network is followed by a normalisation; "
                "build it with norm='layer' (NormalizeProject.network_options())"
            )
        flat = flat_params(params)
        norms = {k: jnp.linalg.norm(flat[k].astype(jnp.float32)) for k in projected}
        return {"params": traverse_util.unflatten_dict(norms)}

    def after_step(self, params, memory):
        """Each projected kernel rescaled to its initial norm (kept as is if its norm is 0)."""
        flat = flat_params(params)
        for k, norm0 in traverse_util.flatten_dict(memory["params"]).items():
            w = flat[k]
            norm = jnp.linalg.norm(w.astype(jnp.float32))
            scale = jnp.where(norm > 0, norm0 / jnp.where(norm > 0, norm, 1.0), 1.0)
            flat[k] = (w * scale).astype(w.dtype)
        return with_flat_params(params, flat)


def projected_norms(params, memory) -> dict[str, jax.Array]:
    """{layer name: current ||W||} of the projected kernels (for checks and logging)."""
    flat = flat_params(params)
    keys = traverse_util.flatten_dict(memory["params"])
    return {"/".join(k[:-1]): jnp.linalg.norm(flat[k]) for k in keys}


__all__ = ["NormalizeProject", "projected_norms"]
