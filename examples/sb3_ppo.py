"""Stable-Baselines3 PPO on CartPole, measured by tdgen's Probe as an SB3 callback.

    pip install 'tdgen[sb3]'
    python examples/sb3_ppo.py [--steps 8192] [--every 2048] [--k 64]

Every ``--every`` steps (at the end of a rollout, before PPO's update) the callback draws k samples
of the rollout buffer and logs dormant units, feature rank, norms, gradient norm, policy churn and
the update rank of the policy under PPO's clipped surrogate to SB3's logger; the same values are
kept in ``callback.history`` and printed here.
"""

from __future__ import annotations

import argparse

from stable_baselines3 import PPO

from tdgen.interference.torch.sb3 import CHEAP, dynamics_callback


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8192, help="environment steps")
    parser.add_argument("--every", type=int, default=2048, help="steps between probes")
    parser.add_argument("--k", type=int, default=64, help="samples per probe")
    parser.add_argument("--n-steps", type=int, default=512, help="PPO rollout length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=args.n_steps, batch_size=64, seed=args.seed,
                device="cpu", verbose=0)  # fmt: skip
    callback = dynamics_callback(every=args.every, k=args.k,
                                 measures=(*CHEAP, "update_rank"), seed=args.seed)  # fmt: skip
    model.learn(args.steps, callback=callback)
    for row in callback.history:
        print(f"step {row['step']:>6}  update rank {row['interference/update_rank']:.0f}  "
              f"dormant {row['dynamics/dormant_0.025']:.3f}  churn {row['dynamics/churn']:.4f}  "
              f"probe {row['perf/probe_seconds']:.2f} s")  # fmt: skip
    return callback.history


if __name__ == "__main__":
    main()
