"""The claims of `interventions_vs_interference`, as rules on per-seed numbers (no training).

Each rule takes arrays whose first axis is the seed (the unit of every interval, `tdgen.stats`)
and returns a `Claim` whose verdict is held, did not hold or inconclusive; fewer than 2 seeds
give no interval and an inconclusive verdict. The rules are stated in the experiment's docstring
and repeated in each claim's statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from tdgen import stats
from tdgen.experiments.base import HELD, INCONCLUSIVE, NOT_HELD, Claim
from tdgen.experiments.verdicts import Check, mean_test

ALPHA = 0.05  # family-wise error rate of the return comparisons (Holm)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (Holm 1979): sorted ascending, p~_(i) = max_{j <= i}
    min(1, (m - j + 1) p_(j)); a NaN p-value stays NaN and counts in m."""
    names = list(p_values)
    p = np.array([p_values[n] for n in names], float)
    m = len(p)
    order = np.argsort(np.where(np.isfinite(p), p, np.inf), kind="stable")
    adjusted = np.full(m, np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        if not np.isfinite(p[i]):
            continue
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return {n: float(a) for n, a in zip(names, adjusted, strict=True)}


def welch_p(x, y, alternative: str) -> float:
    """One-sided Welch t-test p-value of mean(x) - mean(y) ("greater" or "less"); NaN with fewer
    than 2 seeds in a group; 0 or 1 by the sign when neither group varies."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        diff = x.mean() - y.mean()
        if diff == 0:
            return 1.0
        return 0.0 if (diff > 0) == (alternative == "greater") else 1.0
    return float(scipy_stats.ttest_ind(x, y, equal_var=False, alternative=alternative).pvalue)


def dead_units_claim(baseline: Any, redo: Any) -> Claim:
    """(a) ReDo minus baseline of the late fraction of dead units (tau = 0), paired by seed:
    held when the 95% t interval of the mean difference lies below 0."""
    baseline, redo = np.asarray(baseline, float), np.asarray(redo, float)
    check = mean_test(redo - baseline, "<", 0.0)
    return Claim.measured(
        "redo_lowers_dead_units",
        "ReDo lowers the late fraction of dead units (dynamics/dormant_0, tau = 0; not only the "
        "tau = 0.025 fraction it recycles) against the baseline DQN: ReDo minus baseline per seed "
        "(paired by seed), mean with a 95% t interval over seeds below 0 (held), at or above 0 "
        "(did not hold), straddling 0 (inconclusive).",
        {"redo - baseline": check},
        {"baseline": baseline, "redo": redo},
    )


def rank_gap_claim(critic_rank: Mapping[str, Any], gap: Mapping[str, Any]) -> Claim:
    """(b) Per seed, Spearman rho across the intervention cells of the critic's late update rank
    with the generalisation gap; held when the 95% t interval of the mean rho lies above 0.
    ``critic_rank[cell]``, ``gap[cell]``: per seed [seeds]."""
    cells = [c for c in critic_rank if c in gap]
    ranks = np.array([np.asarray(critic_rank[c], float) for c in cells])  # [cells, seeds]
    gaps = np.array([np.asarray(gap[c], float) for c in cells])
    rho = [stats.spearman(ranks[:, s], gaps[:, s]) for s in range(ranks.shape[1] if cells else 0)]
    defined = np.array([r for r in rho if np.isfinite(r)])
    check = mean_test(defined if len(defined) else np.array([np.nan]), ">", 0.0)
    return Claim.measured(
        "critic_update_rank_tracks_generalisation_gap",
        f"Across the {len(cells)} PPO cells (baseline and interventions), the critic's late update "
        "rank and the generalisation gap (train - test return, Eq. 6) are positively "
        "rank-correlated: Spearman rho across cells per seed, mean with a 95% t interval over "
        "the seeds whose rho is defined above 0 (held), at or below 0 (did not hold), "
        "straddling 0 (inconclusive).",
        {"spearman rho": check},
        {"per_seed_rho": rho, "cells": cells},
    )


def distillation_claim(student: Any, interventions: Mapping[str, Any]) -> Claim:
    """(c) Some intervention's final update rank as low as the distilled student's: held when some
    intervention's seed-mean lies at or below the upper end of the student's 95% t interval; did
    not hold when every intervention's own 95% t interval lies wholly above it; else (or without
    a student interval) inconclusive."""
    student = np.asarray(student, float)
    found = stats.t_interval(student)
    upper = float(found.high)
    checks = {c: mean_test(np.asarray(v, float), "<", upper) for c, v in interventions.items()}
    means = {c: float(np.mean(v)) for c, v in interventions.items()}
    if not np.isfinite(upper) or not checks:
        verdict = INCONCLUSIVE
    elif any(m <= upper for m in means.values()):
        verdict = HELD
    elif all(np.isfinite(k.low) and k.low > upper for k in checks.values()):
        verdict = NOT_HELD
    else:
        verdict = INCONCLUSIVE
    inside = sorted(c for c, m in means.items() if np.isfinite(upper) and m <= upper)
    return Claim(
        "some_intervention_matches_distillation_rank",
        "Some intervention lowers DQN's final update rank as much as distillation does: the "
        "baseline run is the teacher and fig11's Q-regression student distils it; held when some "
        "intervention's seed-mean final rank lies at or below the upper end of the student's 95% "
        "t interval over seeds, did not hold when every intervention's 95% t interval lies wholly "
        "above it, inconclusive otherwise.",
        verdict == HELD,
        {"student_interval": [found.estimate, found.low, found.high],
         "intervention_means": means, "at_or_below_student": inside},
        checks,
        verdict,
    )  # fmt: skip


def rliable_summary(baseline: Any, cell: Any, reps: int = 2_000, seed: int = 0) -> dict[str, Any]:
    """IQM of each and the probability of improvement P(cell > baseline), with stratified
    bootstrap percentile intervals (rliable's, `tdgen.stats`); one task (the game)."""
    base, x = [np.asarray(baseline, float)], [np.asarray(cell, float)]
    iqm = stats.stratified_bootstrap(stats.iqm, x, reps=reps, seed=seed)
    poi = stats.stratified_bootstrap(stats.probability_of_improvement, x, base, reps=reps,
                                     seed=seed)  # fmt: skip
    return {"iqm": [float(v) for v in iqm], "probability_of_improvement": [float(v) for v in poi]}


def returns_claim(baseline: Any, cells: Mapping[str, Any], alpha: float = ALPHA) -> Claim:
    """(d) Some intervention improves the final return over the baseline: one-sided Welch t-test
    per intervention, Holm-corrected over the m comparisons; held when some adjusted p < alpha;
    did not hold when every intervention is lower than the baseline (each one-sided test of
    "lower" at alpha: an intersection-union test, which needs no correction); else inconclusive.
    IQM and probability of improvement (rliable) are reported beside the test."""
    baseline = np.asarray(baseline, float)
    better = {c: welch_p(v, baseline, "greater") for c, v in cells.items()}
    worse = {c: welch_p(v, baseline, "less") for c, v in cells.items()}
    adjusted = holm(better)
    if any(p < alpha for p in adjusted.values() if np.isfinite(p)):
        verdict = HELD
    elif cells and all(np.isfinite(p) and p < alpha for p in worse.values()):
        verdict = NOT_HELD
    else:
        verdict = INCONCLUSIVE
    checks: dict[str, Check] = {
        f"{c} - baseline": mean_test(np.asarray(v, float), ">", 0.0, minus=baseline)
        for c, v in cells.items()
    }
    evidence = {
        "comparisons": len(cells), "alpha": alpha, "p_improve": better,
        "p_improve_holm": adjusted, "p_lower": worse,
        "baseline_iqm": rliable_summary(baseline, baseline)["iqm"],
        "rliable": {c: rliable_summary(baseline, v) for c, v in cells.items()},
    }  # fmt: skip
    return Claim(
        "some_intervention_improves_return",
        f"Some intervention improves DQN's final return over the baseline: {len(cells)} "
        f"intervention-baseline comparisons, each a one-sided Welch t-test over seeds, "
        f"Holm-corrected at family-wise alpha = {alpha}; held when some adjusted p < {alpha}, "
        f"did not hold when every intervention's return is lower (each one-sided test at "
        f"{alpha}), inconclusive otherwise. IQM and probability of improvement with stratified "
        "bootstrap intervals (rliable) are in the evidence.",
        verdict == HELD,
        evidence,
        checks,
        verdict,
    )


__all__ = ["ALPHA", "dead_units_claim", "distillation_claim", "holm", "rank_gap_claim",
           "returns_claim", "rliable_summary", "welch_p"]  # fmt: skip
