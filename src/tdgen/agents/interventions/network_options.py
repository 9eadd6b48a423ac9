"""The network-option interventions: LayerNorm, CReLU and deep Fourier features.

Each only chooses an option of every encoder (`tdgen.nets.options`, where the definitions, the
placement of the normalisation and the width convention live); the agent builds its network with
them, so they act wherever the network does, inside the jitted segment.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from tdgen.agents.interventions.base import Intervention


@dataclasses.dataclass(frozen=True)
class LayerNorm(Intervention):
    """LayerNorm on every hidden pre-activation (Lyle et al. 2024; pair it with weight_decay for
    their remedy of plasticity loss)."""

    name: ClassVar[str] = "layer_norm"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = (
        "Lyle et al. 2024, Disentangling the causes of plasticity loss in neural networks"
    )

    def network_options(self) -> dict[str, Any]:
        return {"norm": "layer"}


@dataclasses.dataclass(frozen=True)
class CReLU(Intervention):
    """concat(relu(x), relu(-x)) on every hidden layer, at half the pre-activation units, so the
    layer's output width is the ReLU network's (Abbas et al. 2023)."""

    name: ClassVar[str] = "crelu"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = "Abbas et al. 2023, Loss of plasticity in continual deep RL (CoLLAs)"

    def network_options(self) -> dict[str, Any]:
        return {"activation": "crelu"}


@dataclasses.dataclass(frozen=True)
class FourierFeatures(Intervention):
    """concat(sin(x), cos(x)) on every hidden layer, at half the pre-activation units
    (Lewandowski et al. 2024)."""

    name: ClassVar[str] = "fourier"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = "Lewandowski et al. 2024, Plastic learning with deep Fourier features"

    def network_options(self) -> dict[str, Any]:
        return {"activation": "fourier"}
