"""Generalisation gap (Eq. 6): sign convention, standard errors by hand, paired differences."""

import jax
import numpy as np
import pytest

from tdgen.evaluate import generalization_gap


def test_gap_is_train_minus_test_with_independent_errors():
    train, test = np.array([10.0, 12.0, 11.0, 9.0]), np.array([4.0, 6.0])
    result = generalization_gap(train, test)
    assert result.gap == pytest.approx(10.5 - 5.0)  # positive: worse on the test levels
    se_train = np.std(train, ddof=1) / 2
    se_test = np.std(test, ddof=1) / np.sqrt(2)
    assert result.train_stderr == pytest.approx(se_train)
    assert result.test_stderr == pytest.approx(se_test)
    assert result.gap_stderr == pytest.approx(np.hypot(se_train, se_test))
    assert generalization_gap(test, train).gap == pytest.approx(-5.5)


def test_paired_gap_uses_per_seed_differences():
    """Seeds differ a lot in level but each loses exactly 2 on test levels: the gap is certain."""
    train = np.array([1.0, 50.0, 100.0])
    result = generalization_gap(train, train - 2.0, paired=True)
    assert result.gap == pytest.approx(2.0)
    assert result.gap_stderr == pytest.approx(0.0, abs=1e-5)
    assert generalization_gap(train, train - 2.0).gap_stderr > 20.0
    assert result.as_dict()["paired"] is True


def test_single_value_has_no_error_and_runs_under_jit():
    result = jax.jit(generalization_gap)(np.array([3.0]), np.array([1, 2]))
    assert result.gap == pytest.approx(1.5)
    assert np.isnan(result.train_stderr) and np.isnan(result.gap_stderr)


@pytest.mark.parametrize(
    ("train", "test", "paired", "message"),
    [
        ([], [1.0], False, "train_returns must be a non-empty 1-D array"),
        ([1.0], [[1.0]], False, "test_returns must be a non-empty 1-D array"),
        ([1.0, 2.0], [1.0], True, "paired returns need equal lengths"),
    ],
)
def test_bad_input_raises_one_clear_line(train, test, paired, message):
    with pytest.raises(ValueError, match=message) as error:
        generalization_gap(train, test, paired=paired)
    assert "\n" not in str(error.value)
