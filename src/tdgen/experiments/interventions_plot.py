"""The figure of `interventions_vs_interference`: PPO's critic update rank against the
generalisation gap per cell; DQN's final update rank per cell against the distilled student's;
DQN's final returns as rliable's IQM with stratified bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots, stats
from tdgen.experiments.interventions_claims import rliable_summary


def _mean_interval(values) -> tuple[float, float, float]:
    found = stats.t_interval(np.asarray(values, float))
    return float(found.estimate), float(found.low), float(found.high)


def plot(measurements: dict[str, Any], config: Any, out_dir: Path) -> list[str]:
    """Three panels (t intervals over seeds; IQM with 95% stratified bootstrap intervals)."""
    dqn, ppo = measurements["dqn"], measurements["ppo"]
    with plots.style():
        fig, axes = plots.figure(1, 3, width=3.4, height=3.0)
        ax_gap, ax_rank, ax_ret = axes[0]
        for i, (cell, rows) in enumerate(ppo.items()):
            x = [r["critic_rank"] for r in rows]
            y = [r["generalization_gap"] for r in rows]
            color = plots.COLORS[i % len(plots.COLORS)]
            ax_gap.scatter(x, y, color=color, s=10, alpha=0.5)
            ax_gap.plot(np.mean(x), np.mean(y), "os"[cell == "baseline"], color=color, ms=6,
                        label=cell)  # fmt: skip
        ax_gap.set_xlabel(f"critic late update rank (k={config.probe_k})")
        ax_gap.set_ylabel("generalisation gap (train - test return)")
        ax_gap.set_title(f"PPO, {config.ppo.game}", fontsize=8)
        if ppo:
            ax_gap.legend(fontsize=6)
        names = list(dqn)
        for j, cell in enumerate(names):
            mean, low, high = _mean_interval([r["final_rank"] for r in dqn[cell]])
            ax_rank.errorbar(j, mean, yerr=[[mean - low if np.isfinite(low) else 0],
                                            [high - mean if np.isfinite(high) else 0]],
                             fmt="o", color="black", ms=4, capsize=2)  # fmt: skip
        s_mean, s_low, s_high = _mean_interval(measurements["student"])
        ax_rank.axhline(s_mean, color="0.3", ls=":", label="Q-regression student")
        if np.isfinite(s_low):
            ax_rank.axhspan(s_low, s_high, color="0.8", alpha=0.5)
        ax_rank.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax_rank.set_ylabel(f"DQN final update rank (k={config.probe_k})")
        ax_rank.legend(fontsize=6)
        baseline = [r["return"] for r in dqn.get("baseline", [])]
        for j, cell in enumerate(names):
            iqm = rliable_summary(baseline or [np.nan], [r["return"] for r in dqn[cell]],
                                  reps=config.reps)["iqm"]  # fmt: skip
            ax_ret.errorbar(iqm[0], j, xerr=[[iqm[0] - iqm[1]], [iqm[2] - iqm[0]]], fmt="o",
                            color=plots.COLORS[0], ms=4, capsize=2)  # fmt: skip
        ax_ret.set_yticks(range(len(names)), names, fontsize=7)
        ax_ret.set_xlabel("DQN final return, IQM (95% bootstrap)")
        ax_ret.set_title(config.dqn.game, fontsize=8)
        return [plots.save(fig, Path(out_dir) / "interventions_vs_interference.png")]


__all__ = ["plot"]
