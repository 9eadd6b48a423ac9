"""Tiny configurations shared by the agent tests (MLP or MinAtar CNN, buffer 2k, few thousand frames)."""

import pytest

from tdgen.agents import DQNConfig


def tiny(cls=DQNConfig, **overrides):
    """A config that compiles and runs in seconds on 2 loaded cores."""
    values = dict(
        frames=800, num_envs=4, buffer_size=2_000, batch_size=16, learning_starts=100,
        train_every=4, target_period=200, epsilon_decay_frames=400, log_every=200,
        probe_every=400, probe_k=16, checkpoint_every=400, encoder="mlp",
    )  # fmt: skip
    return cls.minatar(**{**values, **overrides})


@pytest.fixture
def make_config():
    """tiny(cls=DQNConfig, **overrides) (conftest is not importable in importlib mode)."""
    return tiny
