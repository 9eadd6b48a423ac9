"""Distillation from ProcGen teachers (envpool, host-stepped): buffer collected on the host, students
evaluated on training and held-out levels, resume bit for bit, `tdgen evaluate` of ProcGen runs."""

import json
import shutil

import jax
import numpy as np
import pytest

pytest.importorskip("envpool")

from tdgen.agents import DAACConfig, PPOConfig, train  # noqa: E402
from tdgen.distill import DistillConfig, Distiller, distill, load_teacher, resume_distill  # noqa: E402
from tdgen.policies import evaluate_run, load_policy, visited_states  # noqa: E402
from tdgen.runs import CheckpointError, RunDir  # noqa: E402
from tdgen.runs.checkpoint import checkpoint_path, complete_checkpoints  # noqa: E402
from tdgen.runs.loop import WALL_CLOCK_FIELDS  # noqa: E402
from tdgen.runs.metrics import read_metrics  # noqa: E402

pytestmark = pytest.mark.slow

GAME = "procgen/leaper"  # random-policy episodes of ~10-80 steps: evaluations finish episodes


def teacher_config(cls, **overrides):
    values = dict(num_envs=4, num_steps=32, frames=1_024, num_minibatches=2, num_levels=3,
                  test_num_levels=5, eval_every=0, probe_every=0, checkpoint_every=0,
                  encoder="mlp", hidden_size=32)  # fmt: skip
    return cls.procgen(GAME, **{**values, **overrides})


@pytest.fixture(scope="module")
def ppo_teacher(tmp_path_factory):
    return train("ppo", teacher_config(PPOConfig), tmp_path_factory.mktemp("t") / "ppo",
                 progress=False)  # fmt: skip


def student(teacher, **overrides):
    values = dict(teacher=str(teacher), objective="kl", steps=200, batch_size=32, lr=1e-3,
                  buffer_size=512, num_envs=4, eval_every=100, eval_envs=4, eval_steps=60,
                  probe_every=100, probe_k=16, log_every=50)  # fmt: skip
    return DistillConfig(**{**values, **overrides})


def comparable(path):
    """Metrics without wall-clock fields, as JSON text (nan compares equal to nan)."""
    return [json.dumps({k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS}, sort_keys=True)
            for r in read_metrics(path)]  # fmt: skip


def test_the_buffer_is_the_teachers_own_trajectories_on_its_training_levels(ppo_teacher):
    teacher = load_teacher(ppo_teacher)
    assert teacher.host_stepped and teacher.env.num_levels == 3
    replay = Distiller.build(student(ppo_teacher), teacher).init().replay
    assert replay.obs.shape == (128, 4, 64, 64, 3) and replay.obs.dtype == np.uint8
    assert int(replay.filled) == 128 and int(replay.position) == 0
    # Consecutive rows chain: the next observation is the following row's, except where an
    # episode ended (there, next_obs is the final frame and the next row a new level's first).
    obs, next_obs = np.asarray(replay.obs), np.asarray(replay.next_obs)
    chained = np.all(next_obs[:-1] == obs[1:], axis=(2, 3, 4))
    terminated = np.asarray(replay.terminated)[:-1]
    assert chained[~terminated].all() and not chained[terminated].any() and terminated.any()
    # Noisy float inputs (robustness) reach the network as they are, not cast back to uint8.
    x = replay.obs[0]
    np.testing.assert_allclose(teacher.outputs(teacher.params, x),
                               teacher.outputs(teacher.params, x / 255.0), atol=1e-5)  # fmt: skip


def trains_logs_ranks_and_evaluates(out, finite_returns: bool):
    rows = read_metrics(out)
    losses = [r["losses/distill_loss"] for r in rows if "losses/distill_loss" in r]
    assert losses[-1] < losses[0], losses
    assert [r["step"] for r in rows if "interference/update_rank" in r] == [100, 200]
    evals = [r for r in rows if "charts/test_return" in r]
    assert [r["step"] for r in evals] == [100, 200]
    if finite_returns:  # a greedy BC student may stand still: no leaper episode ends (nan)
        assert all(np.isfinite([r["charts/train_return"], r["charts/test_return"]]).all()
                   for r in evals)  # fmt: skip


def test_a_kl_student_trains_evaluates_on_both_level_sets_and_resumes_bit_exactly(
    ppo_teacher, tmp_path
):
    config = student(ppo_teacher, checkpoint_every=100, keep_checkpoints=3)
    reference = distill(config, tmp_path / "reference", progress=False)
    trains_logs_ranks_and_evaluates(reference, finite_returns=True)
    interrupted = tmp_path / "interrupted"
    shutil.copytree(reference, interrupted)
    run = RunDir.open(interrupted)
    for path in run.checkpoints.glob("ckpt_000000000200*"):
        path.unlink()
    assert complete_checkpoints(run.checkpoints) == [100]
    resume_distill(interrupted, progress=False)
    assert comparable(interrupted) == comparable(reference)  # losses, ranks, eval returns
    last = checkpoint_path(RunDir.open(reference).checkpoints, 200)
    assert (interrupted / last.relative_to(reference)).read_bytes() == last.read_bytes()
    # Evaluations are a function of (seed, updates) and the state: the same twice.
    distiller = Distiller.build(config)
    params, key = distiller.template().params, jax.random.PRNGKey(1)
    twice = [json.dumps(distiller.evaluate_returns(params, key, 100)) for _ in range(2)]
    assert twice[0] == twice[1]


def test_a_bc_student_trains_and_evaluates_on_both_level_sets(ppo_teacher, tmp_path):
    out = distill(student(ppo_teacher, objective="bc"), tmp_path / "bc", progress=False)
    trains_logs_ranks_and_evaluates(out, finite_returns=False)


def test_a_daac_teacher_teaches_a_kl_student(tmp_path):
    teacher = train("daac", teacher_config(DAACConfig, frames=256, value_epochs=2),
                    tmp_path / "daac", progress=False)  # fmt: skip
    out = distill(student(teacher, steps=100, eval_every=100, probe_every=100, buffer_size=256),
                  tmp_path / "kl", progress=False)  # fmt: skip
    last = read_metrics(out)[-1]
    assert "interference/update_rank" in last and np.isfinite(last["charts/test_return"])


def test_bad_teachers_and_options_are_refused_before_writing(ppo_teacher, tmp_path):
    with pytest.raises(
        ValueError, match="collect=True needs a gymnax or Atari value teacher.*--collect False"
    ):
        distill(student(ppo_teacher, collect=True), tmp_path / "collect", progress=False)
    with pytest.raises(ValueError, match="use kl or bc"):
        distill(student(ppo_teacher, objective="q"), tmp_path / "q", progress=False)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(ppo_teacher, incomplete)
    for path in (incomplete / "checkpoints").glob("*.done"):
        path.unlink()
    with pytest.raises(CheckpointError, match="has no complete checkpoint"):
        distill(student(incomplete), tmp_path / "from-incomplete", progress=False)
    made = ("collect", "q", "from-incomplete")
    assert not any((tmp_path / n).exists() for n in made)


def test_tdgen_evaluate_writes_returns_gap_robustness_for_procgen_runs(ppo_teacher, tmp_path):
    student_run = distill(student(ppo_teacher, objective="bc", steps=100, eval_every=0,
                                  probe_every=0), tmp_path / "bc", progress=False)  # fmt: skip
    kwargs = dict(num_states=64, eval_envs=4, eval_steps=60, scales=(0.0, 0.1), weights=(0.5,))
    for run, policy in ((ppo_teacher, "stochastic"), (student_run, "epsilon-greedy 0.01")):
        out = evaluate_run(run, tmp_path / f"eval-{run.name}", **kwargs)
        result = json.loads((out / "evaluation.json").read_text())
        returns = result["returns"]
        assert set(returns) == {"train", "test", "generalization_gap"}
        np.testing.assert_allclose(
            returns["generalization_gap"], returns["train"] - returns["test"]
        )
        assert result["num_states"] == 64 and result["policy"] == policy
        assert result["robustness"]["action_agreement"][0] == 1.0  # sigma 0: unperturbed
        assert (out / "robustness.png").is_file() and (out / "interpolation.png").is_file()
    again = evaluate_run(student_run, tmp_path / "again", **kwargs)
    first = tmp_path / f"eval-{student_run.name}" / "evaluation.json"
    assert (again / "evaluation.json").read_text() == first.read_text()  # seeded: deterministic
    states = visited_states(load_policy(student_run), 10, jax.random.PRNGKey(0), num_envs=4)
    assert states.shape == (10, 64, 64, 3) and states.dtype == np.uint8


def test_the_impala_students_segment_compiles_to_canonical_convolutions_only():
    """Figure 6's smoke student (a KL student of the procgen preset's IMPALA PPO teacher) ran
    >11 min in one segment when XLA:CPU left the gradient convolutions of its lax.scan in
    non-canonical form (naive loops; `tdgen.nets.conv`): every convolution of the compiled
    segment, teacher forward and student gradient, must be NHWC/HWIO."""
    import re

    from tdgen.agents.registry import AGENTS
    from tdgen.agents.value_based import replay as replay_lib
    from tdgen.distill.teacher import Teacher

    config = PPOConfig.procgen(GAME, num_levels=3, eval_every=0, probe_every=0,
                               checkpoint_every=0)  # fmt: skip
    assert config.encoder == "impala" and config.conv_impl == "xla"
    agent = AGENTS["ppo"].build(config)
    params, _, _ = agent.algorithm.init(jax.random.PRNGKey(0), agent.dummy_obs())
    teacher = Teacher("ppo", config, params, agent, "logits", agent.env, agent.test_env, None,
                      0, None, host_stepped=True)  # fmt: skip
    distiller = Distiller.build(student("unused", steps=2, log_every=2, eval_every=0,
                                        probe_every=0, batch_size=8, buffer_size=64), teacher)  # fmt: skip
    empty = replay_lib.init_replay(64, 4, agent.env.observation_shape)
    state = jax.eval_shape(distiller._init, jax.random.PRNGKey(0), empty)
    compiled = jax.jit(distiller.make_train().segment).lower(state).compile()
    labels = re.findall(r"dim_labels=([^,\s]+)", compiled.as_text())
    assert len(labels) == 59 and set(labels) == {
        "b01f_01io->b01f"
    }  # teacher 15, student 15 + 14 + 15
