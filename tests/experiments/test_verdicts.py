"""Verdicts with uncertainty: intervals over seeds, the three verdicts, and the report reading them."""

import json

import numpy as np
import pytest

from tdgen.errors import InputError
from tdgen.experiments.base import Claim
from tdgen.experiments.report import read_result, render_html, render_markdown
from tdgen.experiments.verdicts import (
    Check,
    combine,
    deciding,
    mean_test,
    share_verdict,
    verdict_of,
)
from tdgen.sweep.aggregate import nested_mean_draws


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


def test_nested_bootstrap_resamples_seeds_and_probes():
    rng = np.random.default_rng(0)
    # One seed's probes all equal: only the seeds vary, the draws lie within the seed means.
    x = np.array([[1.0, 1.0], [3.0, 3.0]])
    draws = nested_mean_draws([x], 500, rng)
    assert set(np.round(draws, 6)) <= {1.0, 2.0, 3.0}
    # Two tasks pooled: the mean over tasks of each task's mean (0 and 10 -> 5, no spread).
    draws = nested_mean_draws([np.zeros(3), np.full(2, 10.0)], 100, rng)
    np.testing.assert_allclose(draws, 5.0)
    with pytest.raises(ValueError, match="runs"):
        nested_mean_draws([np.zeros((2, 2, 2))], 10, rng)


def test_mean_test_interval_narrows_with_seeds_and_decides():
    spread = np.array([1.5, 2.5, 3.5])
    few, many = mean_test(spread, ">", 2), mean_test(np.tile(spread, 16), ">", 2)
    assert many.high - many.low < few.high - few.low  # 48 seeds against 3 of the same spread
    assert few.verdict == "inconclusive" and many.verdict == "held"
    assert mean_test(np.full(4, 5.0), ">", 2).verdict == "held"  # no spread: a point interval
    # A difference of two independent groups of seeds (e.g. dense minus zero reward).
    diff = mean_test([7.0, 8.0, 9.0], ">", 2, minus=[3.0, 4.0, 5.0])
    assert diff.estimate == pytest.approx(4.0) and diff.verdict == "held"
    assert 2 < diff.low <= 4 <= diff.high < 6
    none = mean_test([3.0, 4.0, 5.0], ">", 2, minus=[3.0, 4.0, 5.0])
    assert none.verdict == "did not hold"  # the interval [-2, 2] lies at or below 2


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
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "empty")]) == 2
    assert "share no experiment result" in capsys.readouterr().err
