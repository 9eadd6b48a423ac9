"""The sweep report's figures, in the tdgen style: aggregate intervals, performance profiles,
per-task metric curves over frames with bootstrap bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.stats import mean_band
from tdgen.sweep.collect import ScoreTable, curves


def plot_intervals(summary: Mapping[str, Any], path: Path) -> str:
    """One panel per statistic: each algorithm's point estimate and 95% interval (rliable's
    `plot_interval_estimates`)."""
    names = [s for s in ("iqm", "mean", "median", "optimality_gap")
             if s in next(iter(summary["aggregate"].values()))]  # fmt: skip
    algorithms = list(summary["aggregate"])
    fig, axes = plots.figure(1, len(names), width=2.6, height=0.45 * len(algorithms) + 1.0)
    with plots.style():
        for ax, name in zip(axes[0], names, strict=True):
            for i, algorithm in enumerate(algorithms):
                s = summary["aggregate"][algorithm][name]
                color = plots.COLORS[i % len(plots.COLORS)]
                ax.plot([s["low"], s["high"]], [i, i], color=color, linewidth=6, alpha=0.45,
                        linestyle="-", solid_capstyle="butt")  # fmt: skip
                ax.plot([s["point"]], [i], "|", color=color, markersize=14, markeredgewidth=2)
            ax.set_yticks(range(len(algorithms)), algorithms if ax is axes[0][0] else [])
            ax.set_ylim(-0.7, len(algorithms) - 0.3)
            ax.set_title(
                name.replace("_", " ").upper() if name == "iqm" else name.replace("_", " ")
            )
            ax.set_xlabel(summary["score_label"])
        fig.suptitle(
            f"95% stratified bootstrap intervals ({summary['reps']} resamples; descriptive: "
            "coverage not tested, low with few seeds)",
            fontsize=9,
        )
    return plots.save(fig, path)


def plot_profiles(summary: Mapping[str, Any], path: Path) -> str:
    """Performance profiles: fraction of runs scoring above tau, with 95% bands."""
    fig, axes = plots.figure(1, 1, width=4.2, height=3.0)
    ax = axes[0][0]
    with plots.style():
        taus = np.asarray(summary["profile"]["taus"])
        for algorithm, p in summary["profile"]["curves"].items():
            (line,) = ax.plot(taus, p["point"], label=algorithm)
            ax.fill_between(taus, p["low"], p["high"], color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel(f"{summary['score_label']} threshold tau")
        ax.set_ylabel("fraction of runs with score > tau")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
    return plots.save(fig, path)


def plot_curves(
    table: ScoreTable, metric: str, path: Path, reps: int = 1_000, seed: int = 0
) -> str | None:
    """One panel per task: ``metric`` over frames, mean over seeds and its 95% bootstrap band."""
    tasks = table.tasks
    per_task: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for task in tasks:
        for algorithm in table.algorithms:
            runs = table.runs[algorithm].get(task, [])
            frames, values = curves(runs, metric)
            if len(frames):
                per_task.setdefault(task, []).append((algorithm, frames, values))
    if not per_task:
        return None
    columns = min(4, len(per_task))
    rows = -(-len(per_task) // columns)
    fig, axes = plots.figure(rows, columns, width=3.0, height=2.4)
    with plots.style():
        for ax, (task, lines) in zip(axes.flat, per_task.items(), strict=False):
            for i, (algorithm, frames, values) in enumerate(lines):
                centre, low, high = mean_band(values, reps=reps, seed=seed)
                color = plots.COLORS[table.algorithms.index(algorithm) % len(plots.COLORS)]
                style = plots.LINESTYLES[table.algorithms.index(algorithm) % len(plots.LINESTYLES)]
                ax.plot(frames / 1e3, centre, color=color, linestyle=style,
                        label=f"{algorithm} ({len(values)})" if i < 8 else None)  # fmt: skip
                ax.fill_between(frames / 1e3, low, high, color=color, alpha=0.2, lw=0)
            ax.set_title(task)
            ax.set_xlabel("frames (thousands)")
            ax.set_ylabel(metric.split("/")[-1].replace("_", " "))
        for ax in list(axes.flat)[len(per_task) :]:
            ax.set_visible(False)
        axes.flat[0].legend(title="algorithm (runs)")
        fig.suptitle(
            f"{metric}: mean over seeds, shaded 95% bootstrap band (descriptive: coverage not "
            "tested, low with few seeds)",
            fontsize=9,
        )
    return plots.save(fig, path)


def figure_name(metric: str) -> str:
    return "curves_" + metric.replace("/", "_") + ".png"


def write_figures(
    table: ScoreTable, summary: Mapping[str, Any], out: Path, curve_metrics: Sequence[str]
) -> list[str]:
    """Every figure of the report into ``out``; returns their file names."""
    names = []
    if summary["aggregate"]:
        names.append(plot_intervals(summary, Path(out) / "aggregate_intervals.png"))
        names.append(plot_profiles(summary, Path(out) / "performance_profile.png"))
    for metric in curve_metrics:
        name = plot_curves(table, metric, Path(out) / figure_name(metric), seed=summary["seed"])
        if name:
            names.append(name)
    return names


__all__ = ["plot_curves", "plot_intervals", "plot_profiles", "write_figures"]
