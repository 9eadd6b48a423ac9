"""`tdgen report` on run directories written by hand (no training): grouping, scores, files."""

import json

import numpy as np
import pytest

from tdgen.agents import DQNConfig
from tdgen.runs import MetricsLogger, RunDir
from tdgen.sweep.collect import load_runs, score_table
from tdgen.sweep.command import report_main
from tdgen.sweep.report import read_bounds, render_html


def fake_run(path, returns, *, env="minatar/breakout", seed=0, lr=2.5e-4, complete=True, rank=None,
             frames=500):  # fmt: skip
    """A DQN run of ``frames`` logging ``returns`` every 100 frames, complete when asked."""
    config = DQNConfig.minatar(env, frames=frames, log_every=100, num_envs=4, lr=lr, seed=seed)
    run = RunDir.create(path, "dqn", config.to_dict())
    with MetricsLogger(run.path, tensorboard=False) as logger:
        for i, value in enumerate(returns):
            row = {"charts/episodic_return": value}
            if rank is not None:
                row["interference/update_rank"] = rank + i
            logger.log(100 * (i + 1), row)
    if complete:  # the marker of a final checkpoint is all `is_complete` looks at
        (run.checkpoints / f"ckpt_{frames:012d}.msgpack").write_bytes(b"")
        (run.checkpoints / f"ckpt_{frames:012d}.done").write_text("")
    return run.path


@pytest.fixture
def sweep_dir(tmp_path):
    root = tmp_path / "sweep"
    for seed, (b, a) in enumerate([(1.0, 10.0), (3.0, 30.0), (5.0, 50.0)]):
        fake_run(root / f"b{seed}", [0.0, 0.0, b, b, b], seed=seed, rank=2)
        fake_run(root / f"a{seed}", [0.0, a, a, a, a], env="minatar/asterix", seed=seed)
        fake_run(root / f"lr{seed}", [b + 1] * 5, seed=seed, lr=1e-3)
    fake_run(root / "unfinished", [100.0], seed=9, complete=False)
    return root


def test_runs_are_grouped_by_algorithm_and_task(sweep_dir):
    table = score_table(load_runs([sweep_dir]), last=3)
    assert table.metric == "charts/episodic_return"
    assert table.algorithms == ["dqn (lr=0.00025)", "dqn (lr=0.001)"]
    assert table.tasks == ["minatar/asterix", "minatar/breakout"]
    np.testing.assert_allclose(table.scores["dqn (lr=0.00025)"]["minatar/breakout"], [1, 3, 5])
    np.testing.assert_allclose(table.scores["dqn (lr=0.00025)"]["minatar/asterix"], [10, 30, 50])
    last4 = score_table(load_runs([sweep_dir]), last=5).scores["dqn (lr=0.00025)"][
        "minatar/asterix"
    ]
    np.testing.assert_allclose(last4, np.array([10, 30, 50]) * 4 / 5)  # mean of [0, a, a, a, a]
    assert [(p.name, why) for p, why in table.excluded] == [("unfinished", "incomplete")]
    assert table.common_tasks(table.algorithms) == ["minatar/breakout"]
    included = score_table(load_runs([sweep_dir]), include_incomplete=True)
    assert 100.0 in included.scores["dqn (lr=0.00025)"]["minatar/breakout"]


def test_report_writes_statistics_figures_and_html(sweep_dir, tmp_path):
    out = tmp_path / "report"
    path = report_main((sweep_dir,), out=out, reps=300, normalize="none")
    summary = json.loads((out / "aggregate.json").read_text())
    # Only breakout is run by both algorithms: the aggregate compares on it alone.
    assert summary["aggregate_tasks"] == ["minatar/breakout"]
    iqm = summary["aggregate"]["dqn (lr=0.00025)"]["iqm"]
    assert iqm["point"] == pytest.approx(3.0)  # IQM of 1, 3, 5: trim floor(3/4) = 0 -> mean 3
    assert iqm["low"] <= 3.0 <= iqm["high"]
    assert summary["improvement"]["dqn (lr=0.001) > dqn (lr=0.00025)"]["point"] == pytest.approx(
        (1 + 1 + 1 + 0 + 1 + 1 + 0 + 0 + 1) / 9  # {2, 4, 6} against {1, 3, 5}
    )
    for figure in ("aggregate_intervals.png", "performance_profile.png",
                   "curves_charts_episodic_return.png", "curves_interference_update_rank.png"):  # fmt: skip
        assert (out / figure).stat().st_size > 1000, figure
    text = path.read_text()
    assert "| dqn (lr=0.00025) | minatar/breakout | 3 | 3 |" in text
    assert "unfinished" in text and "stratified bootstrap" in text
    html = (out / "report.html").read_text()
    assert "<table>" in html and "<img src='aggregate_intervals.png'" in html


def test_normalisation_choices(sweep_dir, tmp_path):
    table = score_table(load_runs([sweep_dir]))
    assert read_bounds("none", table) is None
    assert read_bounds("observed", table)["minatar/breakout"] == (1.0, 6.0)
    bounds = tmp_path / "bounds.toml"
    bounds.write_text('"minatar/breakout" = [0, 10]\n"minatar/asterix" = [0, 100]\n')
    assert read_bounds(str(bounds), table)["minatar/asterix"] == (0.0, 100.0)
    with pytest.raises(ValueError, match="none, observed or a TOML/JSON file"):
        read_bounds("minmax", table)
    out = tmp_path / "normalised"
    report_main((sweep_dir,), out=out, reps=200, normalize=str(bounds))
    summary = json.loads((out / "aggregate.json").read_text())
    assert summary["normalised"] and "optimality_gap" in summary["aggregate"]["dqn (lr=0.001)"]
    assert summary["aggregate"]["dqn (lr=0.00025)"]["mean"]["point"] == pytest.approx(0.3)


def test_report_without_runs_says_so(tmp_path):
    with pytest.raises(ValueError, match="no run directories"):
        report_main((tmp_path,), out=tmp_path / "r")


def test_render_html_keeps_tables_and_emphasis():
    html = render_html("# T\n\n| a | b |\n|---|---|\n| **x** | `y` |\n\n- item\n")
    assert "<h1>T</h1>" in html and "<td><b>x</b></td><td><code>y</code></td>" in html
    assert "<li>item</li>" in html
