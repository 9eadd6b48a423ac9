"""Probes: shapes, integer update ranks in [1, k], determinism from the state, both agents."""

import jax
import numpy as np
import pytest

from tdgen.agents import build_agent, make_value_probe
from tdgen.agents.probes import VALUE
from tdgen.agents.value_based.c51 import C51Config
from tdgen.agents.value_based.dqn import DQNConfig

pytestmark = pytest.mark.slow


def plain_rank(A, eps=0.1):
    """Update rank (Appendix B.1): singular values above eps times the largest."""
    s = np.linalg.svd(np.asarray(A, np.float64), compute_uv=False)
    return int(np.sum(s > eps * s[0]))


@pytest.mark.parametrize("cls", [DQNConfig, C51Config])
def test_probe_shapes_and_ranks(cls, make_config, tmp_path):
    # the C51 probe goes through the MinAtar CNN (im2col), the DQN one through the MLP
    extra = {"num_atoms": 11, "encoder": "minatar"} if cls is C51Config else {}
    config = make_config(cls, probe_k=12, probe_draws=2, **extra)
    agent = build_agent("c51" if cls is C51Config else "dqn", config)
    state = jax.jit(lambda s: agent.segment(s, 30))(agent.init())
    probe = make_value_probe(agent)
    result = probe(state)
    assert result.matrices[VALUE].shape == (2, 12, 12) and result.matrices_random[VALUE].shape == (
        2,
        12,
        12,
    )
    assert result.indices.shape == (2, 12)
    assert all(len(set(row)) == 12 for row in result.indices.tolist())  # distinct transitions
    for rank, matrices in ((result.update_rank, result.matrices[VALUE]),
                           (result.update_rank_random, result.matrices_random[VALUE])):  # fmt: skip
        assert 1 <= rank <= 12 and 2 * rank == int(2 * rank)  # a mean of two integers
        assert rank == np.mean([plain_rank(A) for A in matrices])  # eps = 0.1, numpy's SVD
    assert np.isfinite(result.matrices[VALUE]).all() and np.abs(result.matrices[VALUE]).max() > 0
    # the probe is a function of the state alone: the same state gives the same matrices
    again = probe(state)
    np.testing.assert_array_equal(again.matrices[VALUE], result.matrices[VALUE])
    path = result.save(tmp_path)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["update_matrix"], result.matrices[VALUE])
        assert float(saved["update_rank"]) == result.update_rank


def test_probe_waits_for_k_transitions(make_config):
    agent = build_agent("dqn", make_config(probe_k=64))
    state = agent.init()
    state = state.replace(replay=state.replay.replace(filled=state.replay.filled + 15))
    assert make_value_probe(agent)(state) is None  # 60 < 64 transitions stored
