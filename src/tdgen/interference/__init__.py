"""Interference between updates: the update matrix and update rank of Section 5.1 / Appendix B.1,
and the learning-dynamics measures researchers log next to it (dormant units, feature rank,
norms, gradient noise, the loss NTK, policy churn, curvature).

Generic over any JAX network (apply_fn), loss on one transition and optax optimiser; imports
nothing else of tdgen. The PyTorch versions live in `tdgen.interference.torch` (needs torch).
The names below load on first use (PEP 562), so ``import tdgen.interference.torch`` and the
plain-data modules (``table``, ``keys``) do not load JAX.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from tdgen._lazy import lazy_attributes

_SOURCES = {  # module (under tdgen.interference) -> the public names it defines
    "activations": ("capture_activations",),
    "churn": ("greedy_churn", "policy_churn", "policy_churn_tv"),
    "curvature": ("hessian_max_eigenvalue",),
    "gradients": ("distance_from_init", "gradient_noise", "gradient_norm", "loss_ntk",
                  "ntk_statistics", "parameter_norms", "per_sample_gradients"),
    "keys": ("CENTERS", "update_rank_key"),
    "plot": ("plot_singular_values", "plot_update_matrix"),
    "probe": ("MEASURES", "Probe"),
    "rank": ("effective_dimension", "feature_rank", "gradient_gram", "identity_distance",
             "singular_values", "srank", "stable_rank", "update_rank"),
    "reductions": ("REDUCTIONS", "Reduction"),
    "units": ("active_units", "dormant_units", "feature_ranks", "feature_stable_ranks",
              "feature_statistics", "unit_scores"),
    "update_matrix": ("make_update_matrix", "update_matrix"),
}  # fmt: skip
_LAZY = {name: f"{__name__}.{module}" for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)


class _Package(types.ModuleType):
    """`update_matrix` names both a submodule and its function; importing the submodule sets
    the package attribute to the module, so the attribute is resolved here, always the function
    (as `from tdgen.interference import update_matrix` promises)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "update_matrix":
            return importlib.import_module(f"{__name__}.update_matrix").update_matrix
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package
