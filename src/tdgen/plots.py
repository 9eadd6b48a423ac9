"""One matplotlib style for every tdgen figure: labelled, colour-blind safe, readable in greyscale.

Wrap plotting code in `with plots.style():` (matplotlib reads most settings when an artist is made),
get axes from `figure(...)` and write a PNG with `save(fig, path)`. Lines cycle through colours *and*
dash patterns together, so curves stay distinguishable when printed in grey.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

# Okabe-Ito palette (colour-blind safe), ordered so that neighbours differ in lightness.
COLORS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "image.cmap": "viridis",
    "axes.prop_cycle": cycler(color=COLORS) + cycler(linestyle=LINESTYLES),
}

# A diverging map for signed quantities (errors, update matrices), centred with vmin=-vmax.
DIVERGING_CMAP = "RdBu_r"


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 3.2, height: float = 2.6, **kwargs):
    """A styled figure with an `nrows x ncols` grid of axes of `width x height` inches each."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs
        )
    for ax in axes.flat:
        ax.set_prop_cycle(STYLE["axes.prop_cycle"])
    return fig, axes


def save(fig, path: str | Path) -> str:
    """Write the figure as PNG, close it, and return the file name (for `Outcome.figures`)."""
    path = Path(path)
    with plt.rc_context(STYLE):
        fig.tight_layout()
        fig.savefig(path)
    plt.close(fig)
    return path.name


def style():
    """A context manager applying the tdgen style to any plotting code inside it."""
    return plt.rc_context(STYLE)


def seed_band(ax, frames, values, *, scale: float = 1e3, alpha: float = 0.18, **style):
    """Plot the mean over seeds with a min-max band at every frame any seed logged.

    ``frames[i]`` and ``values[i]`` are seed i's series. Seeds may log at different frames or
    not at all (a return exists only where an episode ended, so a short run has ragged or empty
    series): each frame's statistics use the seeds that logged there. Draws nothing and returns
    None when no seed logged; otherwise returns the mean's line."""
    by_frame: dict[float, list[float]] = {}
    for xs, ys in zip(frames, values, strict=True):
        for x, y in zip(xs, ys, strict=True):
            by_frame.setdefault(float(x), []).append(float(y))
    if not by_frame:
        return None
    x = np.array(sorted(by_frame))
    groups = [np.asarray(by_frame[f]) for f in x]
    (line,) = ax.plot(x / scale, [g.mean() for g in groups], **style)
    ax.fill_between(x / scale, [g.min() for g in groups], [g.max() for g in groups],
                    color=line.get_color(), alpha=alpha)  # fmt: skip
    return line
