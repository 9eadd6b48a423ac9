"""Paper figures as runnable experiments; `get_experiment(name)` loads one by name.

Modules are imported lazily so that `tdgen list` stays instant and an experiment's heavy
dependencies load only when it runs; `experiment_kind(name)` reads an experiment's declared kind
without importing it.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import sys

from tdgen.errors import InputError
from tdgen.experiments.base import (
    KINDS,
    Claim,
    Experiment,
    Outcome,
    PlannedRun,
    TheoryConfig,
)

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
        "interventions_vs_interference",
    )
}
# Registered (listed, runnable by name) but left out of `tdgen reproduce` with no names: beyond
# the paper and too long for `make reproduce`'s budget.
OPT_IN: tuple[str, ...] = ("interventions_vs_interference",)


def experiment_names() -> list[str]:
    """The registered experiments in registry order (`tdgen list`); `tdgen reproduce` with no
    names runs `default_experiment_names`, in this order."""
    return list(REGISTRY)


def default_experiment_names() -> list[str]:
    """The experiments `tdgen reproduce` runs when none is named: all but the `OPT_IN` ones."""
    return [name for name in REGISTRY if name not in OPT_IN]


def _module(name: str) -> str:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f": did you mean {close[0]!r}?" if close else f"; known: {', '.join(REGISTRY)}"
        raise InputError(f"unknown experiment {name!r}{hint}")
    return REGISTRY[name]


def get_experiment(name: str) -> Experiment:
    """The experiment called `name`; a ValueError suggests the nearest name on a typo."""
    return importlib.import_module(_module(name)).EXPERIMENT


def _declared_kind(source: str) -> str | None:
    """The literal ``kind=`` of ``EXPERIMENT = Experiment(...)`` in a module's source, if any."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "EXPERIMENT" for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            for keyword in node.value.keywords:
                if keyword.arg == "kind" and isinstance(keyword.value, ast.Constant):
                    return keyword.value.value
    return None


def experiment_kind(name: str) -> str:
    """The kind, "theory" or "deep_rl", that experiment `name` declares on its `Experiment(...)`.

    Read from the module's source while the module is not imported, so that asking (a test
    conftest does, before collection) loads neither JAX nor the agents; imported otherwise.
    """
    module = _module(name)
    if module not in sys.modules:
        spec = importlib.util.find_spec(module)
        source = spec.loader.get_source(module) if spec and spec.loader else None
        kind = _declared_kind(source) if source else None
        if kind in KINDS:
            return kind
    return get_experiment(name).kind


def experiments_of(kind: str) -> list[str]:
    """The experiments of `kind` ("theory" or "deep_rl"), in registry order."""
    if kind not in KINDS:
        raise InputError(f"unknown experiment kind {kind!r}: choose one of {', '.join(KINDS)}")
    return [name for name in REGISTRY if experiment_kind(name) == kind]


__all__ = ["KINDS", "OPT_IN", "Claim", "Experiment", "Outcome", "PlannedRun", "TheoryConfig",
           "default_experiment_names", "experiment_kind", "experiment_names", "experiments_of",
           "get_experiment"]  # fmt: skip
