"""Plasticity interventions, each one module of one of four kinds (`tdgen.agents.interventions.base`):
network options, loss terms, optimiser wrappers and periodic events. ``INTERVENTIONS`` maps a name
to its class; each class's fields are its settings, with defaults from its source."""

from tdgen.agents.interventions.base import KINDS, Context, Intervention
from tdgen.agents.interventions.infer import InFeR
from tdgen.agents.interventions.l2_init import L2Init
from tdgen.agents.interventions.normalize_project import NormalizeProject
from tdgen.agents.interventions.parseval import Parseval
from tdgen.agents.interventions.plasticity_injection import PlasticityInjection
from tdgen.agents.interventions.redo import ReDo
from tdgen.agents.interventions.reset import Reset
from tdgen.agents.interventions.shrink_perturb import ShrinkPerturb
from tdgen.agents.interventions.trac import TRAC
from tdgen.agents.interventions.weight_decay import WeightDecay

INTERVENTIONS: dict[str, type[Intervention]] = {
    cls.name: cls
    for cls in (ReDo, Reset, ShrinkPerturb, PlasticityInjection, NormalizeProject, L2Init,
                Parseval, InFeR, WeightDecay, TRAC)
}  # fmt: skip

__all__ = ["INTERVENTIONS", "KINDS", "Context", "InFeR", "Intervention", "L2Init",
           "NormalizeProject", "Parseval", "PlasticityInjection", "ReDo", "Reset",
           "ShrinkPerturb", "TRAC", "WeightDecay"]  # fmt: skip
