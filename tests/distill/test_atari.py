"""Distillation from Atari value teachers (envpool, frame-once host replay): host-sampled batches,
collection by the teacher during distillation (Appendix B.3), resume, `tdgen evaluate` of Atari runs."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("envpool")

from tdgen import streams  # noqa: E402
from tdgen.agents import DQNConfig, train  # noqa: E402
from tdgen.agents.value_based.frame_replay import (  # noqa: E402
    HostReplay,
    gather,
    sample_indices,
    valid_flat_indices,
)
from tdgen.distill import (  # noqa: E402
    DistillConfig,
    Distiller,
    distill,
    host_replay,
    load_teacher,
    resume_distill,
)
from tdgen.policies import evaluate_run  # noqa: E402
from tdgen.runs import RunDir  # noqa: E402
from tdgen.runs.checkpoint import checkpoint_path, complete_checkpoints, load_checkpoint  # noqa: E402
from tdgen.runs.loop import WALL_CLOCK_FIELDS  # noqa: E402
from tdgen.runs.metrics import read_metrics  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def atari_teacher(tmp_path_factory):
    config = DQNConfig.nature(
        env="atari/Pong", frames=480, num_envs=4, buffer_size=400, batch_size=8,
        learning_starts=80, target_period=80, epsilon_decay_frames=200, log_every=240,
        probe_every=0, checkpoint_every=0, encoder="mlp", keep_replay=True,
    )  # fmt: skip
    return train("dqn", config, tmp_path_factory.mktemp("t") / "dqn", progress=False)


def student(teacher, **overrides):
    values = dict(teacher=str(teacher), objective="q", steps=60, batch_size=16, lr=1e-3,
                  eval_every=0, eval_envs=2, eval_steps=20, probe_every=30, probe_k=16,
                  log_every=30)  # fmt: skip
    return DistillConfig(**{**values, **overrides})


def comparable(path):
    return [json.dumps({k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS}, sort_keys=True)
            for r in read_metrics(path)]  # fmt: skip


def test_the_teacher_brings_its_frame_once_replay_and_a_student_samples_it_on_the_host(
    atari_teacher,
):
    teacher = load_teacher(atari_teacher)
    assert teacher.host_stepped and isinstance(teacher.replay, HostReplay)
    distiller = Distiller.build(student(atari_teacher))
    assert distiller.frame_replay
    state = distiller.init()
    assert state.replay == () and int(state.updates) == 0  # the data are the teacher's
    # One segment of one update is `learn` on the batch drawn from (seed, SAMPLE, 0).
    config = student(atari_teacher, steps=1, log_every=1, probe_every=0)
    distiller = Distiller.build(config)
    with host_replay.segments(distiller, distiller.init()) as advance:
        stepped = advance(distiller.init())
    rng = np.random.default_rng([config.seed, streams.SAMPLE, 0])
    batch = gather(teacher.replay, *sample_indices(teacher.replay, rng, config.batch_size))
    by_hand = distiller.learn(distiller.init(), {k: jnp.asarray(v) for k, v in batch.items()})
    for a, b in zip(jax.tree.leaves(stepped.params), jax.tree.leaves(by_hand.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(stepped.updates) == 1


def test_a_q_student_trains_probes_and_resumes_bit_exactly(atari_teacher, tmp_path):
    config = student(atari_teacher, checkpoint_every=30, keep_checkpoints=3)
    reference = distill(config, tmp_path / "reference", progress=False)
    rows = read_metrics(reference)
    losses = [r["losses/distill_loss"] for r in rows if "losses/distill_loss" in r]
    assert len(losses) == 2 and losses[-1] < losses[0]
    ranks = [r for r in rows if "interference/update_rank" in r]
    assert [r["step"] for r in ranks] == [30, 60]
    probe = np.load(RunDir.open(reference).probes / "step_000000000030.npz")
    valid = set(valid_flat_indices(load_teacher(atari_teacher).replay).tolist())
    assert set(probe["sample_indices"].ravel().tolist()) <= valid  # the ring's flat indices
    interrupted = tmp_path / "interrupted"
    shutil.copytree(reference, interrupted)
    run = RunDir.open(interrupted)
    for path in run.checkpoints.glob("ckpt_000000000060*"):
        path.unlink()
    assert complete_checkpoints(run.checkpoints) == [30]
    resume_distill(interrupted, progress=False)
    assert comparable(interrupted) == comparable(reference)
    last = checkpoint_path(RunDir.open(reference).checkpoints, 60)
    assert (interrupted / last.relative_to(reference)).read_bytes() == last.read_bytes()
    _, state = load_checkpoint(last, Distiller.build(config).template(), kind="distill")
    assert state.replay == ()  # networks only: no copy of the teacher's replay


def test_the_teacher_collects_into_the_ring_while_a_bc_student_trains(atari_teacher, tmp_path):
    teacher_files = {p: p.read_bytes() for p in (atari_teacher / "checkpoints").iterdir()}
    before = load_teacher(atari_teacher).replay
    config = student(atari_teacher, objective="bc", ent_coef=0.1, collect=True, collect_every=2,
                     teacher_epsilon=0.1, checkpoint_every=30, keep_replay=True)  # fmt: skip
    out = distill(config, tmp_path / "bc", progress=False)
    distiller = Distiller.build(config)
    _, state = load_checkpoint(checkpoint_path(RunDir.open(out).checkpoints, 60),
                               distiller.template(), kind="distill")  # fmt: skip
    replay = state.replay
    assert isinstance(replay, HostReplay)
    written = 60 // 2  # one row every collect_every updates
    assert int(replay.position) == (int(before.position) + written) % replay.slots
    rows = (int(before.position) + np.arange(written)) % replay.slots
    assert replay.first[rows[0]].all() and replay.valid[rows[1:-1]].any()
    assert not np.array_equal(replay.frames[rows[-1]], before.frames[rows[-1]])
    assert not replay.valid[(int(before.position) - 1) % replay.slots].any()  # before the pool
    # The teacher's run is read, never written.
    assert {p: p.read_bytes() for p in (atari_teacher / "checkpoints").iterdir()} == teacher_files
    # A collecting student resumes (a new pool: not bit-exact, as the teacher's own loop).
    run = RunDir.open(out)
    for path in run.checkpoints.glob("ckpt_000000000060*"):
        path.unlink()
    resume_distill(out, progress=False)
    assert [r["step"] for r in read_metrics(out) if "losses/distill_loss" in r] == [30, 60]


def test_tdgen_evaluate_works_for_atari_teachers_and_students(atari_teacher, tmp_path):
    student_run = distill(student(atari_teacher, objective="bc", steps=30, probe_every=0),
                          tmp_path / "bc", progress=False)  # fmt: skip
    kwargs = dict(num_states=32, eval_envs=2, eval_steps=20, scales=(0.0, 0.1), weights=(0.5,))
    for run in (atari_teacher, student_run):
        out = evaluate_run(run, tmp_path / f"eval-{run.name}", **kwargs)
        result = json.loads((out / "evaluation.json").read_text())
        assert set(result["returns"]) == {"train"}  # Atari has no held-out levels
        assert result["num_states"] == 32 and result["policy"] == "epsilon-greedy 0.01"
        assert result["robustness"]["action_agreement"][0] == 1.0
    again = evaluate_run(student_run, tmp_path / "again", **kwargs)
    first = tmp_path / f"eval-{student_run.name}" / "evaluation.json"
    assert (again / "evaluation.json").read_text() == first.read_text()


def test_a_replay_smaller_than_a_batch_is_refused_before_writing(atari_teacher, tmp_path):
    with pytest.raises(ValueError, match="sampleable transitions, fewer than batch_size 4096"):
        distill(student(atari_teacher, batch_size=4096), tmp_path / "big", progress=False)
    assert not (tmp_path / "big").exists()


def test_a_teacher_replay_larger_than_free_memory_is_refused_before_loading(
    atari_teacher, tmp_path, monkeypatch
):
    from tdgen.agents.value_based import frame_replay

    monkeypatch.setattr(frame_replay, "available_memory", lambda: 1_000)
    with pytest.raises(MemoryError, match=r"teacher .*dqn: buffer_size 400 needs .* GiB"):
        distill(student(atari_teacher), tmp_path / "oom", progress=False)
    assert not (tmp_path / "oom").exists()
