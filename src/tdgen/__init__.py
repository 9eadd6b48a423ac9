"""tdgen: learning dynamics and generalisation in reinforcement learning (Lyle et al., ICML 2022).

The instrument is at the top level: ``tdgen.update_matrix``, ``tdgen.update_rank``,
``tdgen.Probe`` and the measures of ``tdgen.interference`` (the table of measures:
``tdgen.MEASURES``). They load on first use, so ``import tdgen`` stays fast and loads neither
JAX, torch nor envpool until one of them is asked for.
"""

from __future__ import annotations

from tdgen._lazy import lazy_attributes

__version__ = "0.1.0"

# The instrument, from tdgen.interference (loaded on first access, PEP 562)
_INSTRUMENT = (
    "update_matrix", "make_update_matrix", "update_rank", "Probe", "MEASURES", "srank",
    "stable_rank", "feature_rank", "effective_dimension", "dormant_units", "active_units",
    "feature_statistics", "feature_stable_ranks", "feature_ranks", "parameter_norms",
    "distance_from_init", "gradient_norm", "gradient_noise", "loss_ntk", "policy_churn",
    "hessian_max_eigenvalue", "capture_activations", "update_rank_key",
)  # fmt: skip
_LAZY = dict.fromkeys(_INSTRUMENT, "tdgen.interference")  # name -> the module defining it

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
