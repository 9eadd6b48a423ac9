"""Decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled weight decay regularization",
ICLR; Algorithm 2, AdamW), wrapped around any of tdgen's optax optimisers.

theta <- theta - lr_t * (update_t + wd * theta), where lr_t * update_t is the base optimiser's
step (Adam's, RMSProp's, Adam after gradient clipping) and lr_t its learning rate at that step.
The base optimiser's update already carries -lr_t, so the wrapper adds -lr_t * wd * theta; it
needs the agent's learning rate, a float or an optax schedule (then evaluated on the wrapper's
own step count, which advances with the base optimiser's). Wrapping ``optax.adam(lr, eps)``
gives ``optax.adamw(lr, eps=eps, weight_decay=wd)`` up to float rounding (tested to 1e-7). Every
parameter decays (weights, biases, normalisation parameters), as optax.adamw with no mask and
as PyTorch's Adam(weight_decay=...) in Plasticine. tdgen's agents use constant learning rates
(value_based.config.make_optimizer, actor_critic.ppo.make_adam); a schedule is accepted for later.

Default wd = 1e-3: Plasticine's "L2 Regularization" (it cites Lyle et al. 2024, "Disentangling
the causes of plasticity loss in neural networks", arXiv:2402.18762), ``optim.Adam(...,
weight_decay=1e-3)`` in every Plasticine agent. Note PyTorch's Adam adds wd * theta to the gradient
before Adam's normalisation (coupled L2), so the same number is a different strength here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.interventions.base import Intervention
from tdgen.errors import InputError


class DecoupledWeightDecayState(NamedTuple):
    """The base optimiser's state and the step count the learning-rate schedule reads."""

    base: Any
    count: jax.Array


def decoupled_weight_decay(
    optimizer: optax.GradientTransformation,
    lr: float | Callable[[jax.Array], jax.Array],
    wd: float,
) -> optax.GradientTransformation:
    """``optimizer`` whose every step adds -lr_t * wd * theta (AdamW's decay, Loshchilov & Hutter
    2019, Algorithm 2); needs the parameters in ``update``."""

    def init_fn(params):
        return DecoupledWeightDecayState(optimizer.init(params), jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "decoupled weight decay needs the parameters: update(g, state, params)"
            )
        base_updates, base_state = optimizer.update(updates, state.base, params)
        step_size = lr(state.count) if callable(lr) else lr
        decayed = jax.tree.map(
            lambda u, p: u + (-step_size * wd * p).astype(u.dtype), base_updates, params
        )
        return decayed, DecoupledWeightDecayState(base_state, optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


@dataclasses.dataclass(frozen=True)
class WeightDecay(Intervention):
    """theta <- theta - lr_t * (update_t + wd * theta) around the agent's optimiser (AdamW)."""

    name: ClassVar[str] = "weight_decay"
    kind: ClassVar[str] = "optimizer"
    source: ClassVar[str] = "Loshchilov & Hutter 2019, Decoupled weight decay regularization (ICLR)"

    wd: float = 1e-3
    """Decay coefficient (Plasticine's 1e-3, there coupled as PyTorch Adam's weight_decay)."""
    lr: float | Callable[[jax.Array], jax.Array] | None = None
    """The agent's learning rate, a float or an optax schedule (set it from the agent's config)."""

    def __post_init__(self):
        if not self.wd >= 0:
            raise InputError(f"weight_decay wd must be >= 0, got {self.wd}")
        if isinstance(self.lr, int | float) and not self.lr > 0:
            raise InputError(f"weight_decay lr must be > 0, got {self.lr}")

    def at_learning_rate(self, lr: float) -> WeightDecay:
        """Decoupled at the agent's learning rate unless ``lr`` was set."""
        return self if self.lr is not None else dataclasses.replace(self, lr=lr)

    def wrap_optimizer(
        self, optimizer: optax.GradientTransformation
    ) -> optax.GradientTransformation:
        """The base optimiser itself at wd = 0; otherwise `decoupled_weight_decay` around it."""
        if self.wd == 0:
            return optimizer
        if self.lr is None:
            raise InputError(
                "weight_decay needs the agent's learning rate to decouple the decay: "
                "WeightDecay(wd=..., lr=config.lr)"
            )
        return decoupled_weight_decay(optimizer, self.lr, self.wd)


__all__ = ["DecoupledWeightDecayState", "WeightDecay", "decoupled_weight_decay"]
