"""Evaluations kept in the run: a rerun reads them back bit for bit; any change evaluates afresh."""

import json
import shutil

import jax
import numpy as np
import pytest

from tdgen import policies
from tdgen.policies import (
    EVALUATIONS,
    PolicyEvaluation,
    cached_evaluation,
    evaluate_policy,
    load_policy,
    visited_states,
)
from tdgen.runs.checkpoint import checkpoint_path, complete_checkpoints, marker_path

pytestmark = pytest.mark.slow  # evaluates the shared DQN teacher (tests/distill/conftest.py)

SETTINGS = dict(seed=3, num_states=64, eval_envs=4, eval_steps=50)


@pytest.fixture
def run(dqn_teacher, tmp_path):
    copy = tmp_path / "dqn"
    shutil.copytree(dqn_teacher, copy)
    return copy


def forbid_evaluating(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("evaluated although the cache holds the result")

    monkeypatch.setattr(policies, "load_policy", refuse)
    monkeypatch.setattr(policies, "evaluate_policy", refuse)


def assert_same(a, b):
    assert a.returns == b.returns and a.num_states == b.num_states and a.policy == b.policy
    for part in ("robustness", "interpolation"):
        for x, y in zip(jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part)),
                        strict=True):  # fmt: skip
            assert np.asarray(x).dtype == np.asarray(y).dtype
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_rerun_reads_the_evaluation_back_bit_for_bit_without_loading(run, monkeypatch):
    first = cached_evaluation(run, **SETTINGS)
    assert_same(first, evaluate_policy(load_policy(run), **SETTINGS))
    assert len(list((run / EVALUATIONS).glob("*.json"))) == 1
    forbid_evaluating(monkeypatch)
    assert_same(cached_evaluation(run, **SETTINGS), first)


def test_a_new_setting_states_or_checkpoint_evaluates_afresh(run, monkeypatch):
    states = visited_states(load_policy(run), 32, jax.random.PRNGKey(0))
    cached_evaluation(run, **SETTINGS)
    cached_evaluation(run, states=states, **SETTINGS)
    older = complete_checkpoints(run / "checkpoints")[0]
    cached_evaluation(run, frames=older, **SETTINGS)
    assert len(list((run / EVALUATIONS).glob("*.json"))) == 3
    forbid_evaluating(monkeypatch)
    cached_evaluation(run, states=states, **SETTINGS)  # the same states: kept
    with pytest.raises(AssertionError, match="evaluated although"):
        cached_evaluation(run, **{**SETTINGS, "seed": 4})
    with pytest.raises(AssertionError, match="evaluated although"):
        cached_evaluation(run, states=states.at[0, 0, 0, 0].add(1.0), **SETTINGS)
    newest = checkpoint_path(run / "checkpoints", complete_checkpoints(run / "checkpoints")[-1])
    marker_path(newest).write_text("0" * 64)  # the run was trained again: other bytes
    with pytest.raises(AssertionError, match="evaluated although"):
        cached_evaluation(run, **SETTINGS)


def test_a_damaged_entry_is_evaluated_again_and_replaced(run):
    first = cached_evaluation(run, **SETTINGS)
    (entry,) = (run / EVALUATIONS).glob("*.json")
    entry.write_text('{"returns": {"train": 1.0}')  # cut short
    assert_same(cached_evaluation(run, **SETTINGS), first)
    assert_same(PolicyEvaluation.from_record(json.loads(entry.read_text())), first)
