"""The Probe as an SB3 callback: it logs the Probe's names and leaves training unchanged."""

import numpy as np
import pytest

sb3 = pytest.importorskip(
    "stable_baselines3",
    reason="stable-baselines3 is not installed: the SB3 callback needs the extra, "
    "pip install 'tdgen[sb3]'",
)
torch = pytest.importorskip("torch")

from tdgen.interference.torch.sb3 import dynamics_callback  # noqa: E402


def params(model):
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.parametrize("algorithm", ["PPO", "DQN"])
def test_the_callback_logs_and_does_not_change_training(algorithm):
    cls = getattr(sb3, algorithm)
    kwargs = {"n_steps": 128, "batch_size": 32} if algorithm == "PPO" else {
        "learning_starts": 64, "buffer_size": 1_000, "train_freq": 4}  # fmt: skip

    def learn(callback):
        model = cls("MlpPolicy", "CartPole-v1", seed=3, device="cpu", **kwargs)
        model.learn(256, callback=callback)
        return model

    callback = dynamics_callback(every=128, k=16, measures=("dormant", "grad_norm", "churn",
                                                            "update_rank"))  # fmt: skip
    measured, plain = learn(callback), learn(None)
    for a, b in zip(params(measured), params(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # bit for bit
    # at the first rollout end holding k samples (DQN: step 16), then every 128 steps
    want = [128, 256] if algorithm == "PPO" else [16, 128, 256]
    assert [row["step"] for row in callback.history] == want
    for row in callback.history:
        assert 1 <= row["interference/update_rank"] <= 16
        assert 0 <= row["dynamics/churn"] <= 1 and np.isfinite(row["dynamics/grad_norm"])
        assert row["perf/probe_seconds"] > 0


def test_bad_arguments_are_one_line():
    with pytest.raises(ValueError, match="every >= 1 and k >= 2"):
        dynamics_callback(every=0)
