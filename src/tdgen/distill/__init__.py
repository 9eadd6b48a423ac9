"""Post-training distillation (Section 6, Appendix D.1): a fresh student on a frozen teacher's data.

`distill(DistillConfig(teacher="runs/dqn-breakout", objective="bc"), out)` trains a student in a run
directory with update-rank probes and evaluations; `resume_distill(out)` continues it;
`ensure_distill_runs(configs, dirs)` trains students that differ only by seed as one group.
"""

from tdgen.distill.launch import DISTILL, distill, ensure_distill_runs, resume_distill
from tdgen.distill.objectives import OBJECTIVES, Objective
from tdgen.distill.teacher import Teacher, load_teacher
from tdgen.distill.trainer import DistillConfig, Distiller, DistillState, make_distill_probe

__all__ = [
    "DISTILL",
    "OBJECTIVES",
    "DistillConfig",
    "DistillState",
    "Distiller",
    "Objective",
    "Teacher",
    "distill",
    "ensure_distill_runs",
    "load_teacher",
    "make_distill_probe",
    "resume_distill",
]
