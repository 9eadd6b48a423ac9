"""The local backend: tiny runs train, finished runs are skipped, killed runs resume on relaunch,
and a directory holding another config is refused before anything runs."""

import importlib.util
import json
from pathlib import Path

import jax
import pytest

from tdgen import cli
from tdgen.agents import DQNConfig
from tdgen.runs import RunDir
from tdgen.runs.checkpoint import complete_checkpoints
from tdgen.runs.metrics import read_metrics
from tdgen.runs.rundir import KEEP_REPLAY_ENV, keep_replays
from tdgen.sweep import Grid, LocalBackend, SweepError, run_sweep
from tdgen.sweep.command import sweep_main
from tdgen.sweep.grid import expand
from tdgen.sweep.launch import check_results, make_tasks
from tdgen.sweep.tasks import Task, TaskResult, run_task, seed_groups, set_compilation_cache
from tdgen.sweep.wandb_hook import WandbHook

pytestmark = pytest.mark.slow

WALL_CLOCK = ("charts/SPS", "perf/probe_seconds", "perf/checkpoint_seconds", "perf/eval_seconds")


def without_wall_clock(rows):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]


def test_skip_finished_and_resume_on_relaunch(tmp_path, tiny_dqn, jax_cache):
    out = tmp_path / "sweep"
    grid = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0, 1), set=tiny_dqn)
    wandb = None
    if importlib.util.find_spec("wandb"):  # optional: log the first launch to W&B, offline
        wandb = WandbHook(project="tdgen-test", mode="offline", dir=str(tmp_path), interval=1.0)
    first = run_sweep([grid], out, LocalBackend(), cache_dir=jax_cache, wandb=wandb)
    assert [r.status for r in first] == ["trained", "trained"], first
    if wandb:  # one offline W&B run per training run
        assert len(list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))) == 2
    names = [r.name for r in first]
    runs = [out / n for n in names]
    record = json.loads((out / "sweep.json").read_text())
    assert sorted(record["points"]) == sorted(names) and len(record["launches"]) == 1
    finished = without_wall_clock(read_metrics(runs[0]))

    # Kill seed 0 after its first checkpoint: drop the final checkpoint, keep later metric lines
    # (an interrupted run logs past its last checkpoint).
    for suffix in ("msgpack", "done"):
        (runs[0] / "checkpoints" / f"ckpt_{800:012d}.{suffix}").unlink()
    assert complete_checkpoints(runs[0] / "checkpoints") == [400]
    # Every file of the finished run, and the killed run's config and surviving checkpoint.
    kept = [p for p in runs[1].rglob("*") if p.is_file()] + [runs[0] / "config.json"]
    kept += list((runs[0] / "checkpoints").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in kept}

    second = run_sweep([grid], out, LocalBackend(), cache_dir=jax_cache)
    assert [r.status for r in second] == ["resumed", "skipped"], second
    assert complete_checkpoints(runs[0] / "checkpoints") == [400, 800]
    assert without_wall_clock(read_metrics(runs[0])) == finished  # exactly the uninterrupted run
    for path, stamp in stamps.items():  # nothing finished was rewritten
        assert path.stat().st_mtime_ns == stamp, path

    # A third launch with a larger grid keeps both runs and only trains the new point.
    bigger = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0, 1, 2), set=tiny_dqn)
    third = run_sweep([bigger], out, LocalBackend(), cache_dir=jax_cache)
    assert [r.status for r in third] == ["skipped", "skipped", "trained"]
    assert len(json.loads((out / "sweep.json").read_text())["launches"]) == 3


def test_a_directory_holding_another_config_is_refused(tmp_path, tiny_dqn):
    out = tmp_path / "sweep"
    grid = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0,), set=tiny_dqn)
    (point,) = expand([grid])
    RunDir.create(out / point.name, "dqn", DQNConfig.minatar(**tiny_dqn, lr=0.5).to_dict())
    with pytest.raises(ValueError, match=r"holds a different run \(fields \['lr'\] differ"):
        run_sweep([grid], out, LocalBackend())
    assert not (out / "sweep.json").exists()  # refused before anything was written


def test_failures_are_reported_and_the_rest_runs(tmp_path):
    bad = Task(name="bad", kind="agent", target="dqn", config={"env": "minatar/nope"},
               run_dir=str(tmp_path / "bad"), log_dir=str(tmp_path / "logs"))  # fmt: skip
    result = run_task(bad)
    assert result.status == "failed" and "unknown environment" in result.error
    assert "Traceback" in (tmp_path / "logs" / "bad.log").read_text()
    with pytest.raises(SweepError, match="1 of 2 runs failed: bad"):
        check_results([result, TaskResult("ok", "trained", 1.0)], tmp_path)


def test_process_pool_and_the_command(tmp_path, tiny_dqn, jax_cache):
    out = tmp_path / "pool"
    args = [f"{k}={v}" for k, v in tiny_dqn.items() if k != "frames"]
    results = sweep_main(agent=("dqn",), env=("minatar/breakout",), seeds=(0, 1), frames=800,
                         override=tuple(args), out=out, workers=2, jax_cache=jax_cache)  # fmt: skip
    assert [r.status for r in results] == ["trained", "trained"]
    assert (out / "report" / "report.md").exists()
    for result in results:
        assert complete_checkpoints(out / result.name / "checkpoints") == [400, 800]
    again = sweep_main(agent=("dqn",), env=("minatar/breakout",), seeds=(0, 1), frames=800,
                       override=tuple(args), out=out, dry_run=True)  # fmt: skip
    assert again == []


def test_points_that_differ_only_by_seed_train_as_one_group(tmp_path, tiny_dqn, jax_cache):
    out = tmp_path / "grouped"
    grids = [Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0, 1, 2), set=tiny_dqn),
             Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0,),
                  set={**tiny_dqn, "lr": 1e-3})]  # fmt: skip
    tasks = make_tasks(expand(grids), out, cache_dir=jax_cache)
    groups = seed_groups(tasks)
    assert [len(g) for g in groups] == [3, 1]  # the lr point is another program
    assert {t.config["seed"] for t in groups[0]} == {0, 1, 2}
    results = run_sweep(grids, out, LocalBackend(), cache_dir=jax_cache)
    assert [r.status for r in results] == ["trained"] * 4
    for task in tasks:
        assert complete_checkpoints(Path(task.run_dir) / "checkpoints") == [400, 800]
    assert [r.status for r in run_sweep(grids, out, LocalBackend())] == ["skipped"] * 4


def test_keep_replay_reaches_every_run_of_the_process_and_its_tasks(tmp_path, monkeypatch):
    """`--keep-replay` of `tdgen sweep` and `tdgen reproduce`, and a task made with it, set the
    variable every finishing run (here and in worker processes) reads."""

    def cleared():
        monkeypatch.delenv(KEEP_REPLAY_ENV, raising=False)
        assert not keep_replays()

    cleared()
    cli.main(["sweep", "--agent", "dqn", "--env", "minatar/breakout", "--seeds", "0",
              "--frames", "800", "--out", str(tmp_path / "sweep"), "--dry-run", "--keep-replay"])  # fmt: skip
    assert keep_replays()
    task = Task(name="bad", kind="agent", target="dqn", config={"env": "minatar/nope"},
                run_dir=str(tmp_path / "bad"))  # fmt: skip
    assert task.keep_replay  # read from the process making the task
    cleared()
    assert run_task(task).status == "failed" and keep_replays()  # the worker keeps them too
    cleared()
    cli.main(["reproduce", "fig9_kernel_td", "--scale", "smoke", "--out", str(tmp_path / "r"),
              "--keep-replay"])  # fmt: skip
    assert keep_replays()


def test_set_compilation_cache_creates_the_folder_and_keeps_a_setting_already_made(tmp_path):
    before = (jax.config.jax_compilation_cache_dir,
              jax.config.jax_persistent_cache_min_compile_time_secs)  # fmt: skip
    try:
        set_compilation_cache(None)
        assert jax.config.jax_compilation_cache_dir == before[0]
        cache = tmp_path / "xla"
        set_compilation_cache(cache, min_compile_seconds=2.0)
        assert cache.is_dir() and jax.config.jax_compilation_cache_dir == str(cache)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.0
        set_compilation_cache(cache, min_compile_seconds=7.0)  # already this folder: kept as set
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.0
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
