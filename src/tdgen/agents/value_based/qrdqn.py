"""QR-DQN (Dabney et al. 2018): the return distribution as N quantiles, the quantile Huber loss.

The algorithm is `tdgen.losses.distributional.quantile_q_learning_loss` on one transition; it acts
greedily on the mean of the quantiles, and the probes read the same mean, then the max over
actions (Appendix B.1's reduction for value-based agents). Loop and presets are the value-based
family's (`tdgen.agents.value_based`); QR-DQN adds the number of quantiles and kappa. Unlike
Dopamine's quantile agent, the family is 1-step with uniform replay (Dopamine's gin uses 3-step
returns and prioritised replay): the same targets as DQN and C51 here, so the three compare.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from tdgen.agents.value_based.agent import Algorithm
from tdgen.agents.value_based.config import ValueBasedConfig
from tdgen.errors import InputError
from tdgen.losses.distributional import quantile_q_learning_loss


@dataclasses.dataclass(frozen=True)
class QRDQNConfig(ValueBasedConfig):
    """QR-DQN settings; defaults are the `minatar()` preset."""

    num_quantiles: int = 200
    """Quantiles of the return distribution (Dabney et al. 2018, Atari: 200)."""
    kappa: float = 1.0
    """Huber threshold of the quantile loss (0: the plain quantile loss)."""

    # Dopamine's quantile_agent (dopamine/jax/agents/quantile/configs/quantile.gin, and its
    # MinAtar gin): Adam lr 5e-5 / eps 3.125e-4 (0.01 / 32) on Atari, 200 quantiles, kappa 1.
    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {
        "minatar": {"num_quantiles": 200, "kappa": 1.0},
        "nature": {"optimizer": "adam", "lr": 5e-5, "eps": 0.01 / 32},
        "dopamine": {"lr": 5e-5, "eps": 0.01 / 32},
        "tandem": {},
    }

    def __post_init__(self):
        super().__post_init__()
        if self.num_quantiles < 1:
            raise InputError(f"num_quantiles must be positive, got {self.num_quantiles}")
        if self.kappa < 0:
            raise InputError(f"kappa must be >= 0, got {self.kappa}")


def mean_quantiles(theta: jax.Array) -> jax.Array:
    """Q-values [..., A]: the mean of quantiles [..., A, N] (the expected return)."""
    return jnp.mean(theta, axis=-1)


def algorithm(config: QRDQNConfig) -> Algorithm:
    """QR-DQN as an `Algorithm`: quantile head, quantile Huber loss, greedy on the mean; probes
    read the mean over quantiles, then the max over actions."""
    return Algorithm(
        kind="qrdqn",
        head="qr",
        head_kwargs={"num_quantiles": config.num_quantiles},
        transition_loss=partial(quantile_q_learning_loss, kappa=config.kappa),
        greedy_values=mean_quantiles,
        probe_reduce="max",
        probe_outputs=mean_quantiles,
    )
