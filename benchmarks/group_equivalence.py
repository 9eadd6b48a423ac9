"""How close a seed trained in a group is to the same seed trained alone (not a test).

    .venv/bin/python benchmarks/group_equivalence.py [--updates 2000]

For DQN and PPO, each with the MinAtar CNN (im2col) and an MLP: seed 1 alone (`Train.jit`) and in a
group with seed 0 (`Train.jit_group`), advanced segment by segment over the first ``--updates``
gradient updates. Prints, per case, whether every parameter is bitwise equal after each segment,
the first segment where they differ, and the largest relative parameter difference at the end.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from tdgen.agents import DQNConfig, PPOConfig, build_agent
from tdgen.agents.train import seed_keys


def cases(updates: int):
    # DQN: one update every 4 frames after 1,000 frames; segments of 400 frames.
    dqn_frames = 1_000 + 4 * updates
    dqn_frames += -dqn_frames % 400
    common = dict(frames=dqn_frames, log_every=400, probe_every=0, checkpoint_every=0,
                  learning_starts=1_000)  # fmt: skip
    yield "dqn-cnn", "dqn", DQNConfig.minatar(encoder="minatar", **common)
    yield "dqn-mlp", "dqn", DQNConfig.minatar(encoder="mlp", **common)
    # PPO: 4 envs x 32 steps, 3 epochs x 4 minibatches = 12 updates per iteration.
    iterations = -(-updates // 12)
    ppo = dict(num_envs=4, num_steps=32, num_minibatches=4, frames=128 * iterations,
               log_every=128, eval_every=0, probe_every=0, checkpoint_every=0)  # fmt: skip
    yield "ppo-cnn", "ppo", PPOConfig.minatar(encoder="minatar", **ppo)
    yield "ppo-mlp", "ppo", PPOConfig.minatar(encoder="mlp", hidden_size=64, **ppo)


def compare(name: str, agent: str, config) -> str:
    train = build_agent(agent, config).make_train()
    init, segment = train.jit()
    ginit, gsegment = train.jit_group()
    alone = init(jax.random.PRNGKey(1))
    group = ginit(seed_keys([0, 1]))
    segments = config.frames // config.segment_frames
    first_diff = None
    for i in range(segments):
        alone, _ = segment(alone)
        group, _ = gsegment(group)
        a = jax.tree.leaves(jax.device_get(alone.params))
        g = [x[1] for x in jax.tree.leaves(jax.device_get(group.params))]
        if first_diff is None and any(not np.array_equal(x, y) for x, y in zip(a, g, strict=True)):
            first_diff = i
    a = jax.tree.leaves(jax.device_get(alone.params))
    g = [x[1] for x in jax.tree.leaves(jax.device_get(group.params))]
    rel = max(
        float(np.max(np.abs(x - y)) / (np.max(np.abs(x)) + 1e-12))
        for x, y in zip(a, g, strict=True)
    )
    updates = int(alone.updates) if hasattr(alone, "updates") else int(alone.iterations) * 12
    verdict = "bitwise" if first_diff is None else f"differs from segment {first_diff}"
    return f"{name:8s} {updates:6d} updates  {verdict:26s} max relative param diff {rel:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2_000)
    args = parser.parse_args()
    for name, agent, config in cases(args.updates):
        print(compare(name, agent, config), flush=True)


if __name__ == "__main__":
    main()
