"""Beyond the paper: do plasticity interventions keep updates generalising, and does a lower
update rank go with a smaller generalisation gap?

Cells: the baseline agent and the agent with each intervention (`tdgen.agents.interventions`,
each with its source's defaults). Period rule: an event whose source period exceeds a quarter of
the run's gradient updates U (DQN: (frames - learning_starts) / train_every; PPO: iterations x
epochs x minibatches) fires every U // 4 updates instead, so it fires 3 or 4 times and the last
probes see its effect (at quick scale: reset's 20k -> 1,187 DQN and 36 PPO updates, ReDo's 1,000
-> 36 PPO updates); plasticity injection, which its source fires once at a quarter of the run
(50M of 200M frames), keeps that fraction. A cell the agent refuses (an intervention that cannot
apply to its network) is recorded under ``refused`` and left out of the claims.

- DQN on Breakout-MinAtar (dense reward, Dopamine's MinAtar settings), one seed group per cell:
  update rank, dormant fractions (``dynamics/dormant_0.025``; dead units ``dynamics/dormant_0``),
  the feature srank and InFeR's feature rank of the last hidden layer, and the return, over
  training (Section 5.1's probes).
- PPO on the Asterix-MinAtar levels of Figure 6 (10 seed-defined training levels, tested on the
  full distribution): per cell the generalisation gap (train - test return, Eq. 6, from the
  agent's own final evaluation with its stochastic policy, compiled into the training program)
  and the actor's and critic's late update ranks (Section 5.2's probes).
- Distillation: the first seed's baseline DQN run is the teacher; Figure 11's Q-regression
  student (Eq. 22, Figure 11's settings) distils it, one student per seed.

Claims, rules fixed before any run (each held / did not hold / inconclusive; intervals over
seeds, `tdgen.experiments.interventions_claims`): (a) ReDo lowers the late fraction of dead units
(tau = 0) against the baseline: per-seed paired difference, 95% t interval below 0; (b) across
the PPO cells the critic's late update rank and the generalisation gap are positively
rank-correlated: Spearman rho across cells per seed, 95% t interval of the mean above 0 (coverage
of this interval on per-seed rho: `tdgen.stats`); (c) some intervention's final DQN update rank
lies at or below the upper end of the student's 95% t interval (did not hold: every
intervention's interval wholly above it); (d) some intervention improves DQN's final return:
one-sided Welch t-tests, Holm-corrected over the m comparisons (did not hold: every intervention
lower, each at alpha), with rliable's IQM and probability of improvement reported.

Quick scale: on 2 CPU cores each cell costs ~50 s of DQN and ~50 s of PPO (2 seeds, one vmapped
group each, mostly compilation), so all 14 cells would take ~25 min; the quick preset runs the
baseline and four interventions (ReDo for claim a; reset, layer norm, weight decay: one event,
network and optimiser intervention), 2 seeds, 20k DQN frames, 6 PPO iterations (49k frames) and
2k-update students: measured 567 s for the whole experiment (2 cores shared with other jobs, load
~4.8). With 2 seeds a t interval spans 12.7 standard errors each side: most checks come out
inconclusive, and (c) holds easily against the student's wide interval; read the verdicts at
paper scale.
Paper scale: DQN on Atari as ReDo (Sokar et al. 2023: Dopamine's DQN, Adam, 10M frames; one of
their games, DemonAttack, is our pick), PPO on ProcGen as Figure 4 (10 levels, 25M frames),
5 seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen.agents import build_agent, config_class, ensure_runs
from tdgen.agents.interventions import INTERVENTIONS
from tdgen.errors import InputError
from tdgen.experiments import fig4_actor_critic_update_rank as fig4
from tdgen.experiments import fig11_value_distillation_objectives as fig11
from tdgen.experiments import interventions_claims as claims_lib
from tdgen.experiments.base import Experiment, Outcome, PlannedRun, to_jsonable
from tdgen.interference.keys import read_update_rank
from tdgen.runs.metrics import read_metrics
from tdgen.runs.rundir import write_json_atomic

BASELINE = "baseline"
RANK, RETURN = "interference/update_rank", "charts/episodic_return"
DEAD, DORMANT = "dynamics/dormant_0", "dynamics/dormant_0.025"
MEASURES = "dormant,features,feature_rank"  # probe_measures: dormant, srank, InFeR's rank


@dataclass(frozen=True)
class Cells:
    """One agent's cells: its game, preset and schedule (None: the preset's value)."""

    game: str
    preset: str
    frames: int
    probe_every: int  # frames between probes (PPO: and evaluations)
    num_levels: int = 0  # PPO: training levels, tested on the full distribution
    eval_steps: int | None = None  # PPO: steps per evaluation environment
    learning_starts: int | None = None  # DQN: frames before the first update
    buffer_size: int | None = None  # DQN: replay capacity
    target_period: int | None = None  # DQN: frames between target copies
    num_envs: int | None = None  # PPO: parallel environments
    num_steps: int | None = None  # PPO: rollout length per environment

    def overrides(self) -> dict[str, Any]:
        names = ("learning_starts", "buffer_size", "target_period", "num_envs", "num_steps",
                 "eval_steps")  # fmt: skip
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class Config:
    """Cells, schedules and claim settings; agent fields not listed keep the preset's."""

    interventions: tuple[str, ...] = tuple(INTERVENTIONS)  # registry names, source defaults
    num_seeds: int = 5  # runs per cell; seeds are seed, seed + 1, ...
    dqn: Cells = Cells("minatar/breakout", "minatar", 20_000, 5_000)
    ppo: Cells = Cells("minatar/asterix", "minatar", 6 * 64 * 128, 3 * 64 * 128, num_levels=10,
                       eval_steps=500)  # fmt: skip
    probe_k: int = 64  # samples per update matrix
    probe_draws: int = 1
    late_probes: int = 1  # "late": the mean over the last late_probes probes
    student_steps: int = 2_000  # Q-regression student updates (fig11's "q"), a probe every half
    alpha: float = claims_lib.ALPHA
    reps: int = 2_000  # stratified bootstrap resamples (rliable's IQM, probability of improvement)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.interventions) - set(INTERVENTIONS))
        if unknown:
            raise InputError(f"interventions {unknown} unknown: choose from "
                             f"{', '.join(INTERVENTIONS)}")  # fmt: skip
        if self.num_seeds < 1 or self.late_probes < 1 or self.student_steps < 2:
            raise InputError("num_seeds and late_probes must be at least 1, student_steps 2")
        for name, cells in (("dqn", self.dqn), ("ppo", self.ppo)):
            if cells.probe_every < 1 or cells.frames // cells.probe_every < self.late_probes:
                raise InputError(f"{name}.frames {cells.frames} hold fewer than late_probes "
                                 f"({self.late_probes}) probes of {name}.probe_every "
                                 f"{cells.probe_every}")  # fmt: skip

    @classmethod
    def quick(cls) -> Config:
        """Baseline + ReDo, reset, layer norm, weight decay; 2 seeds (module docstring)."""
        return cls(interventions=("redo", "reset", "layer_norm", "weight_decay"), num_seeds=2)

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (its games, presets, cells and seeds) cut to four probes of a few
        hundred frames, k = 16 and 40-update students: the code paths, not a test."""
        paper = cls.paper()
        dqn = dataclasses.replace(paper.dqn, frames=1_024, probe_every=256, learning_starts=256,
                                  buffer_size=2_048, target_period=256)  # fmt: skip
        ppo = dataclasses.replace(paper.ppo, frames=4 * 8 * 16, probe_every=8 * 16, num_envs=8,
                                  num_steps=16, eval_steps=64)  # fmt: skip
        return dataclasses.replace(paper, dqn=dqn, ppo=ppo, probe_k=16, probe_draws=1,
                                   student_steps=40)  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """All 13 interventions, 5 seeds: DQN as ReDo (Dopamine's Atari DQN, 10M frames, a probe
        every 500k), PPO on ProcGen bigfish as Figure 4 (10 levels, 25M frames)."""
        batch = 64 * 256
        return cls(dqn=Cells("atari/DemonAttack", "dopamine", 10_000_000, 500_000),
                   ppo=Cells("procgen/bigfish", "procgen", 1525 * batch, 61 * batch,
                             num_levels=10, eval_steps=2_000),
                   probe_k=128, probe_draws=2, late_probes=3, student_steps=625_000)  # fmt: skip


def scaled_spec(name: str, updates: int) -> str:
    """The intervention's spec: its source defaults, with a ``period`` of more than a quarter of
    the run's ``updates`` set to ``updates // 4`` (module docstring)."""
    fields = {f.name: f.default for f in dataclasses.fields(INTERVENTIONS[name])}
    period = fields.get("period")
    if isinstance(period, int) and period > max(updates // 4, 1):
        return f"{name}:period={max(updates // 4, 1)}"
    return name


def dqn_config(config: Config, cell: str, seed: int):
    cells = config.dqn
    base = config_class("dqn").preset(cells.preset, cells.game, **cells.overrides())
    updates = (cells.frames - base.learning_starts) // base.train_every
    specs = () if cell == BASELINE else (scaled_spec(cell, updates),)
    return base.replace(
        frames=cells.frames, probe_every=cells.probe_every, probe_k=config.probe_k,
        probe_draws=config.probe_draws, probe_measures=MEASURES, log_every=cells.probe_every,
        checkpoint_every=0, seed=seed, interventions=specs,
        keep_replay=cell == BASELINE,  # the teacher's replay feeds the student
    )  # fmt: skip


def ppo_config(config: Config, cell: str, seed: int):
    cells = config.ppo
    base = config_class("ppo").preset(cells.preset, cells.game, **cells.overrides())
    iterations = cells.frames // (base.num_envs * base.num_steps)
    updates = iterations * base.epochs * base.num_minibatches
    specs = () if cell == BASELINE else (scaled_spec(cell, updates),)
    return base.replace(
        frames=cells.frames, num_levels=cells.num_levels, test_num_levels=0,
        probe_every=cells.probe_every, probe_k=config.probe_k, probe_draws=config.probe_draws,
        eval_every=cells.probe_every, checkpoint_every=0, seed=seed, interventions=specs,
    )  # fmt: skip


def cells(config: Config) -> tuple[str, ...]:
    return (BASELINE, *config.interventions)


def run_name(agent: str, game: str, cell: str, seed: int) -> str:
    return f"{agent}_{game.replace('/', '-')}_{cell}_s{seed}"


def seed_group(config: Config, agent: str, cell: str, seed: int, out_dir: Path) -> list:
    """The runs of one (agent, cell), seeds seed, seed + 1, ...: trained as one group."""
    game, make = (config.dqn.game, dqn_config) if agent == "dqn" else (config.ppo.game, ppo_config)
    names = {s: run_name(agent, game, cell, s) for s in range(seed, seed + config.num_seeds)}
    return [PlannedRun(name, agent, make(config, cell, s), Path(out_dir) / "runs" / name)
            for s, name in names.items()]  # fmt: skip


def planned_runs(config: Config, seed: int, out_dir: Path) -> list[PlannedRun]:
    """The DQN then PPO runs, one seed group per cell, less the cells the agent refuses (the
    students are distillation runs)."""
    groups = [seed_group(config, agent, cell, seed, out_dir) for agent in ("dqn", "ppo")
              for cell in cells(config)]  # fmt: skip
    return [run for group in groups if not refusal(group[0].agent, group[0].config)
            for run in group]  # fmt: skip


def _late(rows: list[dict], key: str, late: int, target: str = "") -> float:
    """Mean of ``key`` over the last ``late`` rows that hold it (the update rank: by target)."""
    if key == RANK:
        values = [read_update_rank(r, "none", target) for r in rows]
        values = [v for v in values if v is not None]
    else:
        values = [r[key] for r in rows if key in r]
    return float(np.mean(values[-late:])) if values else float("nan")


def _last_layer(rows: list[dict], prefix: str) -> str:
    names = sorted({k for r in rows for k in r if k.startswith(prefix)})
    return names[-1] if names else prefix  # e.g. dynamics/feature_srank/encoder/Dense_0


def read_dqn(run_dir: Path, late: int) -> dict[str, Any]:
    """Late (and series of) update rank, dormant, dead, feature ranks and returns of a DQN run."""
    rows = read_metrics(run_dir)
    srank = _last_layer(rows, "dynamics/feature_srank/")
    infer = _last_layer(rows, "dynamics/feature_rank/")
    probes = [r for r in rows if RANK in r]
    returns = [r[RETURN] for r in rows if RETURN in r and np.isfinite(r[RETURN])]
    out = {key: _late(rows, k, late) for key, k in (("rank", RANK), ("dormant", DORMANT),
           ("dead", DEAD), ("feature_srank", srank), ("feature_rank", infer))}  # fmt: skip
    out["final_rank"] = _late(rows, RANK, 1)
    out["return"] = float(np.mean(returns[-2:])) if returns else float("nan")
    out["series"] = {"frames": [r["step"] for r in probes], "rank": [r[RANK] for r in probes],
                     "dead": [r.get(DEAD, np.nan) for r in probes],
                     "return": [r.get(RETURN, np.nan) for r in probes]}  # fmt: skip
    return out


def read_ppo(run_dir: Path, late: int) -> dict[str, float]:
    """Final train and test returns (the agent's own evaluation: stochastic policy, training
    levels and the full distribution), their gap (Eq. 6), and the late actor and critic ranks."""
    rows = read_metrics(run_dir)
    train, test = _late(rows, "charts/train_return", 1), _late(rows, "charts/test_return", 1)
    ranks = {f"{n}_rank": _late(rows, RANK, late, n) for n in fig4.NETWORKS}
    return {"train": train, "test": test, "generalization_gap": train - test, **ranks}


def refusal(agent: str, config: Any) -> str | None:
    """The agent's one-line refusal of the config's intervention, raised while building it
    (before anything is written; e.g. ReDo on IMPALA's residual blocks), or None."""
    try:
        build_agent(agent, config)
    except InputError as error:
        return str(error)
    return None


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """dqn[cell], ppo[cell]: per-seed numbers; student: per-seed final update rank."""
    from tdgen.distill import ensure_distill_runs

    out_dir, seeds = Path(out_dir), range(seed, seed + config.num_seeds)
    found: dict[str, Any] = {"dqn": {}, "ppo": {}, "refused": {}}
    teacher = None
    for agent in ("dqn", "ppo"):
        for cell in cells(config):
            group = seed_group(config, agent, cell, seed, out_dir)
            refused = refusal(agent, group[0].config)
            if refused:
                found["refused"][f"{agent}/{cell}"] = refused
                continue
            dirs = ensure_runs(agent, [r.config for r in group], [r.run_dir for r in group])
            if agent == "dqn":
                found["dqn"][cell] = [read_dqn(d, config.late_probes) for d in dirs]
                teacher = dirs[0] if cell == BASELINE else teacher
                continue
            found["ppo"][cell] = [read_ppo(d, config.late_probes) for d in dirs]
    atari = config.dqn.game.startswith("atari/")  # fig11's student settings for such a teacher
    scale = fig11.Config.paper() if atari else fig11.Config.quick()
    students = dataclasses.replace(scale, game=config.dqn.game, steps=config.student_steps,
                                   probe_every=config.student_steps // 2, probe_k=config.probe_k,
                                   probe_draws=config.probe_draws, late_probes=1,
                                   eval_every=config.student_steps)  # fmt: skip
    dirs = ensure_distill_runs([fig11.student_config(students, teacher, "q", s) for s in seeds],
                               [out_dir / "runs" / f"student_q_s{s}" for s in seeds])  # fmt: skip
    found["student"] = [_late(read_metrics(d), RANK, 1) for d in dirs]
    return found


def _per_seed(table: dict[str, list[dict]], key: str) -> dict[str, np.ndarray]:
    return {cell: np.array([r[key] for r in rows], float) for cell, rows in table.items()}


def check_claims(measurements: dict[str, Any], config: Config) -> list:
    """The four claims of the module docstring, from per-seed numbers."""
    dqn, ppo = measurements["dqn"], measurements["ppo"]
    dead = _per_seed(dqn, "dead")
    final_rank = {c: v for c, v in _per_seed(dqn, "final_rank").items() if c != BASELINE}
    returns = _per_seed(dqn, "return")
    nan = np.full(config.num_seeds, np.nan)
    return [
        claims_lib.dead_units_claim(dead.get(BASELINE, nan), dead.get("redo", nan)),
        claims_lib.rank_gap_claim(
            _per_seed(ppo, "critic_rank"), _per_seed(ppo, "generalization_gap")
        ),
        claims_lib.distillation_claim(measurements["student"], final_rank),
        claims_lib.returns_claim(
            returns.get(BASELINE, nan),
            {c: v for c, v in returns.items() if c != BASELINE},
            config.alpha,
        ),
    ]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    from tdgen.experiments.interventions_plot import plot

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    # per run: late numbers and the series over training (update rank, dead units, return)
    write_json_atomic(out_dir / "measurements.json", to_jsonable(measurements))
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    means = {agent: {cell: {k: float(np.mean([r[k] for r in rows]))
                            for k, v in rows[0].items() if isinstance(v, float)}
                     for cell, rows in measurements[agent].items()}
             for agent in ("dqn", "ppo")}  # fmt: skip
    note = (f"Cells: {', '.join(cells(config))}; {config.num_seeds} seeds. Refused: "
            f"{measurements['refused'] or 'none'}. Student final update rank "
            f"{np.mean(measurements['student']):.2f}. Read (b) as association across "
            "interventions, not cause.")  # fmt: skip
    returns = claims[-1].evidence
    note += (f" Returns: {returns['comparisons']} intervention-baseline comparisons, Holm-adjusted "
             "one-sided p (improvement): " + ", ".join(
                 f"{c} {float(p):.3g}" for c, p in returns["p_improve_holm"].items()) + ".")  # fmt: skip
    summary = {"means": means, "student_rank": measurements["student"],
               "refused": measurements["refused"], "note": note}  # fmt: skip
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="interventions_vs_interference",
    paper_ref="Beyond the paper (Sections 5-6 with plasticity interventions)",
    description="Plasticity interventions on DQN and PPO: update rank, dormant units, feature "
    "rank, generalisation gap, returns",
    config_type=Config,
    run=run,
    kind="deep_rl",
    planned_runs=planned_runs,
)

__all__ = ["EXPERIMENT", "Cells", "Config", "check_claims", "measure", "planned_runs", "run",
           "scaled_spec"]  # fmt: skip
