"""The Probe as an SB3 callback: it logs the Probe's names, its values equal the measures written
out plainly from the model (SB3's own action distribution, PPO's and DQN's losses), and it leaves
training unchanged."""

import copy

import numpy as np
import pytest

sb3 = pytest.importorskip(
    "stable_baselines3",
    reason="stable-baselines3 is not installed: the SB3 callback needs the extra, "
    "pip install 'tdgen[sb3]'",
)
torch = pytest.importorskip("torch")

from tdgen.interference.torch import update_matrix  # noqa: E402
from tdgen.interference.torch.sb3 import DynamicsCallback, dynamics_callback  # noqa: E402


def params(model):
    return [p.detach().clone() for p in model.policy.parameters()]


class ActionLogits(torch.nn.Module):
    """An SB3 actor-critic policy's action logits as SB3 computes them (`get_distribution`)."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        return self.policy.get_distribution(obs).distribution.logits


def clipped_surrogate(clip):
    """PPO's loss on one rollout sample (Schulman et al. 2017, Eq. 7)."""

    def loss(module, t):
        logprob = torch.log_softmax(module(t["obs"][None])[0], -1)[t["action"]]
        ratio = torch.exp(logprob - t["old_log_prob"])
        advantage = t["advantage"]
        return -torch.min(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage)

    return loss


def huber_td(target_network, gamma):
    """DQN's loss on one transition: the Huber TD error against the target network's max."""

    def loss(module, t):
        with torch.no_grad():
            y = t["reward"] + gamma * (1 - t["done"]) * target_network(t["next_obs"][None]).max()
        return torch.nn.functional.smooth_l1_loss(module(t["obs"][None])[0, t["action"]], y)

    return loss


def plain_measures(model, batch):
    """Update rank, churn and gradient norm of the model's policy on the batch: one step of a copy
    of its optimiser on a deep copy of the network, on the mean loss; the update matrix (no
    centering) by tdgen, its rank by numpy's SVD."""
    if isinstance(model, sb3.DQN):  # Q-values, greedy churn
        module, loss_fn, reduce = model.q_net, huber_td(model.q_net_target, model.gamma), "max"
    else:  # action probabilities, total-variation churn
        module, loss_fn = ActionLogits(model.policy), clipped_surrogate(model.clip_range(1.0))
        reduce = "policy"
    optimizer, obs = model.policy.optimizer, batch["obs"]
    twin = copy.deepcopy(module)
    twin_optimizer = type(optimizer)(twin.parameters(), **optimizer.defaults)
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # no shared state
    losses = [loss_fn(twin, {key: v[i] for key, v in batch.items()}) for i in range(len(obs))]
    torch.stack(losses).mean().backward()
    grads = [p.grad.double() for p in twin.parameters() if p.grad is not None]
    twin_optimizer.step()
    with torch.no_grad():
        before, after = module(obs), twin(obs)
    if reduce == "max":
        churn = (before.argmax(-1) != after.argmax(-1)).double().mean()
    else:
        churn = (0.5 * (after.softmax(-1) - before.softmax(-1)).abs().sum(-1)).mean()
    A = update_matrix(module, optimizer, loss_fn, batch, reduce=reduce, center="none")
    s = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    return {
        "interference/update_rank": int(np.sum(s > 0.1 * s[0])),
        "dynamics/churn": float(churn),
        "dynamics/grad_norm": float(torch.sqrt(sum((g**2).sum() for g in grads))),
    }


class ReferenceCallback(DynamicsCallback):
    """The callback, keeping `plain_measures` of every batch it probes, taken just before."""

    def _on_training_start(self):
        super()._on_training_start()
        self.references = []

    def _batch(self):
        batch = super()._batch()
        if batch is not None:
            self.references.append(plain_measures(self.model, batch))
        return batch


@pytest.mark.parametrize("algorithm", ["PPO", "DQN"])
def test_the_callback_logs_and_does_not_change_training(algorithm):
    cls = getattr(sb3, algorithm)
    kwargs = {"n_steps": 128, "batch_size": 32} if algorithm == "PPO" else {
        "learning_starts": 64, "buffer_size": 1_000, "train_freq": 4}  # fmt: skip

    def learn(callback):
        model = cls("MlpPolicy", "CartPole-v1", seed=3, device="cpu", **kwargs)
        model.learn(256, callback=callback)
        return model

    callback = ReferenceCallback(every=128, k=16, measures=("dormant", "grad_norm", "churn",
                                                            "update_rank"), seed=0)  # fmt: skip
    measured, plain = learn(callback), learn(None)
    for a, b in zip(params(measured), params(plain), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # bit for bit
    # at the first rollout end holding k samples (DQN: from learning_starts, 64), then every 128
    want = [128, 256] if algorithm == "PPO" else [64, 128, 256]
    assert [row["step"] for row in callback.history] == want
    for row, reference in zip(callback.history, callback.references, strict=True):
        assert 1 <= row["interference/update_rank"] <= 16
        assert row["interference/update_rank"] == reference["interference/update_rank"], row
        assert 0 <= row["dynamics/churn"] <= 1 and np.isfinite(row["dynamics/grad_norm"])
        for name in ("dynamics/churn", "dynamics/grad_norm"):
            np.testing.assert_allclose(row[name], reference[name], rtol=1e-5, equal_nan=False,
                                       err_msg=name)  # fmt: skip
        assert row["perf/probe_seconds"] > 0


def test_the_default_measures_are_the_agents_and_the_update_rank():
    from tdgen.interference.torch.sb3 import DEFAULT

    assert dynamics_callback().measures == DEFAULT
    assert "update_rank" in DEFAULT and "dormant" in DEFAULT


def test_bad_arguments_are_one_line():
    with pytest.raises(ValueError, match="every >= 1 and k >= 2"):
        dynamics_callback(every=0)
