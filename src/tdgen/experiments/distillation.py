"""What the distillation experiments (Figures 5, 6, 11) share: teachers and students as run dirs.

A teacher is an ordinary agent run and a student an ordinary distillation run, both reused when
complete, resumed when not, and refused when the directory holds a different config
(`tdgen.agents.ensure_runs`, as Figure 3's runs); runs that differ only by seed train as one group. Figure 5 and Figure 11 distil the same kind of DQN teacher: each
trains its own in ``out_dir/runs/teacher_<game>`` unless the sibling experiment already holds one with the
same config, which is then reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdgen.agents import ensure_runs
from tdgen.distill import DistillConfig, ensure_distill_runs
from tdgen.runs import RunDir
from tdgen.runs.reuse import is_complete

VALUE_TEACHER_SIBLINGS = ("fig5_distillation_robustness", "fig11_value_distillation_objectives")


def ensure_distill_run(config: DistillConfig, run_dir: Path) -> Path:
    """Distil into ``run_dir``, resume it if incomplete, reuse it if complete (same config only);
    students that differ only by seed: `tdgen.distill.ensure_distill_runs`, one group."""
    return ensure_distill_runs([config], [run_dir])[0]


def ensure_teacher(agent: str, config: Any, out_dir: Path, name: str, siblings=()) -> Path:
    """The teacher run ``out_dir/runs/name``, or a sibling experiment's complete run of the same
    name and config (``out_dir/../SIBLING/runs/name``)."""
    return ensure_teachers(agent, [config], out_dir, [name], siblings)[0]


def ensure_teachers(
    agent: str, configs: Sequence[Any], out_dir: Path, names: Sequence[str], siblings=()
) -> list[Path]:
    """`ensure_teacher` for several teachers (configs differing only by seed): those no sibling
    has are trained together as one seed group (`tdgen.agents.ensure_runs`)."""
    out_dir = Path(out_dir)
    found: dict[int, Path] = {}
    for i, (config, name) in enumerate(zip(configs, names, strict=True)):
        own = out_dir / "runs" / name
        for sibling in siblings:
            candidate = out_dir.parent / sibling / "runs" / name
            if candidate.resolve() == own.resolve() or not (candidate / "config.json").exists():
                continue
            stored = RunDir.open(candidate)
            same = stored.kind == agent and stored.config == config.to_dict()
            if same and is_complete(candidate, config.frames):
                found[i] = candidate
                break
    todo = [i for i in range(len(configs)) if i not in found]
    trained = ensure_runs(agent, [configs[i] for i in todo],
                          [out_dir / "runs" / names[i] for i in todo])  # fmt: skip
    found.update(zip(todo, trained, strict=True))
    return [found[i] for i in range(len(configs))]


__all__ = ["VALUE_TEACHER_SIBLINGS", "ensure_distill_run", "ensure_distill_runs", "ensure_teacher",
           "ensure_teachers"]  # fmt: skip
