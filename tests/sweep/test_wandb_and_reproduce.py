"""W&B logging (a stand-in module, then real wandb offline) and `tdgen reproduce` via a backend."""

import json
import sys
import time
import types

import pytest

from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import get_experiment
from tdgen.runs import MetricsLogger
from tdgen.sweep import LocalBackend
from tdgen.sweep.reproduce import dependencies, planned_runs, reproduce_with_backend, waves
from tdgen.sweep.tasks import Task
from tdgen.sweep.wandb_hook import WandbHook, run_id

pytestmark = pytest.mark.slow


class FakeRun:
    def __init__(self, **options):
        self.options, self.logged, self.summary, self.finished = options, [], {}, False
        self.starting_step = 0

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


def test_wandb_hook_sends_each_metrics_line_once(tmp_path, monkeypatch):
    runs = []
    fake = types.SimpleNamespace(init=lambda **o: runs.append(FakeRun(**o)) or runs[-1])
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run_dir = tmp_path / "sweep" / "dqn_x_s0"
    run_dir.mkdir(parents=True)
    task = Task(name="dqn_x_s0", kind="agent", target="dqn", config={"lr": 0.1},
                run_dir=str(run_dir))  # fmt: skip
    hook = WandbHook(project="p", interval=3600)
    hook.start(task)
    (run,) = runs
    assert run.options["id"] == run_id(run_dir, "dqn_x_s0") and run.options["group"] == "sweep"
    assert run.options["config"]["lr"] == 0.1 and run.options["resume"] == "allow"
    with MetricsLogger(run_dir, tensorboard=False) as logger:
        logger.log(100, {"charts/episodic_return": 1.0, "charts/SPS": 5.0})
        assert hook.send_new_lines(run_dir / "metrics.jsonl") == 1
        logger.log(200, {"charts/episodic_return": 2.0, "losses/td_loss": float("nan")})
        assert hook.send_new_lines(run_dir / "metrics.jsonl") == 1
        logger.truncate_after(100)  # a resume drops lines after its checkpoint, then re-logs them
        logger.log(200, {"charts/episodic_return": 2.0})
        logger.log(300, {"charts/episodic_return": 3.0})
    hook.finish(task)
    assert run.logged == [(100, {"charts/episodic_return": 1.0, "charts/SPS": 5.0}),
                          (200, {"charts/episodic_return": 2.0}),  # the NaN loss left out
                          (300, {"charts/episodic_return": 3.0})]  # fmt: skip
    assert run.finished


def test_wandb_offline_run_records_the_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "sweep" / "dqn_x_s0"
    run_dir.mkdir(parents=True)
    task = Task(name="dqn_x_s0", kind="agent", target="dqn", config={}, run_dir=str(run_dir))
    hook = WandbHook(project="tdgen-test", mode="offline", dir=str(tmp_path), interval=0.2)
    hook.start(task)
    with MetricsLogger(run_dir, tensorboard=False) as logger:
        for step in (100, 200, 300):
            logger.log(step, {"charts/episodic_return": step / 100})
    hook.finish(task)
    (record,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    for _ in range(100):  # wandb's service process may still be writing the log
        if b"charts/episodic_return" in record.read_bytes():
            break
        time.sleep(0.1)
    assert b"charts/episodic_return" in record.read_bytes()


def test_reproduce_plan_follows_the_experiments():
    fig3_quick = fig3.Config.quick()
    runs = planned_runs("fig3_value_update_rank", fig3_quick, 0, "out")
    assert len(runs) == 2 * 2 * fig3_quick.num_seeds  # agents x rewards x seeds
    assert fig3_quick.num_seeds == 4
    run, agent, cfg, path = runs[0]
    assert run == fig3.run_name("dqn", "minatar/breakout", "dense", 0) and agent == "dqn"
    assert cfg == fig3.agent_config(fig3_quick, "dqn", "minatar/breakout", "dense", 0)
    assert str(path) == f"out/fig3_value_update_rank/runs/{run}"
    assert planned_runs("fig9_kernel_td", None, 0, "out") == []
    names = [
        "fig8_value_fourier",
        "fig12_update_matrices",
        "fig3_value_update_rank",
        "fig9_kernel_td",
    ]
    configs = {n: get_experiment(n).config("paper") for n in names}
    assert dependencies("fig12_update_matrices", configs["fig12_update_matrices"], names) == {
        "fig3_value_update_rank"
    }
    assert waves(names, configs) == [
        ["fig3_value_update_rank", "fig9_kernel_td"],
        ["fig8_value_fourier", "fig12_update_matrices"],
    ]


def test_reproduce_with_backend_writes_results_and_report(tmp_path):
    out = tmp_path / "results"
    report = reproduce_with_backend(["fig9_kernel_td"], "quick", out, LocalBackend())
    result = json.loads((out / "fig9_kernel_td" / "result.json").read_text())
    assert result["scale"] == "quick" and report == out / "report.md"
    assert "fig9_kernel_td" in report.read_text()
    stamp = (out / "fig9_kernel_td" / "result.json").stat().st_mtime_ns
    seen = []
    reproduce_with_backend(["fig9_kernel_td"], "quick", out, LocalBackend(), on_result=seen.append)
    assert [r.status for r in seen] == ["skipped"]  # a finished experiment is not recomputed
    assert (out / "fig9_kernel_td" / "result.json").stat().st_mtime_ns == stamp
