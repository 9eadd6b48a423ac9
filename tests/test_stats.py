"""t intervals over seeds: against scipy, and their coverage measured by simulation.

Coverage: the share of simulated experiments whose 95% interval holds the true mean. Every case
draws all its trials at once ([trials, seeds] or [trials, seeds, probes]) and computes their
intervals in one call (seeds on axis 1). Under normal seed effects the t intervals must cover at
least 0.93; the old percentile bootstrap over seeds, under the same harness, must not (at 2 seeds
it covers about half the time), so the harness can tell a bad interval.
"""

import numpy as np
import pytest
from scipy import stats as sps

from tdgen import stats

TRIALS = 4_000  # per case: coverage +-0.0035 (one sd) at 0.95
SEEDS = (2, 3, 5, 10)
FLOOR = 0.93


def covered(interval: stats.Interval, truth: float) -> float:
    return float(np.mean((interval.low <= truth) & (truth <= interval.high)))


def draw(rng, n, mean=0.0, sd=1.0, probes=0, trials=TRIALS):
    """Per trial and seed a seed effect N(mean, sd); with ``probes``, that many probes per seed
    around it (probe noise sd 0.5): [trials, seeds] or [trials, seeds, probes]."""
    effect = rng.normal(mean, sd, size=(trials, n))
    return effect if not probes else effect[..., None] + rng.normal(0, 0.5, (trials, n, probes))


# ---- against scipy ----------------------------------------------------------------------------


def test_t_interval_is_scipys_student_t():
    x = np.array([1.5, 2.5, 3.5, 7.0])
    got = stats.t_interval(x)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (got.estimate, got.n) == (pytest.approx(3.625), 4) and got.df == pytest.approx(3)
    np.testing.assert_allclose([got.low, got.high], [low, high], rtol=1e-12)
    # [1.5, 2.5, 3.5]: 2.5 -+ t(0.975, 2) * 1 / sqrt(3) = 2.5 -+ 2.48414
    three = stats.t_interval([1.5, 2.5, 3.5])
    assert three.low == pytest.approx(0.0158623, abs=1e-6)
    assert three.high == pytest.approx(4.9841377, abs=1e-6)
    ninety = stats.t_interval(x, size=0.9)
    assert ninety.high == pytest.approx(sps.t.interval(0.9, 3, x.mean(), sps.sem(x))[1])


def test_probes_are_averaged_within_each_seed_first():
    nested = stats.t_interval([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]])  # seed means 2, 3, 4
    flat = stats.t_interval([2.0, 3.0, 4.0])
    assert nested == flat and nested.n == 3  # 3 seeds, not 6 samples
    assert stats.seed_values(np.zeros((5, 3, 2)), axis=1).shape == (5, 3)


def test_welch_interval_is_scipys_welch():
    x, y = np.array([7.0, 8.5, 9.0, 12.0]), np.array([3.0, 4.0, 5.5])
    got = stats.welch_interval(x, y)
    ci = sps.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert got.estimate == pytest.approx(x.mean() - y.mean()) and got.n == 3
    np.testing.assert_allclose([got.low, got.high], [ci.low, ci.high], rtol=1e-12)
    a, b = x.var(ddof=1) / 4, y.var(ddof=1) / 3  # Welch-Satterthwaite by hand
    assert got.df == pytest.approx((a + b) ** 2 / (a**2 / 3 + b**2 / 2))


def test_paired_interval_is_scipys_paired_t():
    x, y = np.array([5.0, 6.5, 9.0, 4.0]), np.array([4.0, 4.5, 8.5, 3.5])
    got = stats.paired_interval(x, y)
    ci = sps.ttest_rel(x, y).confidence_interval(0.95)
    np.testing.assert_allclose([got.low, got.high], [ci.low, ci.high], rtol=1e-12)
    assert got == stats.t_interval(x - y)


def test_pooled_interval_over_games_by_hand():
    games = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 12.0]), np.array([5.0, 5.5, 4.0, 6.0])]
    got = stats.pooled_interval(games)
    parts = np.array([g.var(ddof=1) / len(g) / 9 for g in games])  # s_g^2 / n_g / G^2
    dof = np.array([len(g) - 1 for g in games])
    df = parts.sum() ** 2 / np.sum(parts**2 / dof)  # Welch-Satterthwaite
    half = sps.t.ppf(0.975, df) * np.sqrt(parts.sum())
    assert got.estimate == pytest.approx((2.0 + 11.0 + 5.125) / 3) and got.n == 2
    np.testing.assert_allclose([got.low, got.high], got.estimate + np.array([-half, half]))
    assert stats.pooled_interval(games[:1]) == stats.t_interval(games[0])  # one game: Student t
    # The difference of two pooled means; one game each: Welch's interval.
    other = [g + 1.0 for g in games]
    diff = stats.pooled_difference_interval(games, other)
    assert diff.estimate == pytest.approx(-1.0)
    assert diff.df == pytest.approx((2 * parts.sum()) ** 2 / (2 * np.sum(parts**2 / dof)))
    one = stats.pooled_difference_interval(games[:1], other[:1])
    assert one == stats.welch_interval(games[0], other[0])


def test_undefined_zero_width_and_batched():
    one = stats.t_interval([3.0])
    assert one.estimate == 3.0 and np.isnan(one.low) and np.isnan(one.high) and one.n == 1
    assert np.isnan(stats.welch_interval([1.0, 2.0, 3.0], [4.0]).low)  # n < 2 in any group
    assert np.isnan(stats.pooled_interval([np.ones(3), np.ones(1)]).high)
    assert np.isnan(stats.t_interval([]).estimate)
    flat = stats.t_interval(np.full(4, 5.0))
    assert (flat.low, flat.high) == (5.0, 5.0)  # no spread: a point
    assert stats.welch_interval(np.full(3, 5.0), np.full(3, 1.0))[1:3] == (4.0, 4.0)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))  # [batch, seeds, probes]
    batched = stats.t_interval(x, axis=1)
    rows = [stats.t_interval(row) for row in x]
    np.testing.assert_allclose(batched.low, [r.low for r in rows])
    np.testing.assert_allclose(batched.high, [r.high for r in rows])
    with pytest.raises(ValueError, match="size"):
        stats.t_interval([1.0, 2.0], size=1.0)


def test_nested_bootstrap_resamples_seeds_and_probes():
    rng = np.random.default_rng(0)
    # One seed's probes all equal: only the seeds vary, the draws lie within the seed means.
    x = np.array([[1.0, 1.0], [3.0, 3.0]])
    draws = stats.nested_mean_draws([x], 500, rng)
    assert set(np.round(draws, 6)) <= {1.0, 2.0, 3.0}
    # Two tasks pooled: the mean over tasks of each task's mean (0 and 10 -> 5, no spread).
    draws = stats.nested_mean_draws([np.zeros(3), np.full(2, 10.0)], 100, rng)
    np.testing.assert_allclose(draws, 5.0)
    with pytest.raises(ValueError, match="runs"):
        stats.nested_mean_draws([np.zeros((2, 2, 2))], 10, rng)


# ---- coverage by simulation -------------------------------------------------------------------


@pytest.mark.parametrize("probes", [0, 2], ids=["flat", "2 probes"])
@pytest.mark.parametrize("n", SEEDS)
def test_coverage_one_group_and_paired(n, probes):
    rng = np.random.default_rng(100 + n + probes)
    assert covered(stats.t_interval(draw(rng, n, 1.5, probes=probes), axis=1), 1.5) >= FLOOR
    # Paired: two numbers of one run share its seed effect; the test is on their difference.
    shared = draw(rng, n, 0.0, 3.0)
    if probes:
        shared = shared[..., None]
    treated = shared + draw(rng, n, 0.7, 1.0, probes)
    control = shared + draw(rng, n, 0.0, 0.0, probes)
    assert covered(stats.paired_interval(treated, control, axis=1), 0.7) >= FLOOR


@pytest.mark.parametrize("probes", [0, 2], ids=["flat", "2 probes"])
@pytest.mark.parametrize("n", SEEDS)
@pytest.mark.parametrize("sds", [(1.0, 1.0), (1.0, 3.0)], ids=["equal sds", "sds 1 and 3"])
def test_coverage_welch_difference_of_two_groups(n, probes, sds):
    rng = np.random.default_rng(200 + n + probes + int(sds[1]))
    x, y = draw(rng, n, 2.0, sds[0], probes), draw(rng, n, 0.5, sds[1], probes)
    assert covered(stats.welch_interval(x, y, axis=1), 1.5) >= FLOOR


@pytest.mark.parametrize("probes", [0, 2], ids=["flat", "2 probes"])
@pytest.mark.parametrize("n", SEEDS)
def test_coverage_pooled_over_three_games(n, probes):
    rng = np.random.default_rng(300 + n + probes)
    means, sds = (1.0, 4.0, -2.0), (0.5, 1.0, 2.0)
    games = [draw(rng, n, m, s, probes) for m, s in zip(means, sds, strict=True)]
    assert covered(stats.pooled_interval(games, axis=1), np.mean(means)) >= FLOOR
    others = [draw(rng, n, m - 0.5, s, probes) for m, s in zip(means, sds, strict=True)]
    assert covered(stats.pooled_difference_interval(games, others, axis=1), 0.5) >= FLOOR


def spearman_rows(x, y):
    """Spearman's rho along the last axis (continuous data: no ties)."""
    rx, ry = (np.argsort(np.argsort(v, axis=-1), axis=-1).astype(float) for v in (x, y))
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    return (rx * ry).sum(-1) / np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))


def per_seed_rho(rng, shape, points=8):
    """Per seed, rho of x = u + e and y = b u + e' over ``points`` (u, e, e' standard normal),
    with a seed-level signal b ~ N(0.5, 0.5)."""
    b = rng.normal(0.5, 0.5, size=(*shape, 1))
    u = rng.normal(size=(*shape, points))
    return spearman_rows(u + rng.normal(size=u.shape), b * u + rng.normal(size=u.shape))


def test_spearman_rho_agrees_with_scipy():
    x, y = np.random.default_rng(1).normal(size=(2, 8))
    assert spearman_rows(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)


@pytest.fixture(scope="module")
def true_mean_rho():
    """The population mean of per-seed rho, from 1,000,000 simulated seeds (+-0.0004)."""
    return float(np.mean(per_seed_rho(np.random.default_rng(7), (1_000_000,))))


@pytest.mark.parametrize("n", SEEDS)
def test_coverage_mean_of_per_seed_spearman_rho(n, true_mean_rho):
    rng = np.random.default_rng(400 + n)
    rho = per_seed_rho(rng, (10_000, n))  # rho is discrete and skewed: more trials
    assert covered(stats.t_interval(rho, axis=1), true_mean_rho) >= FLOOR


def old_interval(tasks_per_trial, rng):
    """The percentile interval of the two-stage bootstrap the verdicts used (seeds resampled,
    then each drawn seed's probes), per trial."""
    draws = [stats.nested_mean_draws([t], 1_000, rng) for t in tasks_per_trial]
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=1)
    return stats.Interval(None, low, high, tasks_per_trial.shape[1], None)


@pytest.mark.parametrize("probes, most", [(0, 0.6), (2, 0.8)], ids=["flat", "2 probes"])
def test_the_harness_fails_the_old_percentile_bootstrap_at_two_seeds(probes, most):
    rng = np.random.default_rng(500 + probes)
    values = draw(rng, 2, 1.0, probes=probes, trials=2_000)
    old = covered(old_interval(values, rng), 1.0)
    assert old < most < FLOOR  # flat: about one half (the interval is the two seeds' range)
    assert covered(stats.t_interval(values, axis=1), 1.0) >= FLOOR


def test_seeds_to_decide_is_where_the_expected_half_width_meets_the_distance():
    # Student t, sd 1 over 4 seeds (se 0.5, df 3), effect 0.5 from the threshold: the fewest m
    # with t(0.975, m - 1) / sqrt(m) < 0.5 is 18 (t_16 = 2.120: 2.120 / sqrt(17) = 0.514).
    assert stats.seeds_to_decide(0.5, 3.0, 4, 0.5) == 18
    m = 18
    assert sps.t.ppf(0.975, m - 1) / np.sqrt(m) < 0.5 < sps.t.ppf(0.975, m - 2) / np.sqrt(m - 1)
    assert stats.standard_error(-1.0, 1.0, 3.0) == pytest.approx(1 / sps.t.ppf(0.975, 3))
    assert stats.seeds_to_decide(0.0, float("nan"), 3, 0.1) == 2  # no spread: 2 seeds decide
    assert stats.seeds_to_decide(0.5, float("nan"), 1, 1.0) is None  # one seed: no spread seen
    assert stats.seeds_to_decide(0.5, 3.0, 4, 0.0) is None  # on the threshold: never
    assert stats.seeds_to_decide(1.0, 3.0, 4, 1e-3) is None  # beyond 1,000 seeds


def test_at_the_planned_seed_count_about_half_the_reruns_decide():
    # Truth: sd 1, mean 0.5 above the threshold 0. Planned from the true spread at 4 seeds.
    m = stats.seeds_to_decide(0.5, 3.0, 4, 0.5)
    rng = np.random.default_rng(3)
    found = stats.t_interval(rng.normal(0.5, 1.0, size=(4_000, m)), axis=1)
    decided = np.mean(found.low > 0)
    assert 0.4 < decided < 0.65  # a planning figure: about half decide, not nearly all
    fewer = stats.t_interval(rng.normal(0.5, 1.0, size=(4_000, 4)), axis=1)
    assert np.mean(fewer.low > 0) < 0.2
