"""Students that differ only by seed train as one group: each seed bit for bit its solo run."""

import shutil

import pytest

from tdgen.distill import distill, ensure_distill_runs
from tdgen.runs import RunDir
from tdgen.runs.checkpoint import complete_checkpoints, latest_checkpoint
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow

SEEDS = (3, 4)


def comparable(path):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in read_metrics(path)]


def same_files(a, b, pattern):
    files = sorted(p.relative_to(a) for p in a.rglob(pattern))
    assert files, pattern
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def group_and_solo(dqn_teacher, tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    configs = [tiny(dqn_teacher, objective="qr", checkpoint_every=200, keep_checkpoints=3,
                     collect=True, collect_every=2, target_period=50, seed=s)
               for s in SEEDS]  # fmt: skip
    group = ensure_distill_runs(configs, [root / f"group_s{s}" for s in SEEDS], lanes="map")
    solo = [
        distill(c, root / f"solo_s{s}", progress=False) for c, s in zip(configs, SEEDS, strict=True)
    ]
    return configs, group, solo


def test_a_seed_in_a_map_group_is_its_solo_run_bit_for_bit(group_and_solo):
    _, group, solo = group_and_solo
    for g, s in zip(group, solo, strict=True):
        assert comparable(g) == comparable(s)
        same_files(g, s, "ckpt_*.msgpack")  # every checkpoint: params, optimiser, buffer, key
        same_files(g, s, "*.npz")  # the probes' update matrices
    assert comparable(group[0]) != comparable(group[1])  # the seeds are different runs


def test_an_interrupted_group_resumes_and_a_complete_one_is_reused(group_and_solo, tmp_path):
    configs, group, _ = group_and_solo
    copies = [tmp_path / g.name for g in group]
    for g, c in zip(group, copies, strict=True):
        shutil.copytree(g, c)
        run = RunDir.open(c)
        for updates in complete_checkpoints(run.checkpoints)[1:]:  # keep only update 200
            for path in run.checkpoints.glob(f"ckpt_{updates:012d}*"):
                path.unlink()
    ensure_distill_runs(configs, copies, lanes="map")
    for g, c in zip(group, copies, strict=True):
        assert comparable(c) == comparable(g)
        same_files(g, c, "ckpt_*.msgpack")
    newest = latest_checkpoint(RunDir.open(copies[0]).checkpoints)
    stamp = newest.stat().st_mtime_ns
    ensure_distill_runs(configs, copies, lanes="map")  # complete: nothing trains or changes
    assert newest.stat().st_mtime_ns == stamp


def test_students_that_differ_by_more_than_seed_train_apart(dqn_teacher, tmp_path, tiny):
    configs = [tiny(dqn_teacher, objective="q", steps=100, eval_every=0, probe_every=0, seed=s,
                    lr=lr) for s, lr in ((0, 2.5e-4), (1, 1e-3), (2, 1e-3))]  # fmt: skip
    runs = ensure_distill_runs(configs, [tmp_path / str(i) for i in range(3)])
    alone = distill(configs[0], tmp_path / "alone", progress=False)
    assert comparable(runs[0]) == comparable(alone)
    assert all(complete_checkpoints(RunDir.open(r).checkpoints) == [100] for r in runs)
