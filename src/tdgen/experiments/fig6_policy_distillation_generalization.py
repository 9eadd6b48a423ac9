"""Figure 6 (Section 6.2): policy distillation of PPO teachers generalises to new levels.

A PPO teacher is trained on a limited set of levels; fresh students minimise KL(pi_S || pi_T) with
an entropy bonus (Eq. 24, the teacher's entropy coefficient) on a buffer of transitions the
teacher collected on its training levels. Teacher and students are evaluated with their stochastic
policies on the training levels and on the full level distribution; the generalisation gap is
train minus test return (Eq. 6).

Quick scale: ProcGen's IMPALA CNN trains at ~10^2 frames/s on 2 CPU cores, so the quick scale uses
a JAX environment whose levels are seeds: Asterix-MinAtar under `tdgen.envs.levels`, where a level
fixes the whole random stream of an episode (spawn positions and timings), 10 training levels,
tested on the full distribution. (Breakout-MinAtar would be a poor choice: it draws one bit per
episode, so it has two distinct levels.)

Paper scale: the 16 ProcGen games (easy), and "the same PPO agents as in Figure 4 as teacher
agents": each teacher is Figure 4's paper run of that game and seed (`fig4.agent_config`: the
procgen preset, 10 training levels, 25M frames), named as Figure 4 names it, so Figure 4's runs
are reused when `tdgen reproduce` has trained them. Students collect ``buffer_size`` transitions of
the teacher on its training levels with envpool (`tdgen.distill.host_buffer`) and are evaluated on the
training levels and the full distribution. The paper leaves the buffer size and the student's
length open: 65,536 transitions (four of the teacher's 64 x 256 rollouts) and 50k updates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents import PPOConfig
from tdgen.distill import DistillConfig
from tdgen.envs.registry import PROCGEN_GAMES
from tdgen.experiments import fig4_actor_critic_update_rank as fig4
from tdgen.experiments.base import HELD, Claim, Experiment, Outcome
from tdgen.experiments.distillation import ensure_distill_run, ensure_teachers
from tdgen.experiments.verdicts import mean_test, share_verdict
from tdgen.policies import cached_evaluation


@dataclass(frozen=True)
class Config:
    """Figure 6 settings."""

    games: tuple[str, ...] = ("minatar/asterix",)
    num_levels: int = 10  # training levels (the paper: 10)
    teacher_frames: int = 491_520  # PPO teacher frames (60 iterations of 64 x 128)
    student_steps: int = 10_000  # KL student updates
    buffer_size: int = 65_536  # transitions the teacher collects on its training levels
    num_seeds: int = 2  # teachers per game; one student per teacher
    eval_envs: int = 32
    eval_steps: int = 2_000
    higher_share: float = 0.5  # students' test return above the teacher's on at least this share
    teacher_scale: str | None = None  # None: a PPO teacher of this experiment (minatar preset);
    # "paper" or "smoke": Figure 4's PPO run of that scale on the game (reused when present)

    @classmethod
    def quick(cls) -> Config:
        """Asterix-MinAtar with 10 seed-defined levels, 2 teachers x 490k frames, KL students."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (its games, levels and seeds) with Figure 4's smoke runs as teachers,
        a 1,024-transition buffer and 20-update students: the code paths, not a test (at 200
        updates, 0.8 s each on 2 CPU cores, the 64 students took ~3 h)."""
        return dataclasses.replace(cls.paper(), teacher_scale="smoke", student_steps=20,
                                   buffer_size=1_024, eval_steps=100)  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """The 16 ProcGen games with Figure 4's paper PPO runs as teachers (10 levels, 25M
        frames, 5 seeds), 65,536-transition buffers, 50k-update KL students (module docstring)."""
        return cls(games=tuple(f"procgen/{g}" for g in PROCGEN_GAMES), teacher_scale="paper",
                   student_steps=50_000, num_seeds=fig4.Config.paper().num_seeds)  # fmt: skip


def teacher_config(config: Config, game: str, seed: int) -> PPOConfig:
    """This experiment's teacher, or Figure 4's PPO run of ``config.teacher_scale``."""
    if config.teacher_scale:
        return fig4.agent_config(fig4_config(config), "ppo", game, seed)
    return PPOConfig.minatar(
        game, frames=config.teacher_frames, num_levels=config.num_levels, test_num_levels=0,
        eval_every=0, probe_every=0, checkpoint_every=0, seed=seed,
    )  # fmt: skip


def fig4_config(config: Config) -> fig4.Config:
    return fig4.Config.paper() if config.teacher_scale == "paper" else fig4.Config.smoke()


def teacher_name(config: Config, game: str, seed: int) -> str:
    if config.teacher_scale:
        return fig4.run_name("ppo", game, seed)
    return f"teacher_{game.replace('/', '-')}_s{seed}"


def student_config(config: Config, teacher: Path, game: str, seed: int) -> DistillConfig:
    ent_coef = teacher_config(config, game, seed).ent_coef  # Eq. 24: the teacher's
    return DistillConfig(
        teacher=str(teacher), objective="kl", steps=config.student_steps,
        ent_coef=ent_coef, buffer_size=config.buffer_size, num_envs=16,
        eval_every=0, probe_every=0, log_every=min(1_000, config.student_steps), seed=seed,
    )  # fmt: skip


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    games = {}
    for game in config.games:
        name = game.replace("/", "-")
        rows = {"teacher": [], "student": []}
        seeds = range(seed, seed + config.num_seeds)
        teachers = ensure_teachers(
            "ppo",
            [teacher_config(config, game, s) for s in seeds],
            out_dir,
            [teacher_name(config, game, s) for s in seeds],
            siblings=("fig4_actor_critic_update_rank",) if config.teacher_scale else (),
        )  # one group (MinAtar); Figure 4's runs when it has them
        for s, teacher_dir in zip(seeds, teachers, strict=True):
            student_dir = ensure_distill_run(student_config(config, teacher_dir, game, s),
                                             out_dir / "runs" / f"kl_{name}_s{s}")  # fmt: skip
            for who, run in (("teacher", teacher_dir), ("student", student_dir)):
                evaluation = cached_evaluation(run, seed=s, num_states=256,
                                               eval_envs=config.eval_envs,
                                               eval_steps=config.eval_steps)  # fmt: skip
                rows[who].append(evaluation.returns)
        games[game] = rows
    return {"games": games}


def summarise(measurements: dict[str, Any]) -> dict[str, Any]:
    table = {}
    for game, rows in measurements["games"].items():
        table[game] = {
            who: {k: float(np.mean([r[k] for r in returns]))
                  for k in ("train", "test", "generalization_gap")}
            for who, returns in rows.items()
        }  # fmt: skip
    return table


def _pairs(rows: dict[str, list], key: str) -> np.ndarray:
    """Student minus teacher of ``key`` per teacher/student pair (student s distils teacher s)."""
    return np.array([st[key] - te[key] for st, te in zip(rows["student"], rows["teacher"],
                                                           strict=True)], dtype=float)  # fmt: skip


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Per game, student minus teacher per teacher/student pair, mean with a 95% t interval over
    the pairs."""
    table = summarise(measurements)
    games = measurements["games"]
    pairs = "teacher/student pairs"  # each seed its own teacher, distilled into one student
    scope = (" Each pair is a teacher trained with its own seed and the student distilled from "
             "it, so n counts teachers: a claim about such teachers and their students in "
             "general, not about one teacher.")  # fmt: skip
    gap = {g: mean_test(_pairs(rows, "generalization_gap"), "<", 0.0, unit=pairs)
           for g, rows in games.items()}  # fmt: skip
    higher = {g: mean_test(_pairs(rows, "test"), ">", 0.0, unit=pairs) for g, rows in games.items()}
    verdict = share_verdict([c.verdict for c in higher.values()], config.higher_share)
    seeds = f"{config.num_seeds} teacher/student pairs"
    return [
        Claim.measured(
            "student_gap_no_larger_than_teacher",
            f"On every game the KL-distilled student's generalisation gap (train - test return, "
            f"Eq. 6) is smaller than its teacher's (student minus teacher per pair, mean over "
            f"{seeds}, 95% interval below 0)." + scope,
            gap,
            {"table": table},
        ),
        Claim(
            "student_test_return_higher",
            f"The student's test return (full level distribution) exceeds the teacher's (student "
            f"minus teacher per pair over {seeds}, 95% interval above 0) on at least "
            f"{config.higher_share:.0%} of games." + scope,
            verdict == HELD,
            {},
            higher,
            verdict,
        ),
    ]


def plot(measurements: dict[str, Any], out_dir: Path) -> list[str]:
    table = summarise(measurements)
    with plots.style():
        fig, axes = plots.figure(1, len(table), width=3.4, height=2.8)
        for ax, (game, rows) in zip(axes[0], table.items(), strict=True):
            bars = [("teacher\ntrain", rows["teacher"]["train"]),
                    ("teacher\ntest", rows["teacher"]["test"]),
                    ("student\ntrain", rows["student"]["train"]),
                    ("student\ntest", rows["student"]["test"])]  # fmt: skip
            colors = [plots.COLORS[0], plots.COLORS[0], plots.COLORS[3], plots.COLORS[3]]
            hatches = ["", "//", "", "//"]
            for i, ((_label, value), color, hatch) in enumerate(
                zip(bars, colors, hatches, strict=True)
            ):
                ax.bar(i, value, color=color, hatch=hatch, edgecolor="black", alpha=0.8)
            ax.set_xticks(range(4), [b[0] for b in bars], fontsize=7)
            ax.set_ylabel("mean episode return (stochastic policy)")
            ax.set_title(game)
        return [plots.save(fig, Path(out_dir) / "fig6_policy_distillation_generalization.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, out_dir)
    claims = check_claims(measurements, config)
    table = summarise(measurements)
    note = "; ".join(
        f"{game}: teacher train {r['teacher']['train']:.2f} / test {r['teacher']['test']:.2f}, "
        f"student train {r['student']['train']:.2f} / test {r['student']['test']:.2f}"
        for game, r in table.items()
    )
    return Outcome(claims, figures, {"table": table, "note": note + "."})


EXPERIMENT = Experiment(
    name="fig6_policy_distillation_generalization",
    paper_ref="Figure 6, Section 6.2",
    description="KL-distilled students of PPO teachers trained on 10 levels: train and test "
    "returns, generalisation gap",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "measure", "run"]
