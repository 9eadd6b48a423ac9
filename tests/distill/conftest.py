"""A small DQN teacher the distillation tests share, and a tiny student config."""

import pytest

from tdgen.agents import DQNConfig, train
from tdgen.distill import DistillConfig


@pytest.fixture(scope="session")
def dqn_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "dqn"
    config = DQNConfig.minatar(
        frames=2_000, num_envs=4, buffer_size=2_000, batch_size=16, learning_starts=100,
        train_every=4, target_period=200, epsilon_decay_frames=400, log_every=500,
        probe_every=1_000, probe_k=16, checkpoint_every=1_000, encoder="mlp",
        keep_replay=True,  # students distil from it
    )  # fmt: skip
    return train("dqn", config, out, progress=False)


def _tiny(teacher, **overrides):
    values = dict(teacher=str(teacher), steps=400, eval_every=200, eval_envs=4, eval_steps=200,
                  probe_every=200, probe_k=16, log_every=100, num_quantiles=11)  # fmt: skip
    return DistillConfig(**{**values, **overrides})


@pytest.fixture(scope="session")
def tiny():
    """`tiny(teacher, **overrides)`: a 400-update student config with small probes and evals."""
    return _tiny
