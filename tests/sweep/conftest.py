"""Tiny sweeps shared by the sweep tests: MLP DQN and PPO runs that compile and train in seconds."""

from pathlib import Path

import pytest

from tdgen.sweep.launch import default_cache_dir

TINY_DQN = dict(
    frames=800, num_envs=4, buffer_size=2_000, batch_size=16, learning_starts=100, train_every=4,
    target_period=200, epsilon_decay_frames=400, log_every=200, probe_every=0,
    checkpoint_every=400, encoder="mlp",
)  # fmt: skip
TINY_PPO = dict(
    num_envs=4, num_steps=16, frames=256, num_minibatches=2, eval_every=0, probe_every=0,
    checkpoint_every=128, encoder="mlp", hidden_size=32,
)  # fmt: skip


@pytest.fixture
def tiny_dqn():
    """Config fields of a tiny DQN run (800 frames, checkpoints at 400 and 800)."""
    return dict(TINY_DQN)


@pytest.fixture
def tiny_ppo():
    """Config fields of a tiny PPO run (256 frames, checkpoints at 128 and 256)."""
    return dict(TINY_PPO)


@pytest.fixture
def jax_cache(request) -> Path:
    """The test session's persistent XLA cache (tests/conftest.py), for spawned workers too."""
    return default_cache_dir()
