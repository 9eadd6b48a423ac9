"""The learning-dynamics Probe as a Stable-Baselines3 callback (optional extra `sb3`).

    from tdgen.interference.torch.sb3 import dynamics_callback
    model = PPO("MlpPolicy", "CartPole-v1")
    model.learn(100_000, callback=dynamics_callback(every=10_000, k=64))

Every ``every`` environment steps (checked when a rollout ends, so on the first rollout end at or
after each multiple), k samples are drawn from the model's own buffer (PPO, A2C: the rollout buffer
before the update, with its advantages and returns; DQN: the replay buffer) and
`tdgen.interference.torch.Probe` measures the policy network under the model's optimiser and the
algorithm's own per-sample loss: PPO's clipped surrogate (Schulman et al. 2017, Eq. 7) on the
action distribution ("policy" head: churn is a total-variation change) and DQN's Huber TD error
against the target network ("value" head: greedy churn). Values go to SB3's logger under the
Probe's names (`dynamics/...`, `interference/update_rank`), with `perf/probe_seconds`. Nothing of
the model changes (the Probe steps scratch copies). Discrete action spaces only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tdgen._extras import require
from tdgen.errors import InputError

torch = require("torch", "torch", "tdgen.interference.torch")
callbacks = require("stable_baselines3.common.callbacks", "sb3", "the SB3 callback")

from tdgen.interference.table import AGENT_DEFAULT_MEASURES  # noqa: E402
from tdgen.interference.torch.probe import Probe  # noqa: E402  (after the extras' checks)

# The measures agents log by default (the table's cheap ones), and with them the update rank.
CHEAP = AGENT_DEFAULT_MEASURES
DEFAULT = (*CHEAP, "update_rank")


class PolicyLogits(torch.nn.Module):
    """An SB3 actor-critic policy read as action logits [m, A] (the Probe's "policy" head).

    Computed from the policy's modules, not `get_distribution`, which stores its last
    distribution on the policy (a tensor of a vmapped call would then be copied with it).
    """

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        p = self.policy
        features = p.extract_features(obs, p.pi_features_extractor)
        return p.action_net(p.mlp_extractor.forward_actor(features))


def ppo_loss(clip_range: float):
    """PPO's clipped surrogate on one rollout sample (no value or entropy terms), of the
    `PolicyLogits` module it is given (the Probe steps copies of it)."""

    def loss(module, t):
        log_probs = torch.log_softmax(module(t["obs"][None])[0], dim=-1)
        ratio = torch.exp(log_probs.gather(-1, t["action"][None])[0] - t["old_log_prob"])
        advantage = t["advantage"]
        clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantage
        return -torch.minimum(ratio * advantage, clipped)

    return loss


def dqn_loss(q_net_target, gamma: float):
    """DQN's Huber TD error on one replay transition (Mnih et al. 2015)."""

    def loss(module, t):
        q = module(t["obs"][None])[0].gather(-1, t["action"][None])[0]
        with torch.no_grad():
            target = q_net_target(t["next_obs"][None])[0].max()
        y = t["reward"] + gamma * (1 - t["done"]) * target
        return torch.nn.functional.smooth_l1_loss(q, y)

    return loss


class DynamicsCallback(callbacks.BaseCallback):
    """`dynamics_callback`'s callback (see the module docstring)."""

    def __init__(self, every: int, k: int, measures: Sequence[str], seed: int, verbose: int = 0):
        super().__init__(verbose)
        if every < 1 or k < 2:
            raise InputError(f"dynamics_callback needs every >= 1 and k >= 2, got {every}, {k}")
        self.every, self.k, self.measures, self.seed = every, k, tuple(measures), seed
        self.probe, self.next_at, self.history = None, 0, []

    def _on_training_start(self) -> None:
        model = self.model
        if hasattr(model, "q_net"):  # DQN
            self.probe = Probe(model.q_net, model.policy.optimizer,
                               dqn_loss(model.q_net_target, model.gamma),
                               measures=self.measures, head="value", center="none")  # fmt: skip
        else:  # PPO, A2C: the surrogate of PPO's clip range (A2C: no clipping at 1e9)
            clip = model.clip_range(1.0) if hasattr(model, "clip_range") else 1e9
            self.probe = Probe(PolicyLogits(model.policy), model.policy.optimizer,
                               ppo_loss(clip), measures=self.measures,
                               head="policy", reduce="policy", center="none")  # fmt: skip

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # DQN's first updates come at learning_starts: nothing to measure before them
        if self.num_timesteps < max(self.next_at, getattr(self.model, "learning_starts", 0)):
            return
        batch = self._batch()
        if batch is None:  # fewer than k samples stored yet: try at the next rollout's end
            return
        self.next_at = (self.num_timesteps // self.every + 1) * self.every
        tick = time.perf_counter()
        values = self.probe(batch)
        values["perf/probe_seconds"] = time.perf_counter() - tick
        for name, value in values.items():
            self.logger.record(name, value)
        self.history.append({"step": self.num_timesteps, **values})

    def _batch(self):
        """k samples of the model's buffer as tensors, drawn from a generator of (seed, step)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.num_timesteps)
        model = self.model
        if hasattr(model, "rollout_buffer"):
            buffer = model.rollout_buffer
            n = buffer.buffer_size * buffer.n_envs
            if n < self.k:
                return None
            take = torch.randperm(n, generator=generator)[: self.k].numpy()

            def flat(x):
                return torch.as_tensor(x.reshape(n, *x.shape[2:])[take])

            return {"obs": flat(buffer.observations).float(),
                    "action": flat(buffer.actions).long().reshape(self.k),
                    "advantage": flat(buffer.advantages).float().reshape(self.k),
                    "old_log_prob": flat(buffer.log_probs).float().reshape(self.k)}  # fmt: skip
        buffer = model.replay_buffer  # drawn here: buffer.sample would move numpy's global RNG
        n = buffer.size() * buffer.n_envs
        if n < self.k or buffer.optimize_memory_usage:
            return None
        take = torch.randperm(n, generator=generator)[: self.k].numpy()

        def rows(x):
            x = x[: buffer.size()]
            return torch.as_tensor(x.reshape(n, *x.shape[2:])[take])

        done = rows(buffer.dones) * (1 - rows(buffer.timeouts))  # a time limit still bootstraps
        return {"obs": rows(buffer.observations).float(),
                "action": rows(buffer.actions).long().reshape(self.k),
                "next_obs": rows(buffer.next_observations).float(),
                "reward": rows(buffer.rewards).float().reshape(self.k),
                "done": done.float().reshape(self.k)}  # fmt: skip


def dynamics_callback(every: int = 10_000, k: int = 64, measures: Sequence[str] = DEFAULT,
                      seed: int = 0, verbose: int = 0) -> DynamicsCallback:  # fmt: skip
    """A callback that logs the Probe's ``measures`` (default: the agents' default measures and
    the update rank) every ``every`` steps on k buffer samples, from ``learning_starts`` on."""
    return DynamicsCallback(every, k, measures, seed, verbose)


__all__ = [
    "CHEAP",
    "DEFAULT",
    "DynamicsCallback",
    "PolicyLogits",
    "dynamics_callback",
    "dqn_loss",
    "ppo_loss",
]
