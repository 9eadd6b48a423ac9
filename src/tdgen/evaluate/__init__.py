"""Evaluation of trained policies: Section 6's robustness, interpolation and generalisation gap.

Generic over any policy function `logits_fn(obs [n, ...]) -> [n, num_actions]` (Q-values of a value
agent, logits of an actor or a behaviour-cloned student) and arrays of observations or returns
(`episode_returns` also steps a jittable environment, `host_episode_returns` a host-stepped pool);
imports no agent, distillation or experiment code.
"""

from tdgen.evaluate.generalization import GeneralizationGap, generalization_gap
from tdgen.evaluate.interpolation import (
    InterpolationConsistency,
    draw_pairs,
    interpolation_consistency,
)
from tdgen.evaluate.plot import plot_interpolation, plot_robustness
from tdgen.evaluate.returns import (
    episode_returns,
    epsilon_greedy,
    host_actor,
    host_episode_returns,
    sampled,
)
from tdgen.evaluate.robustness import Robustness, policy_l1, robustness

__all__ = [
    "GeneralizationGap",
    "InterpolationConsistency",
    "Robustness",
    "draw_pairs",
    "episode_returns",
    "epsilon_greedy",
    "generalization_gap",
    "host_actor",
    "host_episode_returns",
    "interpolation_consistency",
    "plot_interpolation",
    "plot_robustness",
    "policy_l1",
    "robustness",
    "sampled",
]
