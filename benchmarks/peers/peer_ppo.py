"""tdgen's PPO against a PureJaxRL-style PPO at identical settings, side by side (not a test).

    .venv/bin/python benchmarks/peers/peer_ppo.py [--rounds 3] [--updates 200]

PureJaxRL is not on PyPI, so the peer is `purejaxrl_ppo.py` beside this file: a PPO written from PureJaxRL's design (one `jax.jit` of
`lax.scan`s: rollout, GAE by a reverse scan, epochs x minibatches with optax Adam, no host work),
with its network set to tdgen's PPO MLP (`--network shared`: one 64x64 ReLU trunk for the policy
and value heads; PureJaxRL's own ActorCritic has two tanh trunks, twice the trunk work). Both
sides: gymnax Breakout-MinAtar, PureJaxRL's default PPO sizes (4 envs x 128 steps, 4 epochs x 4
minibatches), clipped surrogate and value loss, entropy 0.01, grad norm 0.5, Adam. tdgen runs its
own jitted segment (`Train.jit_segment`, events off). Each side runs in its own subprocess,
alternating per round; frames/s exclude compilation. Prints each round and the median ratio, and
writes benchmarks/results/peer_ppo/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
SETTINGS = dict(num_envs=4, num_steps=128, epochs=4, minibatches=4, hidden=64, lr=2.5e-4)


def tdgen_rate(updates: int) -> float:
    """tdgen's PPO frames/s over one segment of ``updates`` iterations, after a compiling one."""
    sys.path.insert(0, str(HERE.parent / "self"))
    from actor_critic import jitted_rate  # benchmarks/self/actor_critic.py: the same timing

    from tdgen.agents import PPOConfig

    s = SETTINGS
    per_update = s["num_envs"] * s["num_steps"]
    return jitted_rate(PPOConfig.minatar(
        num_envs=s["num_envs"], num_steps=s["num_steps"], epochs=s["epochs"],
        num_minibatches=s["minibatches"], encoder="mlp", hidden_size=s["hidden"], lr=s["lr"],
        frames=2 * updates * per_update, log_every=updates * per_update, eval_every=0,
        probe_every=0, checkpoint_every=0,
    ))  # fmt: skip


def peer_command(updates: int) -> list[str]:
    s = SETTINGS
    return [sys.executable, str(HERE / "purejaxrl_ppo.py"), "--updates", str(updates), "--env", "Breakout-MinAtar", "--network", "shared",
            "--num-envs", str(s["num_envs"]), "--num-steps", str(s["num_steps"]),
            "--epochs", str(s["epochs"]), "--minibatches", str(s["minibatches"]),
            "--hidden", str(s["hidden"]), "--lr", str(s["lr"])]  # fmt: skip


def run_side(side: str, updates: int) -> float:
    """Frames/s of one side, measured in a fresh subprocess."""
    if side == "peer":
        out = subprocess.run(peer_command(updates), capture_output=True, text=True, check=True)
        match = re.search(r"([\d,]+) frames/s", out.stdout)
    else:
        cmd = [sys.executable, __file__, "--side", "tdgen", "--updates", str(updates)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        match = re.search(r"RATE ([\d.]+)", out.stdout)
    if match is None:
        raise RuntimeError(f"{side}: no rate in its output:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=200, help="PPO iterations timed per side")
    parser.add_argument("--side", choices=["tdgen"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "tdgen":
        print(f"RATE {tdgen_rate(args.updates):.1f}")
        return
    from tdgen.bench.record import Record, column

    record = Record("peer_ppo")
    table = record.table("rounds", f"gymnax Breakout-MinAtar, {args.updates} iterations per side",
                         [column("round"), column("tdgen PPO", "frames/s"),
                          column("PureJaxRL-style", "frames/s"), column("tdgen / peer")])  # fmt: skip
    print(f"settings: Breakout-MinAtar, {SETTINGS}, {args.updates} iterations timed per side")
    ratios = []
    for r in range(args.rounds):
        order = ("tdgen", "peer") if r % 2 == 0 else ("peer", "tdgen")
        rates = {side: run_side(side, args.updates) for side in order}
        ratios.append(rates["tdgen"] / rates["peer"])
        table.add(r + 1, rates["tdgen"], rates["peer"], ratios[-1])
        print(f"round {r + 1}: tdgen {rates['tdgen']:,.0f} frames/s, PureJaxRL-style "
              f"{rates['peer']:,.0f} frames/s, tdgen / peer {ratios[-1]:.2f}")  # fmt: skip
    print(f"median tdgen / peer over {args.rounds} rounds: {statistics.median(ratios):.2f}")
    table.add("median", None, None, statistics.median(ratios))
    record.write(RESULTS)


if __name__ == "__main__":
    main()
