"""A CleanRL-style PyTorch DQN on CartPole (gymnasium), measured by tdgen's torch Probe.

    python examples/cleanrl_dqn_torch.py [--total-timesteps 20000] [--probe-every 5000]

One file, one loop, as CleanRL's dqn.py (Huang et al. 2022): epsilon-greedy acting, a replay
buffer sampled as CleanRL's ``ReplayBufferSamples``, a target network, Adam on CleanRL's squared
TD error (`tdgen.interference.torch.td_loss`, one loss per sample; training takes their mean).
Every ``--probe-every`` steps `tdgen.interference.torch.Probe` measures the Q-network on k
replay transitions under the same optimiser and loss, built by the same line as in the CleanRL
tutorial (docs/cleanrl.md): dormant units, feature rank, norms, gradient norm, policy churn, the
update rank. Nothing of the network or the optimiser changes. The values are printed and
returned; in a real run write them with `writer.add_scalar(name, value, step)`.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from tdgen.interference.torch import Probe, td_loss


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 64):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_actions),
        )  # fmt: skip

    def forward(self, x):
        return self.network(x)


class ReplayBufferSamples(NamedTuple):
    """A sampled batch, with the fields of CleanRL's (and SB3's) replay buffer."""

    observations: torch.Tensor  # [k, obs_dim]
    actions: torch.Tensor  # [k, 1]
    next_observations: torch.Tensor
    dones: torch.Tensor  # [k, 1]
    rewards: torch.Tensor  # [k, 1]


def sample(buffer: dict, idx: np.ndarray) -> ReplayBufferSamples:
    return ReplayBufferSamples(
        **{key: torch.as_tensor(value[idx]) for key, value in buffer.items()}
    )


MEASURES = ("dormant", "active", "features", "param_norm", "init_distance", "grad_norm", "churn",
            "update_rank")  # fmt: skip


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=int, default=20_000)
    parser.add_argument("--probe-every", type=int, default=5_000)
    parser.add_argument("--k", type=int, default=64, help="transitions per probe")
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    gamma, batch_size, buffer_size, target_every, train_every = 0.99, 64, 10_000, 500, 4

    env = gym.make("CartPole-v1")
    obs_dim, num_actions = env.observation_space.shape[0], env.action_space.n
    q_network, target_network = QNetwork(obs_dim, num_actions), QNetwork(obs_dim, num_actions)
    target_network.load_state_dict(q_network.state_dict())
    optimizer = torch.optim.Adam(q_network.parameters(), lr=2.5e-4)
    loss_fn = td_loss(target_network, gamma)  # CleanRL's loss: [k] squared TD errors
    # The tutorial's line, with the measures named (init_distance is not a default)
    probe = Probe(q_network, optimizer, td_loss(target_network, gamma), per_sample_loss=True,
                  obs="observations", center="none", measures=MEASURES)  # fmt: skip

    buffer = {"observations": np.zeros((buffer_size, obs_dim), np.float32),
              "actions": np.zeros((buffer_size, 1), np.int64),
              "next_observations": np.zeros((buffer_size, obs_dim), np.float32),
              "dones": np.zeros((buffer_size, 1), np.float32),
              "rewards": np.zeros((buffer_size, 1), np.float32)}  # fmt: skip
    history, episode_returns, episode_return = [], [], 0.0
    obs, _ = env.reset(seed=args.seed)
    for step in range(1, args.total_timesteps + 1):
        epsilon = max(0.05, 1 - 0.95 * step / (0.5 * args.total_timesteps))
        if random.random() < epsilon:
            action = env.action_space.sample()
        else:
            with torch.no_grad():
                action = int(q_network(torch.as_tensor(obs)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        filled, i = step, (step - 1) % buffer_size
        for key, value in (("observations", obs), ("next_observations", next_obs),
                           ("actions", action), ("rewards", reward),
                           ("dones", float(terminated))):  # fmt: skip
            buffer[key][i] = value
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            episode_returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()

        if step > args.learning_starts and step % train_every == 0:
            idx = rng.integers(0, min(filled, buffer_size), batch_size)
            loss = loss_fn(q_network, sample(buffer, idx)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % target_every == 0:
                target_network.load_state_dict(q_network.state_dict())

        if step % args.probe_every == 0 and filled >= args.k:
            idx = np.random.default_rng([args.seed, step]).choice(min(filled, buffer_size), args.k,
                                                                   replace=False)  # fmt: skip
            tick = time.perf_counter()
            metrics = probe(sample(buffer, idx))
            metrics["perf/probe_seconds"] = time.perf_counter() - tick
            metrics["charts/episodic_return"] = float(np.mean(episode_returns[-10:] or [0.0]))
            history.append({"step": step, **metrics})
            print(f"step {step:>6}  return {metrics['charts/episodic_return']:6.1f}  "
                  f"update rank {metrics['interference/update_rank']:.0f}  "
                  f"dormant {metrics['dynamics/dormant_0.025']:.3f}  "
                  f"srank {metrics['dynamics/feature_srank/network.3']:.0f}  "
                  f"probe {metrics['perf/probe_seconds']:.2f} s")  # fmt: skip
    env.close()
    return history


if __name__ == "__main__":
    main()
