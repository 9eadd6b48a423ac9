"""Plasticity interventions, each one module of one of four kinds (`tdgen.agents.interventions.base`):
network options, loss terms, optimiser wrappers and periodic events. ``INTERVENTIONS`` maps a name
to its class; each class's fields are its settings, with defaults from its source."""

from collections.abc import Sequence

from tdgen.agents.interventions.base import KINDS, Context, Intervention
from tdgen.agents.interventions.infer import InFeR
from tdgen.agents.interventions.l2_init import L2Init
from tdgen.agents.interventions.network_options import CReLU, FourierFeatures, LayerNorm
from tdgen.agents.interventions.normalize_project import NormalizeProject
from tdgen.agents.interventions.parseval import Parseval
from tdgen.agents.interventions.plasticity_injection import PlasticityInjection
from tdgen.agents.interventions.redo import ReDo
from tdgen.agents.interventions.reset import Reset
from tdgen.agents.interventions.shrink_perturb import ShrinkPerturb
from tdgen.agents.interventions.spec import check_combination, parse_one
from tdgen.agents.interventions.trac import TRAC
from tdgen.agents.interventions.weight_decay import WeightDecay

INTERVENTIONS: dict[str, type[Intervention]] = {
    cls.name: cls
    for cls in (LayerNorm, CReLU, FourierFeatures, NormalizeProject, L2Init, Parseval, InFeR,
                WeightDecay, TRAC, ReDo, Reset, ShrinkPerturb, PlasticityInjection)
}  # fmt: skip


def parse_interventions(specs: Sequence[str], lr: float | None = None) -> tuple[Intervention, ...]:
    """The interventions a config's ``interventions`` strings name (`spec`: "name" or
    "name:field=value,..."), refused in one line when unknown, badly set or incompatible; with
    ``lr``, each as it applies to an agent training at that learning rate
    (`Intervention.at_learning_rate`)."""
    interventions = tuple(parse_one(spec, INTERVENTIONS) for spec in specs)
    check_combination(interventions)
    if lr is not None:
        interventions = tuple(i.at_learning_rate(lr) for i in interventions)
    return interventions


__all__ = ["INTERVENTIONS", "KINDS", "CReLU", "Context", "FourierFeatures", "InFeR",
           "Intervention", "L2Init", "LayerNorm", "NormalizeProject", "Parseval", "PlasticityInjection", "ReDo", "Reset",
           "ShrinkPerturb", "TRAC", "WeightDecay", "parse_interventions"]  # fmt: skip
