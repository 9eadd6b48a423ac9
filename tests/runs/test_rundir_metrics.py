import json

import numpy as np
import pytest

from tdgen.runs import MetricsLogger, RunDir
from tdgen.runs.metrics import read_metrics


def test_create_refuses_to_overwrite_a_run(tmp_path):
    run = RunDir.create(tmp_path / "run", "dqn", {"lr": 1e-3})
    assert run.kind == "dqn" and run.config == {"lr": 1e-3}
    assert run.checkpoints.is_dir() and run.probes.is_dir()
    with pytest.raises(ValueError, match="tdgen resume"):
        RunDir.create(tmp_path / "run", "dqn", {"lr": 2e-3})
    assert RunDir.open(tmp_path / "run").config == {"lr": 1e-3}


def test_open_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="not a tdgen run directory"):
        RunDir.open(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        RunDir.open(tmp_path)


def test_a_line_cut_short_by_a_kill_mid_append_is_dropped(tmp_path):
    from tdgen.runs.metrics import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 100, "x": 1}\n{"step": 200, "x"')
    assert read_metrics(tmp_path) == [{"step": 100, "x": 1}]
    MetricsLogger(tmp_path, resume_step=100, tensorboard=False).close()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 100, "x": 1}\n'
    (tmp_path / "metrics.jsonl").write_text('{"step": 100}\n{"step": 2\n{"step": 300}\n')
    with pytest.raises(ValueError, match="metrics.jsonl, line 2"):
        read_metrics(tmp_path)


def test_metrics_are_jsonl_and_tensorboard_and_resume_truncates(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        for step in (100, 200, 300):
            logger.log(
                step, {"charts/episodic_return": np.float32(step / 10), "losses/td_loss": 0.5}
            )
    assert [r["step"] for r in read_metrics(tmp_path)] == [100, 200, 300]
    assert any((tmp_path / "tb").iterdir())
    with MetricsLogger(tmp_path, resume_step=200) as logger:
        logger.log(300, {"charts/episodic_return": 31.0})
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [100, 200, 300] and rows[-1][
        "charts/episodic_return"
    ] == 31.0
    assert (
        json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["losses/td_loss"]
        == 0.5
    )


def test_non_finite_values_are_logged_as_text(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        logger.log(1, {"losses/td_loss": float("inf")})
    assert read_metrics(tmp_path)[0]["losses/td_loss"] == "inf"
