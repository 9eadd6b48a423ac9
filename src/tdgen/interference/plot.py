"""Heatmaps of update matrices (paper Figures 3 and 12) and their singular-value spectra.

Figures are built with matplotlib's object API (no pyplot, no global backend state), so they render
headless; save them with `fig.savefig(path)`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import leaves_list, linkage

from tdgen.errors import InputError

ORDERS = ("cluster", "none")


def cluster_order(A) -> np.ndarray:
    """A permutation of the rows of A grouping similar rows (average-linkage clustering).

    Appendix D.2: states are "assigned an index based on the output of a clustering algorithm to
    improve readability". Rows are compared by Euclidean distance after scaling each to unit norm,
    so rows that move the same states together sit side by side whatever their magnitude.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.shape[0] < 3:
        return np.arange(A.shape[0])
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    rows = A / np.where(norms > 0, norms, 1.0)
    return leaves_list(linkage(rows, method="average", metric="euclidean"))


def plot_update_matrix(A, order: str = "cluster", *, title: str | None = None, ax=None):
    """Heatmap of A[i, j] (row: updated transition, column: evaluated state); returns the Figure.

    order="cluster" permutes rows by `cluster_order`, and columns by the same permutation when A
    is square (rows and columns then index the same states, keeping the diagonal). The colour
    scale is symmetric about zero: red raises the state's value, blue lowers it.
    """
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r} (expected one of {', '.join(ORDERS)})")
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or 0 in A.shape:
        raise InputError(f"expected a non-empty 2-D update matrix, got shape {A.shape}")
    if order == "cluster":
        rows = cluster_order(A)
        cols = rows if A.shape[0] == A.shape[1] else np.arange(A.shape[1])
        A = A[np.ix_(rows, cols)]
    fig, ax = _figure(ax, (4.2, 3.6))
    limit = float(np.max(np.abs(A))) or 1.0
    image = ax.imshow(A, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=ax, label=r"$A_{ij} = v_{\theta_i}(x_j) - v_\theta(x_j)$")
    suffix = " (clustered order)" if order == "cluster" else ""
    ax.set_xlabel(f"evaluated state j{suffix}")
    ax.set_ylabel(f"updated transition i{suffix}")
    if title:
        ax.set_title(title)
    return fig


def plot_singular_values(A, eps: float = 0.1, *, title: str | None = None, ax=None):
    """Normalised singular values sigma_i / sigma_1 (log scale) with the eps threshold marked.

    A: an update matrix [k, m]. Returns the matplotlib Figure (that of `ax` when given).
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or 0 in A.shape:
        raise InputError(f"expected a non-empty 2-D update matrix, got shape {A.shape}")
    s = np.linalg.svd(A, compute_uv=False)
    s = s / (s[0] if s[0] > 0 else 1.0)
    rank = int(np.sum(s > eps))
    fig, ax = _figure(ax, (4.2, 3.2))
    index = np.arange(1, len(s) + 1)
    ax.semilogy(index, np.maximum(s, 1e-12), "k.-", markersize=3, linewidth=1)
    ax.axhline(
        eps,
        color="0.4",
        linestyle="--",
        linewidth=1,
        label=rf"threshold $\epsilon$ = {eps:g}: update rank {rank}",
    )
    ax.set_xlabel("index i (largest first)")
    ax.set_ylabel(r"singular value $\sigma_i / \sigma_1$")
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def _figure(ax, size):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()
