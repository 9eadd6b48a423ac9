"""rliable's statistics against hand computations and plainly written references."""

import numpy as np
import pytest

from tdgen.sweep import aggregate as agg


def one(scores):
    """Per-task arrays with a batch axis of one."""
    return [np.asarray(x, dtype=float)[None] for x in scores]


def test_iqm_by_hand():
    # Pooled, sorted: 1 2 3 4 10 20 30 40; floor(8 / 4) = 2 dropped at each end: (3+4+10+20)/4.
    assert agg.iqm(one([[1, 2, 3, 4], [10, 20, 30, 40]]))[0] == pytest.approx(9.25)
    # Six scores: floor(6 / 4) = 1 dropped at each end (scipy.stats.trim_mean, as rliable).
    assert agg.iqm(one([[0, 1, 2], [3, 4, 100]]))[0] == pytest.approx(2.5)


def test_mean_median_gap_profile_and_improvement_by_hand():
    scores = one([[1, 3], [10, 20], [0, 0]])  # task means 2, 15, 0
    assert agg.mean(scores)[0] == pytest.approx(17 / 3)
    assert agg.median(scores)[0] == pytest.approx(2.0)
    assert agg.optimality_gap(one([[0.5, 1.5], [0.0, 0.8]]))[0] == pytest.approx(1 - 2.3 / 4)
    profile = agg.performance_profile(one([[0.1, 0.5], [0.9]]), np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(profile[0], [1.0, 1 / 3, 0.0])
    # Task 1: pairs (1,2) (1,0) (2,2) (2,0) -> 0, 1, 1/2, 1 = 0.625; task 2: 5 > 3 -> 1.
    p = agg.probability_of_improvement(one([[1, 2], [5]]), one([[2, 0], [3]]))
    assert p[0] == pytest.approx((0.625 + 1.0) / 2)


def test_stratified_bootstrap_interval_by_hand():
    # Two runs per task: task A {0, 1}, task B {2, 4}. A stratified resample keeps two scores of
    # each task, so the IQM (middle two of four) is (max of A's draw + min of B's draw) / 2:
    # max_A = 0 w.p. 1/4 else 1, min_B = 4 w.p. 1/4 else 2, hence
    # P(IQM = 1) = 3/16, P(1.5) = 9/16, P(2) = 1/16, P(2.5) = 3/16.
    # The 2.5% quantile is 1 and the 97.5% quantile is 2.5 (each end holds 18.75%).
    point, low, high = agg.stratified_bootstrap(agg.iqm, [[0.0, 1.0], [2.0, 4.0]], reps=4_000)
    assert (float(point), float(low), float(high)) == (1.5, 1.0, 2.5)
    # The resampled IQMs follow the distribution above.
    draws = agg.iqm(agg.resample([[0.0, 1.0], [2.0, 4.0]], 20_000, np.random.default_rng(1)))
    frequencies = [np.mean(draws == v) for v in (1.0, 1.5, 2.0, 2.5)]
    np.testing.assert_allclose(frequencies, [3 / 16, 9 / 16, 1 / 16, 3 / 16], atol=0.01)


def test_resampling_is_within_tasks():
    # All of task A is 0 and all of task B is 10: every stratified resample holds two of each, so
    # the IQM never moves (a bootstrap over pooled runs would).
    point, low, high = agg.stratified_bootstrap(agg.iqm, [[0.0, 0.0], [10.0, 10.0]], reps=500)
    assert float(point) == float(low) == float(high) == 5.0


def test_batched_bootstrap_equals_a_plain_loop():
    tasks = [np.array([3.0, 1.0, 7.0, 2.0]), np.array([10.0, 12.0, 9.0]), np.array([5.0, 4.0])]
    reps, seed = 300, 7
    _, low, high = agg.stratified_bootstrap(agg.iqm, tasks, reps=reps, seed=seed)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(x), size=(reps, len(x))) for x in tasks]
    reference = []
    for r in range(reps):
        pooled = sorted(v for x, p in zip(tasks, picks, strict=True) for v in x[p[r]])
        cut = len(pooled) // 4
        reference.append(sum(pooled[cut : len(pooled) - cut]) / (len(pooled) - 2 * cut))
    assert float(low) == pytest.approx(np.percentile(reference, 2.5))
    assert float(high) == pytest.approx(np.percentile(reference, 97.5))


def test_comparison_resamples_each_algorithm():
    point, low, high = agg.stratified_bootstrap(
        agg.probability_of_improvement, [[1.0, 2.0]], [[0.0, 0.0]], reps=200
    )
    assert float(point) == float(low) == float(high) == 1.0


def test_normalise_and_observed_bounds():
    scores = {"dqn": {"a": np.array([0.0, 10.0])}, "c51": {"a": np.array([5.0])}}
    bounds = agg.observed_bounds(scores)
    assert bounds == {"a": (0.0, 10.0)}
    normalised = agg.normalise(scores, bounds)
    np.testing.assert_allclose(normalised["dqn"]["a"], [0.0, 1.0])
    np.testing.assert_allclose(normalised["c51"]["a"], [0.5])
    with pytest.raises(ValueError, match=r"no normalisation bounds for tasks \['a'\]"):
        agg.normalise(scores, {"b": (0.0, 1.0)})


def test_mean_band_brackets_the_mean():
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
    centre, low, high = agg.mean_band(curves, reps=500)
    np.testing.assert_allclose(centre, [1.0, 2.0, 3.0])
    assert np.all(low <= centre) and np.all(centre <= high)
    np.testing.assert_allclose(low, curves[0]) and np.testing.assert_allclose(high, curves[1])


def test_the_statistics_live_in_tdgen_stats_and_are_reexported():
    from tdgen import stats

    assert set(agg.__all__) == {
        "STATISTICS", "iqm", "mean", "mean_band", "median", "nested_mean_draws", "normalise",
        "observed_bounds", "optimality_gap", "performance_profile", "probability_of_improvement",
        "resample", "stratified_bootstrap",
    }  # fmt: skip
    for name in set(agg.__all__) - {"normalise", "observed_bounds"}:
        assert getattr(agg, name) is getattr(stats, name), name
