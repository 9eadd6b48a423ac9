"""Ray (a local cluster of 2 CPUs) and submitit (its local executor) each run two tiny runs."""

import pytest

from tdgen.runs.checkpoint import complete_checkpoints
from tdgen.sweep import Grid, RayBackend, SlurmBackend, run_sweep
from tdgen.sweep.backends import make_backend

pytestmark = pytest.mark.slow


def test_ray_local_cluster_runs_two_tiny_runs(tmp_path, tiny_dqn, tiny_ppo, jax_cache):
    ray = pytest.importorskip("ray")
    out = tmp_path / "ray"
    grids = [
        Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0,), set=tiny_dqn),
        Grid(agents=("ppo",), envs=("minatar/breakout",), seeds=(0,), set=tiny_ppo),
    ]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_sweep(grids, out, RayBackend(cpus_per_run=1), cache_dir=jax_cache)
        assert [r.status for r in results] == ["trained", "trained"], results
        assert complete_checkpoints(out / results[0].name / "checkpoints") == [400, 800]
        assert complete_checkpoints(out / results[1].name / "checkpoints") == [128, 256]
        again = run_sweep(grids, out, RayBackend(), cache_dir=jax_cache)
        assert [r.status for r in again] == ["skipped", "skipped"]
        assert ray.is_initialized()  # a cluster the caller started is left running
    finally:
        ray.shutdown()


def test_submitit_local_executor_runs_two_tiny_runs(tmp_path, tiny_dqn, jax_cache):
    pytest.importorskip("submitit")
    out = tmp_path / "slurm"
    grid = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0, 1), set=tiny_dqn)
    backend = SlurmBackend(folder=out / "submitit", cluster="local", cpus_per_run=1, time_min=10)
    results = run_sweep([grid], out, backend, cache_dir=jax_cache)
    assert [r.status for r in results] == ["trained", "trained"], results
    for result in results:
        assert complete_checkpoints(out / result.name / "checkpoints") == [400, 800]
    assert any((out / "submitit").iterdir())  # submitit's job logs


def test_backend_options_are_checked():
    assert make_backend("local", "x", workers=3).workers == 3
    assert make_backend("slurm", "x").folder.name == "submitit"
    with pytest.raises(ValueError, match=r"options \['address'\] do not apply to the local"):
        make_backend("local", "x", address="auto")
    with pytest.raises(ValueError, match="unknown backend 'k8s'"):
        make_backend("k8s", "x")
