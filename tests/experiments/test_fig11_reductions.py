"""Figure 11's second reduction: update ranks recomputed from a student's final checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.agents import DQNConfig, train
from tdgen.distill import DistillConfig, distill
from tdgen.distill.trainer import Distiller
from tdgen.experiments import fig11_value_distillation_objectives as fig11
from tdgen.runs import RunDir
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def advantage_student(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig11")
    teacher = train("dqn", DQNConfig.minatar(
        frames=1_500, num_envs=4, buffer_size=1_500, batch_size=16, learning_starts=100,
        train_every=4, target_period=200, epsilon_decay_frames=400, log_every=500,
        probe_every=1_500, probe_k=16, encoder="mlp", keep_replay=True,
    ), out / "teacher", progress=False)  # fmt: skip
    # the student keeps its final replay, as Figure 11's do: the recomputed probe reads it
    config = DistillConfig(teacher=str(teacher), objective="advantage", steps=300, eval_every=0,
                           probe_every=150, probe_k=16, probe_draws=2, log_every=150,
                           keep_replay=True)  # fmt: skip
    return distill(config, out / "advantage", progress=False)


def test_raw_reduction_recomputed_from_the_checkpoint_equals_the_logged_probe(advantage_student):
    logged = [r[fig11.RANK] for r in read_metrics(advantage_student) if fig11.RANK in r][-1]
    (raw,) = fig11.centred_ranks([advantage_student], centred=False)
    assert len(raw) == 2 and np.mean(raw) == pytest.approx(logged)
    (centred,) = fig11.centred_ranks([advantage_student])
    assert len(centred) == 2 and all(1 <= r <= 16 for r in centred)


def test_centred_values_have_zero_mean_per_state(advantage_student):
    distiller = Distiller.build(RunDir.open(advantage_student).load_config(DistillConfig))
    params = distiller.init_params(jax.random.PRNGKey(0))
    obs = jnp.zeros((3, *distiller.teacher.env.observation_shape),
                    distiller.teacher.env.observation_dtype)  # fmt: skip
    values = fig11.centred_values(distiller)(params, obs)
    np.testing.assert_allclose(np.asarray(values.mean(axis=-1)), 0.0, atol=1e-6)
    raw = distiller.values(params, obs)
    np.testing.assert_allclose(np.asarray(values), np.asarray(raw - raw.mean(-1, keepdims=True)))
