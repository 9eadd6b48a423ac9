"""Interference between updates: the update matrix and update rank of Section 5.1 / Appendix B.1.

Generic over any JAX network (apply_fn), loss on one transition and optax optimiser; imports
nothing else of tdgen. The PyTorch adapter lives in `tdgen.interference.torch` (needs torch).
"""

from tdgen.interference.plot import plot_singular_values, plot_update_matrix
from tdgen.interference.rank import (
    effective_dimension,
    gradient_gram,
    identity_distance,
    singular_values,
    srank,
    update_rank,
)
from tdgen.interference.reductions import REDUCTIONS, Reduction
from tdgen.interference.update_matrix import make_update_matrix, update_matrix

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "effective_dimension",
    "gradient_gram",
    "identity_distance",
    "make_update_matrix",
    "plot_singular_values",
    "plot_update_matrix",
    "singular_values",
    "srank",
    "update_matrix",
    "update_rank",
]
