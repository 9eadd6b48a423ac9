"""Pure losses on one transition (value, distributional) or on batched arrays (policy), shared by
the agents, distillation and the probes; callers batch per-transition losses with `jax.vmap`."""

from tdgen.losses.distributional import (
    categorical_projection,
    categorical_q_learning_loss,
    expected_values,
    quantile_huber_loss,
    quantile_midpoints,
    quantile_q_learning_loss,
)
from tdgen.losses.policy import (
    categorical_entropy,
    categorical_kl,
    clipped_surrogate,
    clipped_value_loss,
    gae,
    log_prob,
)
from tdgen.losses.value import LOSSES, double_q_learning_loss, huber, mse, q_learning_loss

__all__ = [
    "LOSSES",
    "categorical_entropy",
    "categorical_kl",
    "categorical_projection",
    "categorical_q_learning_loss",
    "clipped_surrogate",
    "clipped_value_loss",
    "double_q_learning_loss",
    "expected_values",
    "gae",
    "huber",
    "log_prob",
    "mse",
    "q_learning_loss",
    "quantile_huber_loss",
    "quantile_midpoints",
    "quantile_q_learning_loss",
]
