"""Flax linen networks for the paper's agents: encoders, heads and `make_network`."""

from tdgen.nets.encoders import MLP, ImpalaCNN, MinAtarCNN, NatureCNN, ResidualBlock
from tdgen.nets.factory import ENCODERS, HEADS, Network, make_network
from tdgen.nets.heads import AdvantageHead, C51Head, PolicyHead, QHead, QuantileHead, ValueHead
from tdgen.nets.layers import Conv, im2col, scale_observation
from tdgen.nets.options import ACTIVATIONS, NORMS

__all__ = [
    "ACTIVATIONS",
    "ENCODERS",
    "HEADS",
    "MLP",
    "NORMS",
    "AdvantageHead",
    "C51Head",
    "Conv",
    "ImpalaCNN",
    "MinAtarCNN",
    "NatureCNN",
    "Network",
    "PolicyHead",
    "QHead",
    "QuantileHead",
    "ResidualBlock",
    "ValueHead",
    "im2col",
    "make_network",
    "scale_observation",
]
