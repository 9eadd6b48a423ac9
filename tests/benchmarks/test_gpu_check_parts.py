"""`tdgen gpu-check`'s parent side in this process: the cases it builds, the config changes it
makes, its table and record, and how a child's failure or timeout shows (the children themselves
run in tests/benchmarks/test_gpu_check.py)."""

import json
import subprocess
from pathlib import Path

import pytest

from tdgen.bench import gpu_check
from tdgen.bench.gpu_check import CASES, build_case, check, check_config, run_child, table
from tdgen.experiments import get_experiment

RESULT = {
    "case": "fig3-dqn", "device": "cpu", "unit": "frames/s", "rate": 1234.5,
    "rate_includes_compile": False, "probe_seconds": 0.25, "device_peak_mib": None,
    "host_rss_mib": 2048.0, "reached": 512, "runs": 30, "length": 7_000_000,
    "projected_hours": 47.25,
}  # fmt: skip


def test_each_case_builds_the_first_run_of_its_paper_preset_and_counts_its_runs():
    teacher = Path("teacher-run")
    expected = {
        "fig3-dqn": ("dqn", lambda c: len(c.games) * len(c.rewards) * c.num_seeds),
        "fig3-c51": ("c51", lambda c: len(c.games) * len(c.rewards) * c.num_seeds),
        "fig4-ppo": ("ppo", lambda c: len(c.games) * c.num_seeds),
        "fig4-daac": ("daac", lambda c: len(c.games) * c.num_seeds),
        "fig5-teacher": ("dqn", lambda c: len(c.games)),
        "fig5-student": ("distill", lambda c: len(c.games) * 2 * c.num_seeds),
        "fig6-student": ("distill", lambda c: len(c.games) * c.num_seeds),
    }
    assert set(expected) == set(CASES)
    for name, (agent, runs) in expected.items():
        case = CASES[name]
        paper = get_experiment(case.experiment).config("paper")
        built, run, count, length = build_case(name, "paper", teacher if case.teacher else None)
        assert (built, count, length) == (agent, runs(paper), run.length), name
        if case.teacher is None:
            assert run.env == paper.games[0] and run.seed == 0, name
        else:
            assert Path(run.teacher) == teacher, name


def test_check_config_changes_only_the_logging_and_probing_the_docstring_lists():
    _, dqn, _, _ = build_case("fig3-dqn", "paper", None)
    changed = check_config(dqn, 5_000)
    assert (changed.log_every, changed.probe_every, changed.learning_starts) == (
        5_000,
        20_000,
        20_000,
    )
    assert changed.replace(log_every=dqn.log_every, probe_every=dqn.probe_every,
                           learning_starts=dqn.learning_starts) == dqn  # fmt: skip
    _, ppo, _, _ = build_case("fig4-ppo", "paper", None)
    batch = ppo.num_envs * ppo.num_steps
    changed = check_config(ppo, 5_000)
    assert (changed.log_every, changed.probe_every, changed.eval_every) == (batch, 2 * batch, 0)
    _, student, _, _ = build_case("fig6-student", "paper", Path("teacher-run"))
    changed = check_config(student, 5_000)
    assert (changed.log_every, changed.probe_every, changed.eval_every) == (1_000, 2_000, 0)
    short = check_config(student.replace(steps=600), 5_000)
    assert (short.log_every, short.probe_every) == (150, 300)  # a quarter and half of the run


def test_table_rows_show_rates_marks_and_errors():
    compiled = {
        **RESULT,
        "case": "fig4-ppo",
        "rate_includes_compile": True,
        "device_peak_mib": 3072.4,
    }
    rows = table([RESULT, compiled, {"case": "fig5-student", "error": "no result within 240 s"}])
    lines = rows.splitlines()
    assert len(lines) == 5
    assert lines[2] == "| fig3-dqn | cpu | 1,234 frames/s | 0.25 | - | 2,048 | 30 | 47.2 |"
    assert lines[3] == "| fig4-ppo | cpu | ~1,234 frames/s | 0.25 | 3,072 | 2,048 | 30 | 47.2 |"
    assert lines[4] == "| fig5-student | error: no result within 240 s | | | | | | |"


def test_check_prints_each_row_then_the_table_and_records_only_a_real_run(
    monkeypatch, tmp_path, capsys
):
    children = []

    def fake_child(name, seconds, log_frames, timeout, dry_run):
        children.append((name, seconds, log_frames, timeout, dry_run))
        return {**RESULT, "case": name} if name == "fig3-dqn" else {"case": name, "error": "boom"}

    monkeypatch.setattr(gpu_check, "run_child", fake_child)
    out = tmp_path / "results"
    done = check(["fig3-dqn", "fig4-ppo"], 6.0, 256, 30.0, True, out)
    assert [r["case"] for r in done] == ["fig3-dqn", "fig4-ppo"]
    assert children == [("fig3-dqn", 6.0, 256, 30.0, True), ("fig4-ppo", 6.0, 256, 30.0, True)]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("| fig3-dqn |") and printed[1].startswith("| fig4-ppo | error")
    assert printed[2].startswith("| case |") and len(printed) == 6
    assert not out.exists()  # a dry run is never recorded
    check(["fig3-dqn", "fig4-ppo"], 6.0, 256, 30.0, False, out)
    (path,) = (out / "gpu_check").glob("*.json")
    (recorded,) = json.loads(path.read_text())["tables"]
    assert recorded["name"] == "cases" and "6 s, then SIGTERM" in recorded["title"]
    assert recorded["rows"][0][:4] == ["fig3-dqn", "cpu", 1234.5, "frames/s"]
    assert recorded["rows"][1] == ["fig4-ppo", *[None] * 9, "boom"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (subprocess.TimeoutExpired("tdgen", 30), {"case": "fig3-dqn", "error": "no result within 30 s"}),
        (subprocess.CompletedProcess([], 1, "", "Traceback\nRuntimeError: out of memory\n"),
         {"case": "fig3-dqn", "error": "RuntimeError: out of memory"}),
        (subprocess.CompletedProcess([], 0, "compiling\n", ""), {"case": "fig3-dqn", "error": "?"}),
        (subprocess.CompletedProcess([], 0, "x\n" + json.dumps(RESULT) + "\n", ""), RESULT),
    ],
    ids=["timeout", "crash", "no-json", "result"],
)  # fmt: skip
def test_run_child_reads_the_last_json_line_or_names_the_failure(monkeypatch, outcome, expected):
    calls = []

    def fake_run(command, **kwargs):
        calls.append((command, kwargs))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(gpu_check.subprocess, "run", fake_run)
    assert run_child("fig3-dqn", 6.0, 256, 30.0, dry_run=True) == expected
    ((command, kwargs),) = calls
    assert command[1:5] == ["-m", "tdgen.bench.gpu_check", "--child", "fig3-dqn"]
    assert command[-1] == "--dry-run" and kwargs["env"]["JAX_PLATFORMS"] == "cpu"
    assert kwargs["timeout"] == 30.0
