"""Beyond the paper: how the cheap learning-dynamics measures track the update rank.

Over the probes of the Figure 3 runs (DQN, C51; game and zero reward) and the Figure 4 runs (PPO,
DAAC; actor and critic), reused through their own run names and `ensure_runs` (trained only when
missing), each probe file (`probes/step_<frames>.npz`) holds the update rank and the suite the
run's ``probe_measures`` named (`tdgen.agents.probes`), on the same k samples. Per run, the
Spearman correlation over its probes (training time) of each measure with the update rank; per
cell (agent, game, reward or network) the mean over seeds with a Student t interval over the
seeds whose correlation is defined (`tdgen.stats.t_interval`). The feature measures are read on
the last hidden layer (the features the head reads).

Claims, rules fixed before any run was read: (1) the feature srank of the last hidden layer
correlates positively with the update rank in most cells: per cell a check (`verdicts.Check`)
whose seed-mean Spearman correlation has its t interval above ``min_correlation`` (0 by
default) holds, below it does not, and straddling it is inconclusive; the claim holds when more
than half of the cells hold, does not when even the held and inconclusive cells together are not
more than half, and is inconclusive otherwise (`verdicts.share_verdict`); (2) the same for the
fraction of tau-dormant units (tau 0.025) with a negative sign (more dormant units, fewer
independent update directions). A correlation undefined in a run (a constant series) counts as
no evidence: that run is left out of its cell, and a cell with no defined run counts as a cell
that did not hold.

Read the correlations as tracking, not cause: both series move with training, so a measure that
only drifts over training (the parameter norm) correlates as well; the figure shows every measure
side by side for that reason. With 2 seeds the t interval is wide (12.7 standard errors to
each side); a cell with a single defined seed has no interval and is inconclusive.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents import ensure_runs
from tdgen.errors import InputError, read_npz
from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import fig4_actor_critic_update_rank as fig4
from tdgen.experiments.base import HELD, NOT_HELD, Claim, Experiment, Outcome
from tdgen.experiments.verdicts import Check, share_verdict
from tdgen.interference.keys import read_update_rank, update_rank_name
from tdgen.runs.rundir import RunDir
from tdgen.stats import spearman, t_interval

# Measures correlated with the update rank: the suite's keys, "{layer}" = the last hidden layer.
MEASURES = ("dormant_0.025", "active", "feature_srank/{layer}", "feature_erank/{layer}",
            "feature_norm/{layer}", "param_norm", "grad_norm", "churn")  # fmt: skip
SRANK, DORMANT = "feature_srank/{layer}", "dormant_0.025"


@dataclass(frozen=True)
class Config:
    """Which runs (Figure 3's and Figure 4's settings, their folders) and the claims' rules."""

    value: fig3.Config = fig3.Config()  # the Figure 3 runs (value-based agents)
    actor_critic: fig4.Config = fig4.Config()  # the Figure 4 runs (actor-critic agents)
    # the Figure 3 and Figure 4 runs folders, from out_dir (a sweep runs this after both)
    reuse_from: tuple[str, str] = ("../fig3_value_update_rank/runs",
                                   "../fig4_actor_critic_update_rank/runs")  # fmt: skip
    min_correlation: float = 0.0  # a cell supports a claim when its mean rho passes this
    interval: float = 0.95  # t interval over seeds
    reps: int = 2_000  # unused (the t interval draws no resamples); kept so saved configs load

    def __post_init__(self) -> None:
        if not 0 < self.interval < 1:
            raise InputError(f"interval must lie in (0, 1), got {self.interval}")
        if self.reps < 1 or not -1 <= self.min_correlation < 1:
            raise InputError("reps must be positive and min_correlation in [-1, 1)")

    @classmethod
    def quick(cls) -> Config:
        """The quick Figure 3 (breakout, 2 x 2 x 2 runs) and Figure 4 (space_invaders, 2 x 2)."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset over the smoke Figure 3 and Figure 4 runs."""
        return dataclasses.replace(cls.paper(), value=fig3.Config.smoke(),
                                   actor_critic=fig4.Config.smoke())  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """Over the paper-scale Figure 3 (Atari) and Figure 4 (ProcGen) runs."""
        return cls(value=fig3.Config.paper(), actor_critic=fig4.Config.paper())


def probe_series(run_dir: Path, network: str = "") -> dict[str, Any]:
    """Frames, update ranks and the suite's measures (MEASURES, last hidden layer) over the
    probes of one run; ``network``: "" (value networks), "actor" or "critic"."""
    run = RunDir.open(run_dir)
    files = sorted(run.probes.glob("step_*.npz"))
    center = run.config.get("probe_center", "none")
    prefix = f"dynamics/{network}/" if network else "dynamics/"
    series: dict[str, Any] = {"frames": [], "update_rank": [], "measures": {}}
    for path in files:
        arrays = read_npz(path, "a probe file")
        rank = read_update_rank(arrays, center, network, prefix="")
        if rank is None:
            raise InputError(f"{path} lacks {update_rank_name(center, network)} (expected a "
                             "probe file of this run's centring)")  # fmt: skip
        layers = [k[len(prefix) + len("feature_srank/") :] for k in arrays
                  if k.startswith(prefix + "feature_srank/")]  # fmt: skip
        if not layers:
            raise InputError(
                f"{path} holds no learning-dynamics measures (a run trained before "
                "probe_measures existed, or with probe_measures=none): delete its runs folder "
                "or choose another --out, so the runs are trained with the suite"
            )
        series["frames"].append(int(arrays["frames"]))
        series["update_rank"].append(float(rank))
        for name in MEASURES:
            key = prefix + name.format(layer=layers[-1])  # saved in call order: the last
            value = float(arrays[key]) if key in arrays else float("nan")
            series["measures"].setdefault(name, []).append(value)
    return series


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """cells[name] = per-seed `probe_series` of the Figure 3 and Figure 4 runs (reused)."""
    out_dir = Path(out_dir)
    cells: dict[str, list] = {}
    v, ac = config.value, config.actor_critic
    runs = Path(os.path.normpath(out_dir / config.reuse_from[0]))  # before out_dir exists
    for game in v.games:
        for agent in v.agents:
            for reward in v.rewards:
                seeds = range(seed, seed + v.num_seeds)
                dirs = ensure_runs(agent, [fig3.agent_config(v, agent, game, reward, s) for s in seeds],
                                   [runs / fig3.run_name(agent, game, reward, s) for s in seeds])  # fmt: skip
                cells[f"{agent}/{game}/{reward}"] = [probe_series(d) for d in dirs]
    runs = Path(os.path.normpath(out_dir / config.reuse_from[1]))
    for game in ac.games:
        for agent in fig4.AGENTS:
            seeds = range(seed, seed + ac.num_seeds)
            dirs = ensure_runs(agent, [fig4.agent_config(ac, agent, game, s) for s in seeds],
                               [runs / fig4.run_name(agent, game, s) for s in seeds])  # fmt: skip
            for network in fig4.NETWORKS:
                cells[f"{agent}/{game}/{network}"] = [probe_series(d, network) for d in dirs]
    return {"cells": cells}


def correlations(measurements: dict[str, Any], config: Config) -> dict[str, dict[str, Any]]:
    """table[measure][cell]: per-seed rho, their mean and t interval over the defined seeds."""
    table: dict[str, dict[str, Any]] = {}
    for name in MEASURES:
        table[name] = {}
        for cell, runs in measurements["cells"].items():
            rho = [spearman(r["measures"][name], r["update_rank"]) for r in runs]
            defined = np.array([r for r in rho if np.isfinite(r)])
            row: dict[str, Any] = {"per_seed": rho, "defined": int(len(defined))}
            if len(defined):
                point, low, high, _, _ = t_interval(defined, config.interval)
                row.update(mean=float(point), low=float(low), high=float(high))
            else:
                row.update(mean=float("nan"), low=float("nan"), high=float("nan"))
            table[name][cell] = row
    return table


def _check(row: dict[str, Any], sign: int, threshold: float) -> Check | None:
    """The cell's seed-mean rho and interval against ``sign * threshold`` (None: undefined)."""
    if not row["defined"]:
        return None
    return Check(
        row["mean"],
        row["low"],
        row["high"],
        ">" if sign > 0 else "<",
        sign * threshold + 0.0,  # + 0.0: a threshold of 0 reads "0", not "-0"
        row["defined"],
        method="Student t",
    )


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """The module docstring's two claims, each over every cell of both figures."""
    table = correlations(measurements, config)
    claims = []
    what = (f"a seed-mean Spearman correlation over training probes with the update rank "
            f"whose {config.interval:.0%} t interval over seeds lies {{}} {{:g}}")  # fmt: skip
    for claim_id, name, sign, label in (
        ("feature_srank_tracks_update_rank", SRANK, 1,
         "the feature srank of the last hidden layer"),
        ("dormant_units_track_update_rank_inversely", DORMANT, -1,
         "the fraction of 0.025-dormant units"),
    ):  # fmt: skip
        rows = table[name]
        checks = {cell: _check(row, sign, config.min_correlation) for cell, row in rows.items()}
        verdicts = [NOT_HELD if c is None else c.verdict for c in checks.values()]
        verdict = share_verdict(verdicts, 0.5, strict=True)
        support = {cell: c is not None and c.verdict == HELD for cell, c in checks.items()}
        evidence = {"cells": {c: {**rows[c], "supports": support[c]} for c in rows},
                    "supporting": sum(support.values()), "cells_total": len(rows)}  # fmt: skip
        rule = what.format("above" if sign > 0 else "below", sign * config.min_correlation + 0.0)
        claims.append(Claim(
            claim_id,
            f"In more than half of the cells (agent, game, reward or network) of the Figure 3 "
            f"and Figure 4 runs, {label} has {rule} ({sum(support.values())} of {len(rows)} "
            f"cells held).",
            verdict == HELD, evidence, {c: k for c, k in checks.items() if k is not None},
            verdict,
        ))  # fmt: skip
    return claims


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """Per measure (x) and cell (markers): seed-mean Spearman rho with its t interval over seeds."""
    table = correlations(measurements, config)
    cells = list(measurements["cells"])
    markers = "osD^vP*Xph<>"
    with plots.style():
        fig, axes = plots.figure(1, 1, width=7.5, height=3.4)
        ax = axes[0, 0]
        width = 0.8 / max(len(cells), 1)
        for j, cell in enumerate(cells):
            x = np.arange(len(MEASURES)) - 0.4 + (j + 0.5) * width
            mean = np.array([table[m][cell]["mean"] for m in MEASURES])
            low = np.array([table[m][cell]["low"] for m in MEASURES])
            high = np.array([table[m][cell]["high"] for m in MEASURES])
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt=markers[j % len(markers)],
                        color=plots.COLORS[j % len(plots.COLORS)], ms=4, lw=0.8, capsize=1.5,
                        label=cell)  # fmt: skip
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xticks(np.arange(len(MEASURES)))
        ax.set_xticklabels([re.sub(r"/\{layer\}", " (last)", m) for m in MEASURES], rotation=30,
                           ha="right", fontsize=7)  # fmt: skip
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("Spearman rho with update rank")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=6)
        ax.set_title(f"Mean over seeds, {config.interval:.0%} t interval", fontsize=8)
        return [plots.save(fig, Path(out_dir) / "dyn_metrics_vs_update_rank.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Reuse (or train) the Figure 3 and 4 runs, correlate, plot, check the claims."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    table = correlations(measurements, config)
    means = {
        name: {cell: row["mean"] for cell, row in rows.items()} for name, rows in table.items()
    }
    note = "Seed-mean Spearman rho with the update rank: " + "; ".join(
        f"{name.replace('/{layer}', '')}: "
        + ", ".join(f"{cell} {value:+.2f}" for cell, value in rows.items())
        for name, rows in means.items()
    ) + "."  # fmt: skip
    probes = {cell: len(runs[0]["frames"]) for cell, runs in measurements["cells"].items()}
    return Outcome(claims, figures, {"mean_rho": means, "probes_per_run": probes, "note": note})


EXPERIMENT = Experiment(
    name="dyn_metrics_vs_update_rank",
    paper_ref="Beyond the paper (Figures 3 and 4's runs)",
    description="Spearman correlation of the cheap learning-dynamics measures with the update "
    "rank over training, per agent and game",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "MEASURES", "Config", "check_claims", "correlations", "measure", "run"]
