"""Figure 5's robustness and interpolation panels: one line per agent, one panel per metric.

Each agent maps to one result or to a sequence of them (seeds): a sequence is drawn as its mean
with a band of one standard error. Figures come from `tdgen.plots`; write them with `plots.save`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from tdgen import plots
from tdgen.errors import InputError
from tdgen.evaluate.interpolation import InterpolationConsistency
from tdgen.evaluate.robustness import Robustness

ROBUSTNESS_LABELS = {
    "action_agreement": "greedy-action agreement",
    "policy_l1": r"policy $\ell_1$ distance",
    "standardized_l1": r"standardised policy $\ell_1$ distance",
}
INTERPOLATION_LABELS = {
    "either": "action of a or of b",
    "equals_a": "action of a",
    "equals_b": "action of b",
}
NOISE_LABEL = r"noise scale $\sigma$ (network input units)"


def plot_robustness(
    results_by_agent: Mapping[str, Robustness | Sequence[Robustness]],
    *,
    metrics: Sequence[str] = tuple(ROBUSTNESS_LABELS),
    xlabel: str = NOISE_LABEL,
    title: str | None = None,
) -> Figure:
    """Agreement and l1 distances against sigma (Figure 5), a panel per metric, a line per agent.

    Pass e.g. xlabel=r"$\\sigma$ (pixel intensity, [0, 1])" to name the units of an environment.
    """
    seeds = _by_agent(results_by_agent, Robustness, "scales")
    metrics = _metrics(metrics, ROBUSTNESS_LABELS)
    temperatures = {r.temperature for runs in seeds.values() for r in runs}
    if "policy_l1" in metrics and len(temperatures) > 1:
        raise InputError(f"policy_l1 was measured at different temperatures {sorted(temperatures)}")
    fig = _panels(seeds, "scales", metrics, ROBUSTNESS_LABELS, xlabel)
    for ax, metric in zip(fig.axes, metrics, strict=True):
        if metric == "action_agreement":
            ax.set_ylim(0.0, 1.02)
        else:
            ax.set_ylim(bottom=0.0)
        if metric == "policy_l1":
            ax.set_ylabel(rf"{ROBUSTNESS_LABELS[metric]} (T = {temperatures.pop():g})")
    return _titled(fig, title)


def plot_interpolation(
    results_by_agent: Mapping[str, InterpolationConsistency | Sequence[InterpolationConsistency]],
    *,
    metrics: Sequence[str] = tuple(INTERPOLATION_LABELS),
    title: str | None = None,
) -> Figure:
    """Fraction of pairs whose action at (1 - w) a + w b matches, against w (Figure 5)."""
    seeds = _by_agent(results_by_agent, InterpolationConsistency, "weights")
    metrics = _metrics(metrics, INTERPOLATION_LABELS)
    xlabel = r"mixing weight $w$ in $(1 - w)\,a + w\,b$"
    fig = _panels(seeds, "weights", metrics, INTERPOLATION_LABELS, xlabel)
    for ax, metric in zip(fig.axes, metrics, strict=True):
        ax.set_ylim(0.0, 1.02)
        ax.set_ylabel(f"fraction of pairs: {INTERPOLATION_LABELS[metric]}")
    return _titled(fig, title)


def _by_agent(results_by_agent, kind, x_field) -> dict[str, list]:
    """Each agent's results as a list (one per seed), checked to be `kind` sharing x values."""
    if not results_by_agent:
        raise InputError("results_by_agent is empty: give at least one agent's results")
    seeds = {}
    for agent, results in results_by_agent.items():
        runs = list(results) if isinstance(results, list | tuple) else [results]
        if not runs or not all(isinstance(r, kind) for r in runs):
            raise InputError(
                f"agent {agent!r}: expected a {kind.__name__} or a non-empty list of them"
            )
        x = np.asarray(getattr(runs[0], x_field))
        if any(not np.array_equal(np.asarray(getattr(r, x_field)), x) for r in runs[1:]):
            raise InputError(f"agent {agent!r}: seeds were measured at different {x_field}")
        seeds[agent] = runs
    return seeds


def _metrics(metrics, labels) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in labels]
    if unknown or not metrics:
        raise InputError(f"unknown metrics {unknown} (expected some of {', '.join(labels)})")
    return metrics


def _panels(seeds, x_field, metrics, labels, xlabel) -> Figure:
    """One panel per metric; per agent the mean over seeds, with a standard-error band."""
    with plots.style():
        fig, axes = plots.figure(1, len(metrics))
        for ax, metric in zip(axes.flat, metrics, strict=True):
            for agent, runs in seeds.items():
                x = np.asarray(getattr(runs[0], x_field))
                ys = np.stack([np.asarray(getattr(r, metric), dtype=np.float64) for r in runs])
                mean = ys.mean(axis=0)
                (line,) = ax.plot(x, mean, marker=".", label=agent)
                if len(runs) > 1:
                    se = ys.std(axis=0, ddof=1) / np.sqrt(len(runs))
                    ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(labels[metric])
        axes[0, 0].legend()
    return fig


def _titled(fig: Figure, title: str | None) -> Figure:
    if title:
        fig.suptitle(title)
    return fig
