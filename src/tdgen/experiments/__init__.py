"""Paper figures as runnable experiments; `get_experiment(name)` loads one by name.

Modules are imported lazily so that `tdgen list` stays instant and an experiment's heavy
dependencies load only when it runs.
"""

from __future__ import annotations

import difflib
import importlib

from tdgen.experiments.base import Claim, Experiment, Outcome

# name -> module defining `EXPERIMENT`, in the order `tdgen reproduce` runs them.
REGISTRY: dict[str, str] = {
    name: f"tdgen.experiments.{name}"
    for name in (
        "fig1_mountaincar_spectrum",
        "thm41_td_error_bound",
        "fig2_high_frequency_pretraining",
        "obs42_second_order_dynamics",
        "fig3_value_update_rank",
        "fig12_update_matrices",
        "fig8_value_fourier",
        "fig4_actor_critic_update_rank",
        "dyn_metrics_vs_update_rank",
        "fig5_distillation_robustness",
        "fig6_policy_distillation_generalization",
        "fig11_value_distillation_objectives",
        "fig9_kernel_td",
        "fig10_smooth_kernel_regression",
    )
}


def experiment_names() -> list[str]:
    return list(REGISTRY)


def get_experiment(name: str) -> Experiment:
    """The experiment called `name`; a ValueError suggests the nearest name on a typo."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f": did you mean {close[0]!r}?" if close else f"; known: {', '.join(REGISTRY)}"
        raise ValueError(f"unknown experiment {name!r}{hint}")
    module = importlib.import_module(REGISTRY[name])
    return module.EXPERIMENT


__all__ = ["Claim", "Experiment", "Outcome", "experiment_names", "get_experiment"]
