"""Training losses as torch RL libraries write them, for the Probe's ``per_sample_loss=True``.

`td_loss` is CleanRL's DQN loss (``cleanrl/dqn.py``, ``dqn_atari.py``) on a batch of the replay
buffer's samples, SB3's and CleanRL's ``ReplayBufferSamples`` (observations [k, ...], actions
[k, 1], next_observations, dones [k, 1], rewards [k, 1]), returning one loss per sample, so a
CleanRL script is measured with the loss it trains on:

    probe = Probe(q_network, optimizer, td_loss(target_network, args.gamma),
                  per_sample_loss=True, obs="observations", center="none")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tdgen._extras import require

torch = require("torch", "torch", "tdgen.interference.torch")


def td_loss(target_network: Any, gamma: float, huber: bool = False) -> Callable:
    """loss(q_network, data) -> [k]: the squared TD error of each sample (Huber with huber=True,
    as Nature DQN and SB3), against r + gamma (1 - done) max_a Q_target(s', a), the target held
    fixed (no gradient), as the optimiser sees it."""
    error = torch.nn.functional.smooth_l1_loss if huber else torch.nn.functional.mse_loss

    def loss(q_network, data):
        with torch.no_grad():
            target_max = target_network(data.next_observations).max(dim=1).values
            td_target = data.rewards.flatten() + gamma * target_max * (1 - data.dones.flatten())
        actions = data.actions.long().reshape(-1, 1)
        old_val = q_network(data.observations).gather(1, actions).squeeze(1)
        return error(td_target, old_val, reduction="none")

    return loss
