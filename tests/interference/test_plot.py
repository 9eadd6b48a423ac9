"""Heatmap and spectrum figures render headless, with labelled axes and readable order."""

import numpy as np
import pytest

from tdgen.interference import plot_singular_values, plot_update_matrix
from tdgen.interference.plot import cluster_order


def block_matrix(seed=0):
    """Two groups of states that interfere within the group only, shuffled."""
    rng = np.random.default_rng(seed)
    A = np.kron(np.eye(2), np.ones((5, 5))) + 0.01 * rng.normal(size=(10, 10))
    perm = rng.permutation(10)
    return A[np.ix_(perm, perm)], perm


def test_cluster_order_groups_blocks():
    A, perm = block_matrix()
    group = (perm >= 5)[cluster_order(A)]
    assert np.sum(group[1:] != group[:-1]) == 1  # one boundary between the two blocks


def test_figures_render(tmp_path):
    A, _ = block_matrix()
    fig = plot_update_matrix(A, title="test")
    ax = fig.axes[0]
    assert "state" in ax.get_xlabel() and "transition" in ax.get_ylabel()
    fig.savefig(tmp_path / "heatmap.png")
    fig = plot_singular_values(A, eps=0.1)
    assert "singular value" in fig.axes[0].get_ylabel()
    assert "update rank 2" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig.savefig(tmp_path / "spectrum.png")
    assert (tmp_path / "heatmap.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown order"):
        plot_update_matrix(A, order="sorted")
