"""DQN (Mnih et al. 2015): semi-gradient Q-learning with a target network (Eq. 4 of the paper).

The algorithm is `tdgen.losses.value.q_learning_loss` on one transition; the training loop and the presets
(`DQNConfig.minatar()`, `.nature()`, `.dopamine()`, `.tandem()`, each citing its source) are shared
with C51 in `tdgen.agents.value_based`.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar, Literal

from tdgen.agents.value_based.agent import Algorithm
from tdgen.agents.value_based.config import ValueBasedConfig
from tdgen.errors import InputError
from tdgen.losses.value import LOSSES, q_learning_loss


@dataclasses.dataclass(frozen=True)
class DQNConfig(ValueBasedConfig):
    """DQN settings; defaults are the `minatar()` preset."""

    loss: Literal["huber", "mse"] = "mse"
    """TD loss: huber (Mnih et al. 2015) or mse (Dopamine's MinAtar and Adam settings)."""

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

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
