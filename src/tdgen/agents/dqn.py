"""DQN (Mnih et al. 2015): semi-gradient Q-learning with a target network (Eq. 4 of the paper).

The algorithm is `q_learning_loss` on one transition; the training loop and the presets
(`DQNConfig.minatar()`, `.nature()`, `.dopamine()`, `.tandem()`, each citing its source) are shared
with C51 in `tdgen.agents.value_based`.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp

from tdgen.agents.config import ValueBasedConfig
from tdgen.agents.value_based import Algorithm

LOSSES = ("huber", "mse")


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
    """Huber loss, quadratic within ``delta`` (Mnih et al. 2015's error clipping)."""
    abs_x = jnp.abs(x)
    quadratic = jnp.minimum(abs_x, delta)
    return 0.5 * quadratic**2 + delta * (abs_x - quadratic)


def mse(x: jax.Array) -> jax.Array:
    """Half the squared error (Dopamine's mse_loss)."""
    return 0.5 * x**2


def q_learning_loss(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    loss: str = "huber",
) -> jax.Array:
    """Loss of the TD error r + discount * max_a q_t[a] - q_tm1[a_tm1] on one transition.

    q_tm1 [A] online values at x; q_t [A] target-network values at x' (no gradient flows
    through the target); discount_t = gamma * (1 - terminated).
    """
    if q_tm1.ndim != 1 or q_t.shape != q_tm1.shape:
        raise ValueError(f"q_tm1 and q_t must be [A], got {q_tm1.shape} and {q_t.shape}")
    target = jax.lax.stop_gradient(r_t + discount_t * jnp.max(q_t))
    td_error = target - q_tm1[a_tm1]
    return huber(td_error) if loss == "huber" else mse(td_error)


@dataclasses.dataclass(frozen=True)
class DQNConfig(ValueBasedConfig):
    """DQN settings; defaults are the `minatar()` preset."""

    loss: Literal["huber", "mse"] = "mse"
    """TD loss: huber (Mnih et al. 2015) or mse (Dopamine's MinAtar and Adam settings)."""

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {
        "minatar": {"loss": "mse"},
        "nature": {"loss": "huber"},
        "dopamine": {"loss": "huber"},
        "tandem": {"loss": "huber"},
    }


def algorithm(config: DQNConfig) -> Algorithm:
    """DQN as an `Algorithm`: Q head, `q_learning_loss`, greedy on Q, probes reduce by max."""
    return Algorithm(
        kind="dqn",
        head="q",
        head_kwargs={},
        transition_loss=partial(q_learning_loss, loss=config.loss),
        greedy_values=lambda q: q,
        probe_reduce="max",
    )
