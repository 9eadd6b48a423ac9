"""Shrink-and-perturb (Ash & Adams 2020, "On warm-starting neural network training", NeurIPS).

Every ``period`` gradient updates, theta <- lam * theta + sigma * theta_fresh for every parameter,
theta_fresh a fresh initialisation (``context.init_params(key)``), the form of the authors' code
(``JordanAsh/warm_start``, run.py: "a randomly-initialized model as a noise source respects how
different kinds of parameters are often initialized differently") and of Plasticine.

Defaults follow Plasticine's shrink-and-perturb for value-based RL (``pqn_atari_snp.py``: every
update, lam = 0.999999, sigma = 1 - lam = 1e-6, the optimiser state kept): a continual, gentle
pull towards a fresh network. Ash & Adams's own values (lam = 0.4, sigma = 0.1, applied once per
round of new data with a new optimiser) are `ShrinkPerturb.warm_start`.

Optimiser state: kept by default (Plasticine), so Adam's moments carry on across the event;
``reset_optimizer=True`` resets it to a fresh state's values (zero moments, step count kept), as
Ash & Adams's re-created optimiser does.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax

from tdgen.agents.interventions.base import Intervention
from tdgen.agents.interventions.layers import reset_optimizer_entries
from tdgen.errors import InputError


@dataclasses.dataclass(frozen=True)
class ShrinkPerturb(Intervention):
    """theta <- lam * theta + sigma * theta_fresh every ``period`` updates (Ash & Adams 2020)."""

    name: ClassVar[str] = "shrink_perturb"
    kind: ClassVar[str] = "event"
    source: ClassVar[str] = "Ash & Adams 2020, On warm-starting neural network training (NeurIPS)"

    lam: float = 0.999999
    """Shrink factor lambda applied to the current parameters."""
    sigma: float = 1e-6
    """Weight of the fresh initialisation added (the perturbation)."""
    period: int = 1
    """Gradient updates between firings."""
    reset_optimizer: bool = False
    """Reset the optimiser state to a fresh one's values at each firing."""

    def __post_init__(self):
        self.require_period()
        if not (self.lam >= 0 and self.sigma >= 0):
            raise InputError(
                f"shrink_perturb lam and sigma must be >= 0, got lam={self.lam}, sigma={self.sigma}"
            )

    @classmethod
    def warm_start(cls, period: int) -> ShrinkPerturb:
        """Ash & Adams's values (run.py: shrink 0.4, perturb 0.1) with a fresh optimiser."""
        return cls(lam=0.4, sigma=0.1, period=period, reset_optimizer=True)

    def fire(self, params, opt_state, memory, key, obs, context):
        """Shrink and perturb every parameter; logs the shrink factor applied."""
        fresh = context.init_params(key)
        new_params = {
            **params,
            "params": jax.tree.map(
                lambda p, f: (self.lam * p + self.sigma * f).astype(p.dtype),
                params["params"],
                fresh["params"],
            ),
        }
        if self.reset_optimizer:
            everything = jax.tree.map(lambda _: True, params)
            opt_state = reset_optimizer_entries(
                context.optimizer, opt_state, new_params, everything
            )
        logged = {"interventions/shrink_perturb/firings": jax.numpy.int32(1)}
        return new_params, opt_state, memory, logged


__all__ = ["ShrinkPerturb"]
