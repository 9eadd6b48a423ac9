"""The update matrix and the learning-dynamics measures for PyTorch modules (needs torch).

Same definitions as the JAX versions in `tdgen.interference` (and tested equal on the same
weights): update_matrix.py is the update matrix of a module under its real torch.optim step;
measures.py holds dormant/active units, feature rank, norms, gradient noise, the loss NTK and
policy churn, with layer activations read by forward hooks; probe.py bundles them (Probe);
losses.py holds training losses as torch RL libraries write them (td_loss: CleanRL's DQN loss).
Nothing here loads JAX.
"""

from tdgen.interference.torch.losses import td_loss
from tdgen.interference.torch.measures import (
    active_units,
    capture_activations,
    distance_from_init,
    dormant_units,
    feature_statistics,
    gradient_noise,
    gradient_norm,
    greedy_churn,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
    per_sample_gradients,
    policy_churn,
    policy_churn_tv,
    unit_scores,
)
from tdgen.interference.torch.probe import Probe
from tdgen.interference.torch.update_matrix import update_matrix, update_rank

__all__ = [
    "Probe",
    "active_units",
    "capture_activations",
    "distance_from_init",
    "dormant_units",
    "feature_statistics",
    "gradient_noise",
    "gradient_norm",
    "greedy_churn",
    "loss_ntk",
    "ntk_statistics",
    "parameter_norms",
    "per_sample_gradients",
    "policy_churn",
    "policy_churn_tv",
    "td_loss",
    "unit_scores",
    "update_matrix",
    "update_rank",
]
