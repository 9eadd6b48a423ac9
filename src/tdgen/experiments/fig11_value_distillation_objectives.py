"""Figure 11 (Appendix D.1): update rank and return over distillation for five value objectives.

Fresh students are trained on a DQN teacher's replay buffer with q-regression (all actions, Eq. 22),
qa-regression (the buffer's action only), advantage regression (Q minus its mean over actions),
quantile-regression Q-learning and double Q-learning (offline RL on the same data). Each student's
update rank is probed every ``probe_every`` updates exactly as during training (k transitions of the
buffer, one optimiser step on one transition's loss, max over actions, eps 0.1) and compared with
the teacher's update rank from its own last probe (same k). The paper: every objective starts well
below the teacher and rises; advantage regression stays lowest; qr tends to be highest.

Two reductions. The probe reads a student through max_a of its raw outputs (the paper's default,
Appendix B.1). An advantage-regression loss constrains only q - mean_a q, so the per-state offset
mean_a q is never fitted and the max reads it. Which outputs the probe reads is a setting the
paper leaves open, so "advantage regression lowest" is checked through both: the raw outputs
(the logged probes, last ``late_probes``) and the outputs the loss constrains, max_a (q(x, a) -
mean_b q(x, b)), recomputed from each student's final checkpoint on the same transitions as its
last logged probe (`centred_ranks`), each with its verdict.

Quick scale: the Breakout-MinAtar teacher of Figure 5 (reused when that experiment ran first with the
same settings, trained here otherwise), 10k updates per objective, a probe every 2.5k, 3 seeds (one
seed group per objective).

Paper scale: Figure 5's Atari Pong teacher (Tandem DQN, 50M emulator frames; reused from Figure
5), students as Figure 5's (625k updates of batch 32, the teacher collecting), a probe every 62.5k
updates, 5 seeds. Appendix D.1 names neither its games nor its lengths: Pong (the first of Figure
5's games) and Figure 5's student length are our choice; another of its teachers: the preset with
``game`` replaced, passed as ``run_experiment(..., config=...)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents.train import start_state
from tdgen.agents.value_based import frame_replay
from tdgen.agents.value_based import replay as replay_lib
from tdgen.distill import DistillConfig, host_replay
from tdgen.distill.trainer import Distiller
from tdgen.errors import InputError, read_npz
from tdgen.experiments import fig5_distillation_robustness as fig5
from tdgen.experiments.base import Claim, Experiment, Outcome
from tdgen.experiments.distillation import (
    VALUE_TEACHER_SIBLINGS,
    ensure_distill_runs,
    ensure_teacher,
)
from tdgen.experiments.verdicts import mean_test
from tdgen.interference import update_matrix, update_rank
from tdgen.runs import RunDir, find_checkpoint
from tdgen.runs.checkpoint import require_replay
from tdgen.runs.metrics import read_metrics

OBJECTIVES = ("q", "qa", "advantage", "qr", "double_q")
RANK = "interference/update_rank"


@dataclass(frozen=True)
class Config:
    """Figure 11 settings; the teacher's are Figure 5's."""

    game: str = "minatar/breakout"
    teacher: fig5.Config = fig5.Config()  # teacher settings (frames, schedules, encoder)
    steps: int = 10_000  # student updates
    lr: float = 2.5e-4  # Adam
    probe_every: int = 2_500  # updates between probes
    probe_k: int = 128  # transitions per update matrix (the teacher's probes use the same k)
    probe_draws: int = 2
    eval_every: int = 5_000  # updates between return evaluations
    eval_steps: int = 1_000
    num_seeds: int = 1  # students per objective (one seed group); seeds are seed, seed + 1, ...
    late_probes: int = 2  # "stays lowest": mean over the last late_probes probes

    def __post_init__(self) -> None:
        if self.steps // self.probe_every < self.late_probes:
            raise InputError(
                f"steps {self.steps} hold {self.steps // self.probe_every} probes, fewer than "
                f"late_probes ({self.late_probes})"
            )

    @classmethod
    def quick(cls) -> Config:
        """Breakout-MinAtar, Figure 5's teacher, 3 seeds x 10k updates per objective, probes
        every 2.5k."""
        return cls(num_seeds=3)

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (its objectives and seeds) on Figure 5's smoke teacher, 60 updates
        with a probe (k = 16) every 20: the code paths, not a test of the claims."""
        return dataclasses.replace(cls.paper(), teacher=fig5.Config.smoke(), steps=60,
                                   probe_every=20, probe_k=16, probe_draws=1, eval_every=60,
                                   eval_steps=100)  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """Figure 5's paper-scale Pong teacher and student length (625k updates, the teacher
        collecting), a probe every 62.5k updates, 5 seeds."""
        return cls(game="atari/Pong", teacher=fig5.Config.paper(), steps=625_000,
                   probe_every=62_500, eval_every=125_000, eval_steps=10_000, num_seeds=5,
                   late_probes=3)  # fmt: skip


def student_config(config: Config, teacher: Path, objective: str, seed: int) -> DistillConfig:
    students = config.teacher  # Figure 5's student settings: batch, collection
    return DistillConfig(
        teacher=str(teacher), objective=objective, steps=config.steps, lr=config.lr,
        batch_size=students.student_batch_size, collect=students.student_collect,
        collect_every=students.student_collect_every, teacher_epsilon=students.collect_epsilon,
        probe_every=config.probe_every, probe_k=config.probe_k, probe_draws=config.probe_draws,
        eval_every=config.eval_every, eval_steps=config.eval_steps,
        log_every=min(1_000, config.probe_every), seed=seed,
        keep_replay=True,  # its final replay holds the transitions `centred_ranks` reads
    )  # fmt: skip


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    out_dir = Path(out_dir)
    name = config.game.replace("/", "-")
    teacher_cfg = fig5.teacher_config(config.teacher, config.game, seed)
    teacher_cfg = teacher_cfg.replace(probe_k=config.probe_k)
    teacher = ensure_teacher("dqn", teacher_cfg, out_dir, f"teacher_{name}",
                             VALUE_TEACHER_SIBLINGS)  # fmt: skip
    teacher_rows = read_metrics(teacher)
    teacher_ranks = [r[RANK] for r in teacher_rows if RANK in r]
    returns = [r["charts/episodic_return"] for r in teacher_rows if "charts/episodic_return" in r]
    curves = {}
    for objective in OBJECTIVES:
        per_seed = []
        seeds = range(seed, seed + config.num_seeds)
        runs = ensure_distill_runs(  # one seed group
            [student_config(config, teacher, objective, s) for s in seeds],
            [out_dir / "runs" / f"{objective}_{name}_s{s}" for s in seeds],
        )
        for run in runs:
            rows = read_metrics(run)
            per_seed.append({
                "updates": [r["step"] for r in rows if RANK in r],
                "rank": [r[RANK] for r in rows if RANK in r],
                "rank_random": [r[f"{RANK}_random"] for r in rows if RANK in r],
                "eval_updates": [r["step"] for r in rows if "charts/train_return" in r],
                "return": [r["charts/train_return"] for r in rows if "charts/train_return" in r],
            })  # fmt: skip
        for student, ranks in zip(per_seed, centred_ranks(runs), strict=True):
            student["final_rank_centred"] = ranks
        curves[objective] = per_seed
    return {"curves": curves, "teacher_rank": teacher_ranks[-1] if teacher_ranks else None,
            "teacher_return": float(np.mean(returns[-2:])) if returns else None,
            "teacher": str(teacher)}  # fmt: skip


def centred_values(distiller: Distiller):
    """The outputs an advantage loss constrains: q(x, a) - mean_b q(x, b), [n, A]."""

    def values(params, obs):
        q = distiller.values(params, obs)
        return q - q.mean(axis=-1, keepdims=True)

    return values


def centred_ranks(run_dirs: list[Path], centred: bool = True) -> list[list[float]]:
    """Per student (students of one objective that differ only by seed) and per draw of its last
    logged probe: the update rank read through max_a of the per-state-centred outputs
    (``centred``; else of the raw outputs, what the probe logged), from its final checkpoint, on
    the same transitions, with the same loss, optimiser state and eps. One Distiller (and one
    compiled update matrix) serves every seed."""
    runs = [RunDir.open(Path(d)) for d in run_dirs]
    distiller = Distiller.build(runs[0].load_config(DistillConfig))
    apply_fn = centred_values(distiller) if centred else distiller.values
    loss_fn = distiller.transition_loss
    out = []
    for run in runs:
        if not distiller.frame_replay:  # the probe's transitions are in the student's own replay
            require_replay(find_checkpoint(run.checkpoints), "Figure 11's recomputed probe")
        state, updates = start_state(distiller, run, None, "updates", distiller.template)
        probe = read_npz(run.probes / f"step_{updates:012d}.npz", "a probe of the final update",
                         ("sample_indices",))  # fmt: skip
        ranks = []
        if distiller.frame_replay:  # Atari: the host ring the student samples
            ring, gather = host_replay.data(distiller, state), frame_replay.gather
        else:
            ring, gather = state.replay, replay_lib.gather
        for flat in np.asarray(probe["sample_indices"]):
            batch = gather(ring, *np.divmod(flat, ring.num_envs))  # the probe's flat indices
            samples = distiller.transitions(state.params, state.target_params, batch)
            A = update_matrix(apply_fn, state.params, loss_fn, samples, distiller.optimizer,
                              state.opt_state, reduce="max",
                              center=distiller.config.probe_center, method="exact")  # fmt: skip
            ranks.append(float(update_rank(np.asarray(A), EPS)))
        out.append(ranks)
    return out


EPS = 0.1  # the probes' threshold (tdgen.agents.probes.make_probe)


def _mean(curves, key, sl=slice(None)):
    return float(np.mean([np.asarray(c[key], float)[sl] for c in curves]))


def _values(curves, key, sl=slice(None)) -> np.ndarray:
    """Per seed, the slice of series ``key``: [seeds, len]."""
    return np.array([np.asarray(c[key], float)[sl] for c in curves])


UNIT = "students of one teacher"  # every student distils the one teacher (check_claims)


def _lowest(values: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each other objective's rank minus advantage regression's, above 0 (independent runs)."""
    return {f"{o} - advantage": mean_test(v, ">", 0.0, minus=values["advantage"], unit=UNIT)
            for o, v in values.items() if o != "advantage"}  # fmt: skip


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Start below the teacher (first probe); advantage lowest through both reductions (module
    docstring); means over seeds (and probes, draws) with 95% t intervals over seeds."""
    teacher_rank = measurements["teacher_rank"]
    curves = measurements["curves"]
    first = {o: _values(c, "rank", slice(0, 1)) for o, c in curves.items()}
    late = {o: _values(c, "rank", slice(-config.late_probes, None)) for o, c in curves.items()}
    centred = {o: _values(c, "final_rank_centred") for o, c in curves.items()}
    start_below = {
        o: mean_test(v, "<", teacher_rank if teacher_rank is not None else float("nan"), unit=UNIT)
        for o, v in first.items()
    }
    seeds = f"{config.num_seeds} seeds"
    scope = (" Every student distils one teacher (this seed's), so n counts students of that "
             "teacher: a claim about this teacher's students, not about DQN teachers in general.")  # fmt: skip
    return [
        Claim.measured(
            "objectives_start_below_teacher_rank",
            f"Every objective's update rank at its first probe (after {config.probe_every} "
            f"updates, mean over {seeds}, k={config.probe_k}) is below the teacher's update rank "
            f"at its last training probe ({teacher_rank})." + scope,
            start_below,
        ),
        Claim.measured(
            "advantage_regression_lowest_rank",
            f"Raw outputs (the paper's reduction, max_a q(x, a)): advantage regression has a lower "
            f"update rank than every other objective over the last {config.late_probes} probes "
            f"(mean over {seeds} and probes)." + scope,
            _lowest(late),
            {
                "late_ranks": {o: float(v.mean()) for o, v in late.items()},
                "mean_ranks_over_all_probes": {o: _mean(c, "rank") for o, c in curves.items()},
            },
        ),
        Claim.measured(
            "advantage_regression_lowest_rank_centred",
            "Centred outputs (what the advantage loss constrains, max_a (q(x, a) - mean_b "
            "q(x, b))): advantage regression has a lower update rank than every other objective "
            f"at the final update (each student's final checkpoint, the transitions of its last "
            f"probe, mean over {seeds} and {config.probe_draws} draws)." + scope,
            _lowest(centred),
            {"final_ranks_centred": {o: float(v.mean()) for o, v in centred.items()}},
        ),
    ]


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    curves = measurements["curves"]
    with plots.style():
        fig, axes = plots.figure(1, 2, width=4.2, height=3.0)
        ax_rank, ax_ret = axes[0]
        for i, (objective, runs) in enumerate(curves.items()):
            color = plots.COLORS[i % len(plots.COLORS)]
            x = np.asarray(runs[0]["updates"], float) / 1e3
            ranks = np.array([r["rank"] for r in runs], float)
            ax_rank.plot(x, ranks.mean(0), color=color, label=objective)
            ax_rank.fill_between(x, ranks.min(0), ranks.max(0), color=color, alpha=0.18)
            xr = np.asarray(runs[0]["eval_updates"], float) / 1e3
            returns = np.array([r["return"] for r in runs], float)
            ax_ret.plot(xr, returns.mean(0), color=color, label=objective)
        if measurements["teacher_rank"] is not None:
            ax_rank.axhline(measurements["teacher_rank"], color="0.3", linestyle=":",
                            label="teacher")  # fmt: skip
        if measurements["teacher_return"] is not None:
            ax_ret.axhline(measurements["teacher_return"], color="0.3", linestyle=":",
                           label="teacher (training)")  # fmt: skip
        ax_rank.set_xlabel("student updates (thousands)")
        ax_rank.set_ylabel(f"update rank (k={config.probe_k}, eps=0.1)")
        ax_ret.set_xlabel("student updates (thousands)")
        ax_ret.set_ylabel("return (epsilon 0.01)")
        ax_rank.legend(fontsize=7)
        ax_rank.set_title(config.game)
        return [plots.save(fig, Path(out_dir) / "fig11_value_distillation_objectives.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    curves = measurements["curves"]
    note = (
        f"Teacher update rank {measurements['teacher_rank']}; students' ranks first -> last probe: "
        + ", ".join(f"{o} {_mean(c, 'rank', slice(0, 1)):.1f} -> {_mean(c, 'rank', slice(-1, None)):.1f}"
                    for o, c in curves.items())
        + "; final returns: "
        + ", ".join(f"{o} {_mean(c, 'return', slice(-1, None)):.2f}" for o, c in curves.items())
        + "; final ranks through the centred outputs: "
        + ", ".join(f"{o} {_mean(c, 'final_rank_centred'):.1f}" for o, c in curves.items())
        + ". The logged probe reads every student through max_a of its raw outputs (the paper's "
        "reduction); an advantage-regression student's outputs carry a per-state offset its loss "
        "never sees (only q - mean_a q is fitted), which that reduction includes and the centred "
        "one removes."
    )  # fmt: skip
    summary = {"teacher": measurements["teacher"], "teacher_rank": measurements["teacher_rank"],
               "note": note}  # fmt: skip
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig11_value_distillation_objectives",
    paper_ref="Figure 11, Appendix D.1",
    description="Update rank and return over distillation for q, qa, advantage regression, qr and "
    "double-q students of a DQN teacher",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "Config", "centred_ranks", "check_claims", "measure", "run"]
