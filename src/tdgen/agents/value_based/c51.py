"""C51 (Bellemare et al. 2017): a categorical return distribution on fixed atoms, cross-entropy.

The algorithm is `tdgen.losses.distributional.categorical_q_learning_loss` on one transition,
built on the projection of the shifted target distribution back onto the atoms. The loop and presets
are shared with DQN (`tdgen.agents.value_based`); C51 acts greedily on the expected return.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from tdgen.agents.value_based.agent import Algorithm
from tdgen.agents.value_based.config import ValueBasedConfig
from tdgen.errors import InputError
from tdgen.losses.distributional import categorical_q_learning_loss, expected_values


@dataclasses.dataclass(frozen=True)
class C51Config(ValueBasedConfig):
    """C51 settings; defaults are the `minatar()` preset."""

    num_atoms: int = 51
    """Atoms of the return distribution."""
    vmax: float = 100.0
    """Largest atom; atoms are evenly spaced on [-vmax, vmax]."""

    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {
        "minatar": {"vmax": 100.0},
        "nature": {"optimizer": "adam", "lr": 2.5e-4, "eps": 0.01 / 32, "vmax": 10.0},
        "dopamine": {"lr": 2.5e-4, "eps": 3.125e-4, "vmax": 10.0},
        "tandem": {"vmax": 10.0},
    }

    def __post_init__(self):
        super().__post_init__()
        if self.num_atoms < 2:
            raise InputError(f"num_atoms must be at least 2, got {self.num_atoms}")
        if self.vmax <= 0:
            raise InputError(f"vmax must be positive, got {self.vmax}")

    @property
    def support(self) -> np.ndarray:
        """The atoms z [num_atoms], float32."""
        return np.linspace(-self.vmax, self.vmax, self.num_atoms, dtype=np.float32)


def algorithm(config: C51Config) -> Algorithm:
    """C51 as an `Algorithm`: C51 head, categorical loss, greedy on the expected return; probes
    reduce by the expectation over atoms, then the max over actions (Appendix B.1)."""
    support = jnp.asarray(config.support)
    return Algorithm(
        kind="c51",
        head="c51",
        head_kwargs={"num_atoms": config.num_atoms},
        transition_loss=partial(categorical_q_learning_loss, support=support),
        greedy_values=partial(expected_values, support=support),
        probe_reduce="expectation",
        probe_support=tuple(float(z) for z in config.support),
    )
