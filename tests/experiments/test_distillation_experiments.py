"""Claim checks of Figures 5, 6 and 11 hold with the effect and fail without it."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from tdgen.evaluate import InterpolationConsistency, Robustness
from tdgen.experiments import fig5_distillation_robustness as fig5
from tdgen.experiments import fig6_policy_distillation_generalization as fig6
from tdgen.experiments import fig11_value_distillation_objectives as fig11
from tdgen.policies import PolicyEvaluation

pytestmark = pytest.mark.slow

SCALES = np.array([0.0, 0.1, 0.5])


def _evaluation(agreement, either, ret):
    rob = Robustness(SCALES, np.array([1.0, agreement, agreement - 0.2]), np.array([0, 0.1, 0.3]),
                     np.array([0, 0.2, 0.5]))  # fmt: skip
    inter = InterpolationConsistency(np.array([0.25, 0.5, 0.75]), np.full(3, either),
                                     np.full(3, either), np.full(3, either), np.float32(0.5))  # fmt: skip
    return PolicyEvaluation({"train": ret}, rob, inter, 100, "epsilon-greedy 0.01")


STUDENTS = 4  # students per objective (Figures 5 and 11: all of one teacher)


def _spread(seed, n, sd):
    """``n`` per-student deviations of standard deviation about ``sd``, centred (mean exactly 0),
    so the mean over students is the number given."""
    x = np.random.default_rng(seed).normal(0, sd, n)
    return x - x.mean()


def _students(numbers, seed):
    """``STUDENTS`` evaluations around (agreement, either, return): each student off them by its
    own deviation (sd 0.01, 0.01, 0.5). The Figure 5 verdicts below come out the same for 300 of
    300 draws of this spread."""
    deviations = [_spread(seed + i, STUDENTS, sd) for i, sd in enumerate((0.01, 0.01, 0.5))]
    return [_evaluation(*(x + d[j] for x, d in zip(numbers, deviations, strict=True)))
            for j in range(STUDENTS)]  # fmt: skip


def _fig5(teacher, q, bc):
    return {"games": {"minatar/breakout": {
        "teacher": [_evaluation(*teacher)], "q": _students(q, 0), "bc": _students(bc, 10),
    }}}  # fmt: skip


def test_fig5_claims_follow_the_numbers():
    config = fig5.Config.quick()
    # The measurement: BC more robust (0.90 vs 0.67) and consistent; q less robust.
    claims = {c.id: c for c in fig5.check_claims(
        _fig5((0.67, 0.78, 11.6), (0.6, 0.84, 9.0), (0.9, 0.94, 11.5)), config)}  # fmt: skip
    assert claims["bc_students_more_robust"].holds
    assert claims["value_distilled_students_more_robust"].verdict == "did not hold"
    assert claims["students_more_consistent_under_interpolation"].holds
    assert claims["bc_close_to_teacher_return"].holds
    # The seed is the unit: per student, its agreement over sigma > 0 minus the teacher's.
    m = _fig5((0.67, 0.78, 11.6), (0.6, 0.84, 9.0), (0.9, 0.94, 11.5))
    per_student = np.array([np.mean(np.asarray(e.robustness.action_agreement)[1:])
                            for e in m["games"]["minatar/breakout"]["bc"]]) - (0.67 + 0.47) / 2  # fmt: skip
    low, high = stats.t.interval(0.95, STUDENTS - 1, loc=per_student.mean(),
                                 scale=stats.sem(per_student))  # fmt: skip
    check = claims["bc_students_more_robust"].checks["bc/minatar/breakout"]
    assert (check["n"], check["method"], check["unit"]) == (STUDENTS, "Student t",
                                                            "students of one teacher")  # fmt: skip
    assert [check["estimate"], check["low"], check["high"]] == pytest.approx(
        [per_student.mean(), low, high]
    )
    assert "one teacher" in claims["bc_students_more_robust"].statement
    # Students no better than the teacher, BC far below its return: every claim fails.
    claims = fig5.check_claims(_fig5((0.9, 0.9, 10.0), (0.9, 0.9, 9.0), (0.8, 0.8, 3.0)), config)
    assert not any(c.holds for c in claims)
    # The q students' robustness no different from the teacher's: their spread straddles 0.
    q = {c.id: c for c in claims}["value_distilled_students_more_robust"]
    assert q.verdict == "inconclusive"


def test_fig6_claims_follow_the_numbers():
    config = fig6.Config.quick()
    pairs = 5

    def measurements(teacher, student):
        """``pairs`` teachers, each with its own student: a teacher's level (sd 1, shared by its
        student: a better teacher makes a better student) and every return's own deviation (sd
        0.2), centred over the pairs. The verdicts below come out the same for 298 of 300 draws
        of this spread."""
        rows, level = {}, _spread(99, pairs, 1.0)
        for i, (who, (t, s)) in enumerate((("teacher", teacher), ("student", student))):
            train = t + level + _spread(2 * i, pairs, 0.2)
            test = s + level + _spread(2 * i + 1, pairs, 0.2)
            rows[who] = [{"train": a, "test": b, "generalization_gap": a - b}
                         for a, b in zip(train, test, strict=True)]  # fmt: skip
        return {"games": {"minatar/asterix": rows}}

    def verdicts(m):
        return [c.verdict for c in fig6.check_claims(m, config)]

    assert verdicts(measurements((10, 5), (9, 7))) == ["held", "held"]
    assert verdicts(measurements((10, 5), (9, 3))) == ["did not hold", "did not hold"]
    m = measurements((10, 5), (9, 7))
    rows = m["games"]["minatar/asterix"]
    diff = np.array([s["generalization_gap"] - t["generalization_gap"]
                     for s, t in zip(rows["student"], rows["teacher"], strict=True)])  # fmt: skip
    check = fig6.check_claims(m, config)[0].checks["minatar/asterix"]
    low, high = stats.t.interval(0.95, pairs - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert (check["n"], check["unit"]) == (pairs, "teacher/student pairs")
    assert [check["estimate"], check["low"], check["high"]] == pytest.approx([-3.0, low, high])
    # Pairs that disagree (the student's gap 4 smaller in two, 2 larger in the other two).
    teacher = [{"train": 10, "test": 5, "generalization_gap": 5}] * 4
    student = [{"train": 9, "test": 8, "generalization_gap": 1},
               {"train": 9, "test": 2, "generalization_gap": 7}] * 2  # fmt: skip
    games = {"minatar/asterix": {"teacher": teacher, "student": student}}
    assert verdicts({"games": games}) == ["inconclusive", "inconclusive"]


def test_fig11_claims_follow_the_numbers():
    config = dataclasses.replace(fig11.Config.quick(), num_seeds=STUDENTS)

    def measurements(ranks, centred=None, teacher_rank=10.0):
        """``STUDENTS`` students per objective, all of one teacher: each student's ranks off the
        objective's by its own offset (sd 0.3) and probe noise (sd 0.2), centred over students.
        The verdicts below come out the same for 300 of 300 draws of this spread."""
        centred = centred or {o: r[-2:] for o, r in ranks.items()}
        curves = {}
        for i, (o, r) in enumerate(ranks.items()):
            rng = np.random.default_rng(i)
            noise = rng.normal(0, 0.3, (STUDENTS, 1)) + rng.normal(0, 0.2, (STUDENTS, len(r)))
            noise -= noise.mean(axis=0)
            offset = _spread(100 + i, STUDENTS, 0.3)
            curves[o] = [{"updates": [3, 6, 9, 12, 15], "rank": list(np.asarray(r) + noise[j]),
                          "rank_random": [3] * 5, "eval_updates": [5, 10, 15], "return": [1, 2, 3],
                          "final_rank_centred": list(np.asarray(centred[o]) + offset[j])}
                         for j in range(STUDENTS)]  # fmt: skip
        return {"curves": curves, "teacher_rank": teacher_rank, "teacher_return": 4.0,
                "teacher": "t"}  # fmt: skip

    def verdicts(m):
        return {c.id: c.verdict for c in fig11.check_claims(m, config)}

    paper = {"q": [3, 4, 5, 6, 7], "qa": [3, 4, 5, 5, 6], "advantage": [2, 2, 3, 3, 3],
             "qr": [4, 6, 8, 9, 9], "double_q": [3, 5, 6, 7, 7]}  # fmt: skip
    assert verdicts(measurements(paper)) == {
        "objectives_start_below_teacher_rank": "held",
        "advantage_regression_lowest_rank": "held",
        "advantage_regression_lowest_rank_centred": "held",
    }
    # Students of one objective against those of another: Welch's interval over students.
    m = measurements(paper)
    claim = {c.id: c for c in fig11.check_claims(m, config)}["advantage_regression_lowest_rank"]
    check = claim.checks["qa - advantage"]
    late = {o: np.array([c["rank"][-2:] for c in m["curves"][o]]).mean(axis=1)
            for o in ("qa", "advantage")}  # fmt: skip
    x, y = late["qa"], late["advantage"]
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(vx + vy)
    assert check["estimate"] == pytest.approx(5.5 - 3.0)
    assert [check["low"], check["high"]] == pytest.approx([2.5 - half, 2.5 + half])
    assert (check["n"], check["method"], check["unit"]) == (STUDENTS, "Welch t",
                                                            "students of one teacher")  # fmt: skip
    assert "one teacher" in claim.statement
    flipped = {**paper, "advantage": [12, 12, 12, 12, 12]}
    assert set(verdicts(measurements(flipped)).values()) == {"did not hold"}
    # The finding: highest through the raw outputs, lowest once the per-state offset the
    # loss never fits is removed. Each reduction gets its own verdict.
    raw_high = {**paper, "advantage": [6, 8, 9, 10, 10]}
    centred = {o: [r[-1]] * 2 for o, r in paper.items()}
    both = verdicts(measurements(raw_high, centred))
    assert both["advantage_regression_lowest_rank"] == "did not hold"
    assert both["advantage_regression_lowest_rank_centred"] == "held"
    # Students that disagree: half of the advantage students as low as the paper's, half as high
    # as the qa students' late ranks: the claim is left open.
    m = measurements(paper)
    for j, student in enumerate(m["curves"]["advantage"]):
        if j % 2:
            student["rank"] = list(np.asarray(student["rank"]) + 4.0)
    assert verdicts(m)["advantage_regression_lowest_rank"] == "inconclusive"
