"""A CleanRL-style PyTorch DQN on CartPole (gymnasium), measured by tdgen's torch Probe.

    python examples/cleanrl_dqn_torch.py [--total-timesteps 20000] [--probe-every 5000]

One file, one loop, as CleanRL's dqn.py (Huang et al. 2022): epsilon-greedy acting, a replay
buffer, a target network, Adam on the Huber TD error. Every ``--probe-every`` steps
`tdgen.interference.torch.Probe` measures the Q-network on k replay transitions under the same
optimiser and loss (dormant units, feature rank, norms, gradient norm, policy churn, the update
rank); nothing of the network or the optimiser changes. The values are printed and returned; in
a real run write them with `writer.add_scalar(name, value, step)` beside `losses/td_loss`.
"""

from __future__ import annotations

import argparse
import random
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from tdgen.interference.torch import Probe


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 64):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_actions),
        )  # fmt: skip

    def forward(self, x):
        return self.network(x)


def td_loss(q_network: nn.Module, target_network: nn.Module, t: dict, gamma: float):
    """Huber TD errors [n] of a batch of transitions (CleanRL's dqn.py, Huber as Nature DQN)."""
    q = q_network(t["obs"]).gather(-1, t["action"][:, None])[:, 0]
    with torch.no_grad():
        target = (
            t["reward"] + gamma * (1 - t["done"]) * target_network(t["next_obs"]).max(-1).values
        )
    return nn.functional.smooth_l1_loss(q, target, reduction="none")


def make_td_loss(target_network: nn.Module, gamma: float):
    """The loss of one transition, as the Probe wants it: the batch loss on a batch of one."""

    def loss_fn(module, t):
        one = {key: value[None] for key, value in t.items()}
        return td_loss(module, target_network, one, gamma)[0]

    return loss_fn


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
    loss_fn = make_td_loss(target_network, gamma)
    probe = Probe(q_network, optimizer, loss_fn, measures=(
        "dormant", "active", "features", "param_norm", "init_distance", "grad_norm", "churn",
        "update_rank"), center="none")  # fmt: skip

    buffer = {"obs": np.zeros((buffer_size, obs_dim), np.float32),
              "next_obs": np.zeros((buffer_size, obs_dim), np.float32),
              "action": np.zeros(buffer_size, np.int64), "reward": np.zeros(buffer_size, np.float32),
              "done": np.zeros(buffer_size, np.float32)}  # fmt: skip
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
        for key, value in (("obs", obs), ("next_obs", next_obs), ("action", action),
                           ("reward", reward), ("done", float(terminated))):  # fmt: skip
            buffer[key][i] = value
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            episode_returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()

        if step > args.learning_starts and step % train_every == 0:
            idx = rng.integers(0, min(filled, buffer_size), batch_size)
            t = {key: torch.as_tensor(value[idx]) for key, value in buffer.items()}
            loss = td_loss(q_network, target_network, t, gamma).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % target_every == 0:
                target_network.load_state_dict(q_network.state_dict())

        if step % args.probe_every == 0 and filled >= args.k:
            idx = np.random.default_rng([args.seed, step]).choice(min(filled, buffer_size), args.k,
                                                                   replace=False)  # fmt: skip
            batch = {key: torch.as_tensor(value[idx]) for key, value in buffer.items()}
            tick = time.perf_counter()
            metrics = probe(batch)
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
