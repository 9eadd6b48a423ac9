"""Figure 5 (Section 6.1): post-training distillation makes policies more robust and consistent.

A DQN teacher is trained online; fresh students of the same architecture are distilled from its
replay buffer by value distillation on all actions (Eq. 22, "q") and by behaviour cloning with an
entropy bonus (Eq. 23, lambda 1e-2, "bc"). Teacher and students are then measured on one set of
held-out states (states the teacher visits in fresh episodes, never in any buffer):

- performance: mean return of the epsilon-greedy policy (epsilon 0.01, Section 6.1);
- robustness: for Gaussian input noise of scale sigma (in the network's input units: MinAtar's 0/1
  planes), the fraction of states whose greedy action is unchanged (the measure the text
  describes) and the l1 distance between the softmax policies on the clean and the perturbed batch
  (Figure 5's axes; the raw softmax depends on the output scale, so the scale-free standardised l1
  of `tdgen.evaluate` is reported beside it);
- interpolation: how often the greedy action at (1 - w) o1 + w o2 equals the action at o1 or o2.

The robustness and interpolation claims use the action-agreement measures (scale-free); the l1
curves are in the figure and the evidence.

Quick scale: Breakout-MinAtar, a DQN teacher with the paper's base optimiser (Tandem's centred
RMSProp, schedules shortened as in Figure 3) for 200k frames; students with Adam 2.5e-4, batch 64,
20k updates, 3 seeds.

Paper scale (Appendix B.3): Pong, Boxing, Seaquest and Montezuma's Revenge (the four Atari games
the paper names) through envpool; Tandem DQN teachers (the Nature CNN, replay 1e6 in the
frame-once host ring) for 50M emulator frames (12.5M agent steps) with epsilon decaying to 0.1
("epsilon-greedy exploration with epsilon = 0.1"); students for 625k updates of batch 32, what
online DQN does over 10M frames (one update every 4 agent steps), with the teacher collecting into
its replay meanwhile (4 agent steps per update, its online ratio, at epsilon 0.1); BC's entropy
weight 0.1 (Eq. 57, not Eq. 23's 1e-2). Left open by the paper and chosen here: the students'
optimiser (Adam 2.5e-4), the teacher epsilon while collecting (its training epsilon), the number
of seeds (3), the noise scales (in [0, 1] pixel units), and the evaluation length (16 emulators x
10k agent steps per return).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tdgen import plots
from tdgen.agents import DQNConfig
from tdgen.distill import DistillConfig
from tdgen.evaluate import plot_interpolation, plot_robustness
from tdgen.experiments.base import Claim, Experiment, Outcome
from tdgen.experiments.distillation import (
    VALUE_TEACHER_SIBLINGS,
    ensure_distill_runs,
    ensure_teacher,
)
from tdgen.experiments.verdicts import mean_test
from tdgen.policies import cached_evaluation, load_policy, visited_states

STUDENTS = ("q", "bc")


@dataclass(frozen=True)
class Config:
    """Figure 5 settings."""

    games: tuple[str, ...] = ("minatar/breakout",)  # environments
    teacher_frames: int = 200_000  # DQN teacher's training frames
    teacher_epsilon_decay: int = 100_000  # frames over which the teacher's epsilon decays
    teacher_encoder: str | None = None  # teacher torso (None: the preset's, MinAtar or Nature CNN)
    teacher_learning_starts: int = 20_000  # frames before the teacher's first update
    teacher_probe_every: int = 100_000  # frames between the teacher's update-rank probes
    teacher_probe_k: int = 128  # transitions per update matrix of the teacher's probes
    teacher_log_every: int = 10_000  # frames between the teacher's metric lines
    student_steps: int = 20_000  # student updates
    student_lr: float = 2.5e-4  # Adam
    bc_entropy: float = 0.01  # Eq. 23's lambda
    num_seeds: int = 3  # students per objective; seeds are seed, seed + 1, ...
    scales: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5)  # noise standard deviations
    weights: tuple[float, ...] = (0.25, 0.5, 0.75)  # interpolation weights
    num_states: int = 2_000  # held-out states
    eval_envs: int = 16
    eval_steps: int = 2_000
    bc_return_fraction: float = 0.8  # "BC comes close": return >= this share of the teacher's
    teacher_target_period: int | None = 1_000  # frames; None: the Tandem preset's (120k)
    teacher_epsilon_end: float | None = None  # None: the Tandem preset's (0.01)
    teacher_buffer_size: int | None = None  # None: the preset's (100k MinAtar, 1e6 Atari)
    student_batch_size: int = 64
    student_collect: bool = False  # the teacher collects while students train (Appendix B.3)
    student_collect_every: int = 1  # updates per vectorised teacher step when collecting
    collect_epsilon: float = 0.01  # the teacher's epsilon while collecting

    @classmethod
    def quick(cls) -> Config:
        """Breakout-MinAtar: 200k-frame teacher, q and bc students, 3 seeds x 20k updates."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (its Atari games, networks, collection and seeds) with 2,048-frame
        teachers on a 2,048-transition replay, 200-update students and 256 held-out states: the
        code paths, not a test of the claims."""
        return dataclasses.replace(
            cls.paper(), teacher_frames=2_048, teacher_epsilon_decay=1_024,
            teacher_learning_starts=256, teacher_probe_every=1_024, teacher_probe_k=16,
            teacher_log_every=512,
            teacher_target_period=512, teacher_buffer_size=2_048, student_steps=200,
            num_states=256, eval_steps=100,
        )  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """Appendix B.3 (see the module docstring): four Atari games, Tandem teachers for 50M
        emulator frames at epsilon 0.1, 5 seeds x 625k-update students, the teacher collecting."""
        return cls(
            games=("atari/Pong", "atari/Boxing", "atari/Seaquest", "atari/MontezumaRevenge"),
            teacher_frames=12_500_000, teacher_epsilon_decay=1_000_000, teacher_encoder=None,
            teacher_learning_starts=20_000, teacher_probe_every=1_000_000,
            teacher_log_every=100_000, teacher_target_period=None, teacher_epsilon_end=0.1,
            student_steps=625_000, student_batch_size=32, bc_entropy=0.1, num_seeds=5,
            eval_steps=10_000, student_collect=True, student_collect_every=1,
            collect_epsilon=0.1,
        )  # fmt: skip


def teacher_config(config: Config, game: str, seed: int) -> DQNConfig:
    """Tandem DQN (centred RMSProp); quick: Figure 3's shortened schedules. The run keeps its
    final replay, which the students distil from."""
    overrides = dict(frames=config.teacher_frames, learning_starts=config.teacher_learning_starts,
                     epsilon_decay_frames=config.teacher_epsilon_decay,
                     probe_every=config.teacher_probe_every, probe_k=config.teacher_probe_k,
                     log_every=config.teacher_log_every, checkpoint_every=0, keep_checkpoints=1,
                     keep_replay=True, seed=seed)  # fmt: skip
    optional = {"encoder": config.teacher_encoder, "target_period": config.teacher_target_period,
                "epsilon_end": config.teacher_epsilon_end,
                "buffer_size": config.teacher_buffer_size}  # fmt: skip
    overrides.update({k: v for k, v in optional.items() if v is not None})
    return DQNConfig.tandem(game, **overrides)


def student_config(config: Config, teacher: Path, objective: str, seed: int) -> DistillConfig:
    return DistillConfig(
        teacher=str(teacher), objective=objective, steps=config.student_steps,
        batch_size=config.student_batch_size, lr=config.student_lr, ent_coef=config.bc_entropy,
        collect=config.student_collect, collect_every=config.student_collect_every,
        teacher_epsilon=config.collect_epsilon, eval_every=0, probe_every=0,
        log_every=min(1_000, config.student_steps), seed=seed,
    )  # fmt: skip


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """Train (or reuse) teachers and students; evaluate all on the teacher's held-out states."""
    out_dir = Path(out_dir)
    games = {}
    for game in config.games:
        name = game.replace("/", "-")
        teacher_cfg = teacher_config(config, game, seed)
        teacher_dir = ensure_teacher("dqn", teacher_cfg, out_dir, f"teacher_{name}",
                                     VALUE_TEACHER_SIBLINGS)  # fmt: skip
        teacher = load_policy(teacher_dir)
        states = visited_states(teacher, config.num_states, jax.random.PRNGKey(seed + 7))
        kwargs = dict(seed=seed, scales=config.scales, weights=config.weights,
                      eval_envs=config.eval_envs, eval_steps=config.eval_steps, states=states)  # fmt: skip
        results = {"teacher": [cached_evaluation(teacher_dir, policy=teacher, **kwargs)]}
        for objective in STUDENTS:
            seeds = range(seed, seed + config.num_seeds)
            runs = ensure_distill_runs(  # one seed group
                [student_config(config, teacher_dir, objective, s) for s in seeds],
                [out_dir / "runs" / f"{objective}_{name}_s{s}" for s in seeds],
            )
            results[objective] = [cached_evaluation(run, **kwargs) for run in runs]
        games[game] = results
    return {"games": games}


def summarise(measurements: dict[str, Any]) -> dict[str, Any]:
    """Per game and agent: mean over seeds of return, agreement and l1s over sigma > 0,
    interpolation consistency over weights."""
    table = {}
    for game, results in measurements["games"].items():
        table[game] = {}
        for agent, evals in results.items():
            scales = np.asarray(evals[0].robustness.scales)
            noisy = scales > 0
            table[game][agent] = {
                "return": float(np.mean([e.returns["train"] for e in evals])),
                "action_agreement": float(np.mean(
                    [np.asarray(e.robustness.action_agreement)[noisy] for e in evals])),
                "policy_l1": float(np.mean(
                    [np.asarray(e.robustness.policy_l1)[noisy] for e in evals])),
                "standardized_l1": float(np.mean(
                    [np.asarray(e.robustness.standardized_l1)[noisy] for e in evals])),
                "interpolation_either": float(np.mean(
                    [np.asarray(e.interpolation.either) for e in evals])),
            }  # fmt: skip
    return table


def _per_seed(evals, field: str) -> np.ndarray:
    """Per seed, the values the rule averages: agreement at every sigma > 0 ("action_agreement"),
    the interpolation score at every weight ("either"), or the return: [seeds, points]."""
    if field == "return":
        return np.array([[e.returns["train"]] for e in evals], dtype=float)
    if field == "either":
        return np.array([np.asarray(e.interpolation.either, float) for e in evals])
    scales = np.asarray(evals[0].robustness.scales)
    return np.array([np.asarray(e.robustness.action_agreement, float)[scales > 0] for e in evals])


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Section 6.1's claims on every game: student minus teacher, per student seed and per point
    the rule averages (sigma > 0, interpolation weight), the teacher's value at the same point
    subtracted (one teacher run); mean with a 95% t interval over student seeds."""
    table = summarise(measurements)
    robust, consistent, close = {}, {}, {}
    unit = "students of one teacher"  # every student of a game distils its one teacher
    scope = (" Each game has one teacher (this seed's), so n counts students of that teacher: a "
             "claim about this teacher's students, not about DQN teachers in general.")  # fmt: skip
    for game, results in measurements["games"].items():
        teacher = results["teacher"]
        for student in STUDENTS:
            key = f"{student}/{game}"
            for field, checks in (("action_agreement", robust), ("either", consistent)):
                gap = _per_seed(results[student], field) - _per_seed(teacher, field).mean(axis=0)
                checks[key] = mean_test(gap, ">", 0.0, unit=unit)
        bc, ret = _per_seed(results["bc"], "return"), _per_seed(teacher, "return").mean()
        close[game] = mean_test(bc - config.bc_return_fraction * ret, ">", 0.0, unit=unit)
    sigmas = ", ".join(f"{s:g}" for s in config.scales if s > 0)
    by_student = {s: {k: v for k, v in robust.items() if k.startswith(f"{s}/")} for s in STUDENTS}
    return [
        Claim.measured(
            "value_distilled_students_more_robust",
            f"On every game the value-distilled (Eq. 22) students keep their greedy action under "
            f"Gaussian input noise (sigma {sigmas}; student minus teacher agreement, mean over "
            f"sigma and {config.num_seeds} seeds, 95% interval) more often than the teacher."
            + scope,
            by_student["q"],
            {"table": table},
        ),
        Claim.measured(
            "bc_students_more_robust",
            "On every game the behaviour-cloned (Eq. 23) students keep their greedy action under "
            "the same noise more often than the teacher." + scope,
            by_student["bc"],
        ),
        Claim.measured(
            "students_more_consistent_under_interpolation",
            "On every game both kinds of student take the action of one endpoint at convex "
            f"combinations of two held-out states (w {', '.join(f'{w:g}' for w in config.weights)};"
            " student minus teacher, mean over weights and seeds) more often than the teacher."
            + scope,
            consistent,
        ),
        Claim.measured(
            "bc_close_to_teacher_return",
            f"On every game the BC students' epsilon-greedy return (epsilon 0.01) is at least "
            f"{config.bc_return_fraction:g} of the teacher's (BC return minus that fraction of "
            "the teacher's, per BC seed, above 0)." + scope,
            close,
        ),
    ]


def plot(measurements: dict[str, Any], out_dir: Path) -> list[str]:
    names = []
    with plots.style():
        for game, results in measurements["games"].items():
            label = {
                "teacher": "teacher (DQN)",
                "q": "value distillation",
                "bc": "behaviour cloning",
            }
            rob = {label[a]: [e.robustness for e in evals] for a, evals in results.items()}
            inter = {label[a]: [e.interpolation for e in evals] for a, evals in results.items()}
            stem = f"fig5_{game.replace('/', '-')}"
            fig = plot_robustness(rob, xlabel="noise scale sigma (input units)",
                                  title=f"Robustness, {game}")  # fmt: skip
            names.append(plots.save(fig, Path(out_dir) / f"{stem}_robustness.png"))
            fig = plot_interpolation(inter, title=f"Interpolation, {game}")
            names.append(plots.save(fig, Path(out_dir) / f"{stem}_interpolation.png"))
    return names


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, out_dir)
    claims = check_claims(measurements, config)
    table = summarise(measurements)
    note = "; ".join(
        f"{game}: " + ", ".join(
            f"{agent} return {row['return']:.2f}, agreement {row['action_agreement']:.3f}, "
            f"std-l1 {row['standardized_l1']:.3f}, interpolation {row['interpolation_either']:.3f}"
            for agent, row in rows.items()
        )
        for game, rows in table.items()
    )  # fmt: skip
    summary = {"table": table, "note": "Means over noisy scales, weights and seeds: " + note + "."}
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig5_distillation_robustness",
    paper_ref="Figure 5, Section 6.1",
    description="Value-distilled and behaviour-cloned students against their DQN teacher: "
    "return, robustness to input noise, consistency under interpolation",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "measure", "run"]
