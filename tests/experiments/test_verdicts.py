"""Verdicts with uncertainty: intervals over seeds, the three verdicts, and the report reading them."""

import json

import numpy as np
import pytest
from scipy import stats

from tdgen.errors import InputError
from tdgen.experiments.base import Claim
from tdgen.experiments.report import decided_by, read_result, render_html, render_markdown
from tdgen.experiments.verdicts import (
    Check,
    combine,
    deciding,
    mean_test,
    share_verdict,
    verdict_of,
)


def test_verdict_by_interval_against_threshold():
    assert verdict_of(2.1, 3.0, ">", 2) == "held"
    assert verdict_of(1.0, 2.0, ">", 2) == "did not hold"
    assert verdict_of(1.5, 2.5, ">", 2) == "inconclusive"
    assert verdict_of(0.5, 1.5, "<", 2) == "held" and verdict_of(2, 3, "<", 2) == "did not hold"
    assert verdict_of(-1, 1, "|x|<=", 2) == "held"
    assert verdict_of(2.5, 3, "|x|<=", 2) == "did not hold"
    assert verdict_of(-3, -2.5, "|x|<=", 2) == "did not hold"
    assert verdict_of(1, 3, "|x|<=", 2) == "inconclusive"
    assert verdict_of(float("nan"), 1, ">", 0) == "inconclusive"


def test_margin_and_distance_for_each_rule():
    """margin: how far the interval clears the threshold (negative: it does not); distance: how far
    the estimate lies from it."""
    above = Check(estimate=3.0, low=2.5, high=3.5, rule=">", threshold=2, n=4)
    below = Check(estimate=1.0, low=0.25, high=1.5, rule="<", threshold=2, n=4)
    small = Check(estimate=-0.5, low=-1.5, high=0.5, rule="|x|<=", threshold=2, n=4)
    straddles = Check(estimate=1.75, low=1.5, high=2.5, rule="<", threshold=2, n=4)
    assert [c.margin() for c in (above, below, small, straddles)] == [0.5, 0.5, 0.5, -0.5]
    assert [c.distance() for c in (above, below, small, straddles)] == [1.0, 1.0, 1.5, 0.25]
    assert [c.verdict for c in (above, below, small, straddles)] == ["held"] * 3 + ["inconclusive"]


def test_combine_and_deciding():
    assert combine(["held", "held"]) == "held"
    assert combine(["held", "inconclusive"]) == "inconclusive"
    assert combine(["inconclusive", "did not hold"]) == "did not hold"
    checks = {"a": Check(5, 4, 6, ">", 2, 3), "b": Check(3, 2.5, 3.5, ">", 2, 3)}
    assert deciding(checks)[0] == "b"  # held both; b clears the threshold by the least
    checks["c"] = Check(2, 1, 3, ">", 2, 3)
    assert deciding(checks)[0] == "c"


def test_share_of_games():
    assert share_verdict(["held", "did not hold"], 0.5) == "held"
    assert share_verdict(["held", "did not hold"], 0.5, strict=True) == "did not hold"
    assert share_verdict(["inconclusive", "did not hold"], 0.5) == "inconclusive"
    assert share_verdict(["did not hold", "did not hold", "inconclusive"], 0.5) == "did not hold"
    assert share_verdict([], 0.5) == "inconclusive"


def t_half(sd, n):
    """Half-width of Student's 95% t interval of n seeds with sample sd ``sd``."""
    return stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)


def test_mean_test_interval_narrows_with_seeds_and_decides():
    spread = np.array([1.5, 2.5, 3.5])
    few, many = mean_test(spread, ">", 2), mean_test(np.tile(spread, 16), ">", 2)
    # Student t over the seeds: 2.5 -+ t(0.975, 2) * 1 / sqrt(3) = 2.5 -+ 2.484
    assert (few.low, few.high) == (pytest.approx(2.5 - t_half(1.0, 3)),
                                   pytest.approx(2.5 + t_half(1.0, 3)))  # fmt: skip
    assert few.low == pytest.approx(0.0158623, abs=1e-6)
    assert (few.method, few.n, few.unit) == ("Student t", 3, "seeds")
    assert few.text() == "2.5 [0.0159, 4.98] > 2 (Student t over 3 seeds)"
    assert many.low == pytest.approx(2.5 - t_half(np.sqrt(32 / 47), 48))  # 48 seeds
    assert many.high - many.low < few.high - few.low
    assert few.verdict == "inconclusive" and many.verdict == "held"
    flat = mean_test(np.full(4, 5.0), ">", 2)  # no spread: a point interval
    assert (flat.low, flat.high, flat.verdict) == (5.0, 5.0, "held")


def test_mean_test_averages_probes_within_each_seed():
    nested = mean_test([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]], ">", 2)  # seed means 2, 3, 4
    flat = mean_test([2.0, 3.0, 4.0], ">", 2)
    assert nested == flat and nested.n == 3  # 3 seeds, not 6 samples
    assert (nested.low, nested.high) == (pytest.approx(3 - t_half(1.0, 3)),
                                         pytest.approx(3 + t_half(1.0, 3)))  # fmt: skip


def test_mean_test_difference_of_two_groups_is_welch():
    # A difference of two independent groups of seeds (e.g. dense minus zero reward).
    diff = mean_test([7.0, 8.0, 9.0], ">", 2, minus=[3.0, 4.0, 5.0])
    ci = stats.ttest_ind([7.0, 8.0, 9.0], [3.0, 4.0, 5.0], equal_var=False).confidence_interval()
    assert diff.estimate == pytest.approx(4.0) and diff.method == "Welch t" and diff.n == 3
    # 4 -+ t(0.975, 4) * sqrt(1/3 + 1/3) = 4 -+ 2.267: straddles 2 at 3 seeds per group
    assert (diff.low, diff.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert diff.low == pytest.approx(1.733, abs=1e-3) and diff.verdict == "inconclusive"
    six = mean_test([7.0, 8.0, 9.0] * 2, ">", 2, minus=[3.0, 4.0, 5.0] * 2)
    # 4 -+ t(0.975, 10) * sqrt(0.8 / 6 * 2) = 4 -+ 1.151
    assert six.low == pytest.approx(4 - stats.t.ppf(0.975, 10) * np.sqrt(0.8 / 3))
    assert six.verdict == "held"
    none = mean_test([3.0, 4.0, 5.0] * 2, ">", 2, minus=[3.0, 4.0, 5.0] * 2)
    assert none.high == pytest.approx(1.151, abs=1e-3)
    assert none.verdict == "did not hold"  # the interval [-1.15, 1.15] lies at or below 2
    # Unequal groups: the smaller one counts.
    assert mean_test([1.0, 2.0, 3.0, 4.0], ">", 0, minus=[0.0, 1.0]).n == 2


def test_mean_test_pooled_over_games():
    games = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 12.0])]
    pooled = mean_test(games, ">", 0)
    a, b = 1.0 / 3 / 4, 2.0 / 2 / 4  # s_g^2 / n_g / G^2
    df = (a + b) ** 2 / (a**2 / 2 + b**2 / 1)  # Welch-Satterthwaite
    assert pooled.estimate == pytest.approx(6.5) and (pooled.method, pooled.n) == ("pooled t", 2)
    assert pooled.high == pytest.approx(6.5 + stats.t.ppf(0.975, df) * np.sqrt(a + b))
    diff = mean_test(games, ">", 0, minus=[g - 1.0 for g in games])
    assert diff.estimate == pytest.approx(1.0) and diff.method == "pooled Welch t"
    df_diff = (2 * (a + b)) ** 2 / (2 * (a**2 / 2 + b**2 / 1))  # four groups of seeds
    assert diff.high == pytest.approx(1.0 + stats.t.ppf(0.975, df_diff) * np.sqrt(2 * (a + b)))


def test_one_unit_has_no_interval():
    one = mean_test([3.0], ">", 2)
    assert one.verdict == "inconclusive" and np.isnan(one.low) and np.isnan(one.high)
    assert one.text() == "3 [nan, nan] > 2 (1 seed: no interval)"
    run = mean_test(np.array([[0.2, 0.4, 0.3]]), ">", 0, unit="runs")  # one run, its windows
    assert run.estimate == pytest.approx(0.3) and run.n == 1 and run.verdict == "inconclusive"
    assert run.text() == "0.3 [nan, nan] > 0 (1 run: no interval)"
    assert mean_test([5.0, 6.0], ">", 0, minus=[1.0]).verdict == "inconclusive"
    pairs = mean_test([1.0, 2.0, 4.0], ">", 0, unit="teacher/student pairs")
    assert pairs.text().endswith("(Student t over 3 teacher/student pairs)")


def test_check_reads_old_and_new_json():
    check = Check(2.5, 1.75, 3.25, ">", 2, 4, method="Student t")
    assert check.text() == "2.5 [1.75, 3.25] > 2 (Student t over 4 seeds)"
    assert Check(2.5, 1.75, 3.25, ">", 2, 4).text() == "2.5 [1.75, 3.25] > 2 (4 seeds)"
    again = Check.read(json.loads(json.dumps(check.__dict__)))
    assert again == check
    old = {"estimate": 2.5, "low": 1.75, "high": 3.25, "rule": ">", "threshold": 2, "seeds": 4,
           "verdict": "held"}  # fmt: skip
    assert Check.read(old) == Check(2.5, 1.75, 3.25, ">", 2, 4)


def test_measured_claim_and_its_json():
    claim = Claim.measured("c", "s", {"a": Check(3, 2.5, 3.5, ">", 2, 4),
                                      "b": Check(2, 1, 3, ">", 2, 4)})  # fmt: skip
    assert claim.verdict == "inconclusive" and not claim.holds
    assert json.loads(json.dumps(claim.checks))["a"]["low"] == 2.5
    with pytest.raises(ValueError, match="does not match holds"):
        Claim("c", "s", True, {}, verdict="inconclusive")


def _write(tmp_path, claims, name="e"):
    result = {"experiment": name, "paper_ref": "Fig. 0", "scale": "quick", "seed": 0,
              "seconds": 1.0, "claims": claims, "figures": [], "summary": {}}  # fmt: skip
    (tmp_path / name).mkdir()
    path = tmp_path / name / "result.json"
    path.write_text(json.dumps(result))
    return path


def test_report_shows_interval_verdict_and_counts_all_three(tmp_path):
    held = Claim.measured("up", "rises", {"dqn": Check(4, 3, 5, ">", 2, 6)})
    unsure = Claim.measured("gap", "gap", {"dqn": Check(2, 1, 3, ">", 2, 6)})
    old = {"id": "exact", "statement": "closed form", "holds": False, "evidence": {}}  # old file
    path = _write(tmp_path, [json.loads(json.dumps(c.__dict__)) for c in (held, unsure)] + [old])
    result = read_result(path)
    assert [c["verdict"] for c in result["claims"]] == ["held", "inconclusive", "did not hold"]
    for text in (render_markdown([result]), render_html([result])):
        assert "1 of 3 claims held, 1 did not hold, 1 inconclusive" in text
        assert "4 [3, 5] &gt; 2 (6 seeds)" in text or "4 [3, 5] > 2 (6 seeds)" in text
        assert "exact" in text
    assert "95% t interval with the seed as the unit" in render_markdown([result])
    # The seeds each check needs: se 1 / t(0.975, 5) over 6 seeds, distance 2: 4 seeds; the
    # inconclusive check's estimate sits on its threshold: no seed count decides it.
    assert "| e | up | dqn | held | 6 seeds | +2 | 4 |" in render_markdown([result])
    assert "| e | gap | dqn | inconclusive | 6 seeds | +0 | - |" in render_markdown([result])


def test_the_report_says_what_decided_a_claim_over_several_checks(tmp_path):
    cells = {f"cell{i}": Check(0.5, 0.2, 0.8, ">", 0, 3, method="Student t") for i in range(8)}
    cells["cell8"] = Check(-0.794, -0.9, -0.7, ">", 0, 3, method="Student t")  # did not hold
    cells |= {f"cell{i}": Check(0.1, -0.2, 0.4, ">", 0, 3) for i in range(9, 12)}  # straddle 0
    share = Claim("tracks", "s", True, {}, cells, verdict="held")  # a share rule: 8 of 12
    every = Claim.measured("every", "s", {"a": Check(4, 3, 5, ">", 2, 6, method="Student t"),
                                          "b": Check(3, 2.5, 3.5, ">", 2, 6, method="Welch t")})  # fmt: skip
    refuted = Claim.measured("refuted", "s", {"a": Check(4, 3, 5, ">", 2, 6),
                                              "b": Check(1, 0.5, 1.5, ">", 2, 6)})  # fmt: skip
    claims = [json.loads(json.dumps(c.__dict__)) for c in (share, every, refuted)]
    result = read_result(_write(tmp_path, claims, name="dyn"))
    by_id = {c["id"]: decided_by(c) for c in result["claims"]}
    # 8 of 12 held: the count decides; the one cell that did not hold is not shown as the reason.
    assert by_id["tracks"] == "8/12 checks held, 1 did not hold, 3 inconclusive"
    assert by_id["every"] == ("2/2 checks held; closest to its threshold: b: "
                              "3 [2.5, 3.5] > 2 (Welch t over 6 seeds)")  # fmt: skip
    assert by_id["refuted"] == ("1/2 checks held, 1 did not hold; one that did not hold: b: "
                                "1 [0.5, 1.5] > 2 (6 seeds)")  # fmt: skip
    markdown, page = render_markdown([result]), render_html([result])
    assert "-0.794" not in markdown.split("## Seeds")[0]  # not in the table of claims
    # 3 claims, 16 checks: 0.4 wrong calls expected by chance at 2.5% a check.
    assert "among the 16 checks of these 3 claims, about 0.4 wrong calls" in markdown
    # The experiment and its paper reference head their group of rows once, not on every row.
    table = page.split("<table>")[1].split("</table>")[0]
    assert table.count("Fig. 0") == 1 and table.count("<tr class='group'>") == 1


def test_report_refuses_a_claim_whose_verdict_contradicts_holds(tmp_path):
    bad = {"id": "c", "statement": "s", "holds": True, "evidence": {}, "verdict": "inconclusive"}
    with pytest.raises(InputError, match="claim c has verdict 'inconclusive'"):
        read_result(_write(tmp_path, [bad]))
    broken = {"id": "d", "statement": "s", "holds": True, "evidence": {}, "checks": {"a": 1}}
    with pytest.raises(InputError, match="claim d has unreadable checks"):
        read_result(_write(tmp_path, [broken], "f"))


def test_compare_two_reproductions(tmp_path, capsys):
    from tdgen.experiments.compare import main

    def reproduction(folder, low, high, verdict_exact=False):
        folder.mkdir()
        claim = Claim.measured(
            "up", "rises", {"dqn": Check((low + high) / 2, low, high, ">", 2, 4)}
        )
        exact = Claim("exact", "closed form", verdict_exact, {})
        _write(folder, [json.loads(json.dumps(c.__dict__)) for c in (claim, exact)])

    reproduction(tmp_path / "a", 3.0, 5.0)
    reproduction(tmp_path / "b", 3.0, 5.0)
    reproduction(tmp_path / "c", 2.5, 3.5)  # another machine: other numbers, overlapping
    reproduction(tmp_path / "d", 0.5, 1.5)  # a flipped verdict
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "e/up/dqn: bitwise equal; held vs held" in capsys.readouterr().out
    assert main([str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    assert "intervals overlap" in capsys.readouterr().out
    assert main([str(tmp_path / "a"), str(tmp_path / "d")]) == 1
    assert "DIFFER; held vs did not hold  (verdict flipped)" in capsys.readouterr().out
    # One seed: no interval on either side, equal numbers: bitwise equal, not a difference.
    for folder in ("e", "f"):
        (tmp_path / folder).mkdir()
        claim = Claim.measured("up", "rises", {"dqn": Check(4.0, "nan", "nan", ">", 2, 1)})
        _write(tmp_path / folder, [json.loads(json.dumps(claim.__dict__))])
    assert main([str(tmp_path / "e"), str(tmp_path / "f")]) == 0
    assert "e/up/dqn: bitwise equal; inconclusive vs inconclusive" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "empty")]) == 2
    assert "share no experiment result" in capsys.readouterr().err


def test_every_deep_rl_claim_gets_at_least_5_seeds_at_paper_scale_and_the_report_says_so(tmp_path):
    from tdgen.experiments import experiments_of
    from tdgen.experiments.report import paper_seeds

    assert {name: paper_seeds(name) for name in experiments_of("deep_rl")} == {
        name: 5 for name in experiments_of("deep_rl")
    }
    unsure = Claim.measured("gap", "gap", {"dqn": Check(2, 1, 3, ">", 2, 2)})
    path = _write(tmp_path, [json.loads(json.dumps(unsure.__dict__))],
                  name="fig3_value_update_rank")  # fmt: skip
    assert "**inconclusive (paper preset: 5 seeds)**" in render_markdown([read_result(path)])
