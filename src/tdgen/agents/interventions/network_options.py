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
    """LayerNorm on every hidden pre-activation, directly before the nonlinearity (over channels at
    each position for feature maps; flax's scale and offset, eps 1e-6): the encoders' option
    ``norm="layer"`` (`tdgen.nets.options`). Lyle et al. 2024's remedy for plasticity loss pairs it
    with ``weight_decay``. Plasticine's IMPALA normalises each conv's input instead."""

    name: ClassVar[str] = "layer_norm"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = (
        "Lyle et al. 2024, Disentangling the causes of plasticity loss in neural networks"
    )

    def network_options(self) -> dict[str, Any]:
        return {"norm": "layer"}


@dataclasses.dataclass(frozen=True)
class CReLU(Intervention):
    """concat(relu(z), relu(-z)) on every hidden layer (Abbas et al. 2023): every unit passes a
    gradient on every input. Width: each layer computes half as many pre-activation units, so its
    output width, the feature size and the heads are the ReLU network's (IMPALA's residual stream
    cannot halve: its blocks' first convs map 2C to C/2). Plasticine keeps the units and doubles
    the next layer's fan-in instead. The encoders' option ``activation="crelu"``."""

    name: ClassVar[str] = "crelu"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = "Abbas et al. 2023, Loss of plasticity in continual deep RL (CoLLAs)"

    def network_options(self) -> dict[str, Any]:
        return {"activation": "crelu"}


@dataclasses.dataclass(frozen=True)
class FourierFeatures(Intervention):
    """concat(sin(z), cos(z)) of every hidden pre-activation, the deep Fourier features of
    Lewandowski et al. 2024 (Plasticine's DFF layer computes the same), at half the
    pre-activation units as for ``crelu``. The encoders' option ``activation="fourier"``."""

    name: ClassVar[str] = "fourier"
    kind: ClassVar[str] = "network"
    source: ClassVar[str] = "Lewandowski et al. 2024, Plastic learning with deep Fourier features"

    def network_options(self) -> dict[str, Any]:
        return {"activation": "fourier"}
