"""Post-training distillation (Section 6, Appendix D.1): a fresh student on a frozen teacher's data.

`distill(DistillConfig(teacher="runs/dqn-breakout", objective="bc"), out)` trains a student in a run
directory with update-rank probes and evaluations; `resume_distill(out)` continues it.
"""

from tdgen.distill.objectives import OBJECTIVES, Objective
from tdgen.distill.teacher import Teacher, load_teacher
from tdgen.distill.trainer import (
    DistillConfig,
    Distiller,
    DistillState,
    distill,
    make_distill_probe,
    resume_distill,
)

__all__ = [
    "OBJECTIVES",
    "DistillConfig",
    "DistillState",
    "Distiller",
    "Objective",
    "Teacher",
    "distill",
    "load_teacher",
    "make_distill_probe",
    "resume_distill",
]
