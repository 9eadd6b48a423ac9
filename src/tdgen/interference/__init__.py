"""Interference between updates: the update matrix and update rank of Section 5.1 / Appendix B.1,
and the learning-dynamics measures researchers log next to it (dormant units, feature rank,
norms, gradient noise, the loss NTK, policy churn).

Generic over any JAX network (apply_fn), loss on one transition and optax optimiser; imports
nothing else of tdgen. The PyTorch versions live in `tdgen.interference.torch` (needs torch).
"""

from tdgen.interference.activations import capture_activations
from tdgen.interference.churn import greedy_churn, policy_churn, policy_churn_tv
from tdgen.interference.curvature import hessian_max_eigenvalue
from tdgen.interference.gradients import (
    distance_from_init,
    gradient_noise,
    gradient_norm,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
    per_sample_gradients,
)
from tdgen.interference.keys import CENTERS, update_rank_key
from tdgen.interference.plot import plot_singular_values, plot_update_matrix
from tdgen.interference.probe import MEASURES, Probe
from tdgen.interference.rank import (
    effective_dimension,
    feature_rank,
    gradient_gram,
    identity_distance,
    singular_values,
    srank,
    stable_rank,
    update_rank,
)
from tdgen.interference.reductions import REDUCTIONS, Reduction
from tdgen.interference.units import (
    active_units,
    dormant_units,
    feature_ranks,
    feature_stable_ranks,
    feature_statistics,
    unit_scores,
)
from tdgen.interference.update_matrix import make_update_matrix, update_matrix

__all__ = [
    "CENTERS",
    "MEASURES",
    "Probe",
    "REDUCTIONS",
    "Reduction",
    "active_units",
    "capture_activations",
    "distance_from_init",
    "dormant_units",
    "effective_dimension",
    "feature_rank",
    "feature_ranks",
    "feature_stable_ranks",
    "feature_statistics",
    "gradient_gram",
    "gradient_noise",
    "gradient_norm",
    "greedy_churn",
    "hessian_max_eigenvalue",
    "identity_distance",
    "loss_ntk",
    "make_update_matrix",
    "ntk_statistics",
    "parameter_norms",
    "per_sample_gradients",
    "plot_singular_values",
    "plot_update_matrix",
    "policy_churn",
    "policy_churn_tv",
    "singular_values",
    "srank",
    "stable_rank",
    "unit_scores",
    "update_matrix",
    "update_rank",
    "update_rank_key",
]
