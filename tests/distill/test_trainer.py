"""Distillation runs end to end: learning, evaluation, probes, resume, bad teachers and objectives."""

import shutil

import jax
import numpy as np
import pytest

from tdgen.agents import PPOConfig, train
from tdgen.distill import Distiller, distill, load_teacher, resume_distill
from tdgen.runs import CheckpointError, RunDir
from tdgen.runs.checkpoint import complete_checkpoints
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow


def test_q_regression_fits_the_teacher_and_logs_ranks_and_returns(dqn_teacher, tmp_path, tiny):
    out = distill(tiny(dqn_teacher, objective="q", steps=600, lr=1e-3), tmp_path / "q",
                  progress=False)  # fmt: skip
    rows = read_metrics(out)
    losses = [r["losses/distill_loss"] for r in rows if "losses/distill_loss" in r]
    assert losses[-1] < 0.3 * losses[0], losses
    assert [r["step"] for r in rows if "interference/update_rank" in r] == [200, 400, 600]
    assert all(np.isfinite(r["charts/train_return"]) for r in rows if "charts/train_return" in r)
    # The student's data is the teacher's replay buffer at its last checkpoint.
    teacher = load_teacher(dqn_teacher)
    state = Distiller.build(tiny(dqn_teacher), teacher).init()
    np.testing.assert_array_equal(state.replay.obs, teacher.replay.obs)


def test_resume_replays_the_uninterrupted_distillation(dqn_teacher, tmp_path, tiny):
    config = tiny(dqn_teacher, objective="double_q", checkpoint_every=200, keep_checkpoints=3,
                  collect=True, collect_every=2, target_period=50)  # fmt: skip
    reference = distill(config, tmp_path / "reference", progress=False)
    interrupted = tmp_path / "interrupted"
    shutil.copytree(reference, interrupted)
    run = RunDir.open(interrupted)
    for updates in complete_checkpoints(run.checkpoints)[1:]:
        for path in run.checkpoints.glob(f"ckpt_{updates:012d}*"):
            path.unlink()
    resume_distill(interrupted, progress=False)

    def comparable(path):
        return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS}
                for r in read_metrics(path)]  # fmt: skip

    assert comparable(interrupted) == comparable(reference)


@pytest.mark.timeout(600)
def test_policy_teacher_kl_student_is_evaluated_on_held_out_levels(tmp_path, tiny):
    config = PPOConfig.minatar(
        "minatar/asterix", num_envs=4, num_steps=16, frames=256, num_minibatches=2, num_levels=3,
        test_num_levels=4, eval_every=0, probe_every=0, checkpoint_every=0, encoder="mlp",
        hidden_size=32,
    )  # fmt: skip
    teacher = train("ppo", config, tmp_path / "ppo", progress=False)
    out = distill(tiny(teacher, objective="kl", buffer_size=256, num_envs=4, steps=200,
                       probe_every=100), tmp_path / "kl", progress=False)  # fmt: skip
    rows = read_metrics(out)
    assert "charts/test_return" in rows[-1] and "charts/train_return" in rows[-1]
    assert "interference/update_rank" in rows[-1]
    with pytest.raises(ValueError, match="use kl or bc"):
        Distiller.build(tiny(teacher, objective="q"))


def test_bad_teachers_and_objectives_fail_clearly(dqn_teacher, tmp_path, tiny):
    with pytest.raises(ValueError, match="needs a policy teacher"):
        Distiller.build(tiny(dqn_teacher, objective="kl"))
    with pytest.raises(ValueError, match="objective must be one of"):
        tiny(dqn_teacher, objective="vd")
    with pytest.raises(CheckpointError, match="no complete checkpoint at frame 1234"):
        load_teacher(dqn_teacher, 1234)
    with pytest.raises(ValueError, match="not a tdgen run directory"):
        distill(tiny(tmp_path / "nowhere"), tmp_path / "student", progress=False)
    assert not (tmp_path / "student").exists()
    assert jax.tree.leaves(load_teacher(dqn_teacher).params)
