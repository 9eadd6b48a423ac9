"""Resets of the last layers (Nikishin et al. 2022, "The primacy bias in deep RL", ICML).

Every ``period`` gradient updates, the last ``layers`` layers of the network are redrawn from a
fresh initialisation (``context.init_params(key)``) and their optimiser state is reset (zero Adam
moments; the step count is kept). Layers are the kernel layers in call order, the heads counting
as one layer (all heads together, they share the last place), so ``layers=k`` resets every head
and the k-1 encoder layers before them; a normalisation called right after a reset layer is part
of it and is reset too.

Defaults: layers = 1 and period = 20_000 updates, the paper's value-based discrete-action setting
(SPR on Atari 100k: the final linear layer every 2 x 10^4 updates); its SAC setting resets every
layer every 2 x 10^5 updates (``Reset(layers=<all>, period=200_000)``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from tdgen.agents.interventions.base import Intervention
from tdgen.agents.interventions.layers import (
    Path,
    flat_params,
    kernel_layers,
    module_flags,
    reset_optimizer_entries,
    under,
    with_flat_params,
)
from tdgen.errors import InputError


@dataclasses.dataclass(frozen=True)
class Reset(Intervention):
    """Re-initialise the last ``layers`` layers every ``period`` updates (Nikishin et al. 2022)."""

    name: ClassVar[str] = "reset"
    kind: ClassVar[str] = "event"
    source: ClassVar[str] = "Nikishin et al. 2022, The primacy bias in deep RL (ICML)"

    layers: int = 1
    """How many layers to reset, counted back from the output (all heads count as one)."""
    period: int = 20_000
    """Gradient updates between resets."""

    def __post_init__(self):
        if self.layers < 1:
            raise InputError(f"reset layers must be >= 1, got {self.layers}")
        self.require_period()

    def reset_paths(self, params, obs, context) -> list[Path]:
        """The module paths reset: the last ``layers`` layers (heads as one), with their norms."""
        kernels = kernel_layers(context.network, params, obs)
        groups = [[layer] for layer in kernels if not layer.head]
        heads = [layer for layer in kernels if layer.head]
        if heads:
            groups.append(heads)
        if self.layers > len(groups):
            raise InputError(
                f"reset layers={self.layers} but the network has {len(groups)} layers "
                f"(its heads counting as one); choose layers <= {len(groups)}"
            )
        chosen = [layer for group in groups[-self.layers :] for layer in group]
        return [layer.path for layer in chosen] + [x.norm for x in chosen if x.norm is not None]

    def fire(self, params, opt_state, memory, key, obs, context):
        """Redraw the chosen layers and reset their optimiser state; logs how many layers."""
        paths = self.reset_paths(params, obs, context)
        fresh = flat_params(context.init_params(key))
        flat = {k: fresh[k] if under(k, paths) else v for k, v in flat_params(params).items()}
        new_params = with_flat_params(params, flat)
        reset = module_flags(params, paths)
        opt_state = reset_optimizer_entries(context.optimizer, opt_state, new_params, reset)
        logged = {"interventions/reset/layers": jnp.asarray(self.layers, jnp.int32)}
        return new_params, opt_state, memory, logged


__all__ = ["Reset"]
