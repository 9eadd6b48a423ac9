"""Speed of the value-based agents on MinAtar breakout, in one process (not a test).

    .venv/bin/python benchmarks/self/agents.py [--quick]

Reports: the environment-only random-rollout rate (the observation is consumed, or XLA deletes
the rendering and reports ~3x too much), DQN and C51 training SPS with learning on (MinAtar CNN,
Dopamine's MinAtar settings: 4 envs, an update every 4 frames, batch 32), DQN with an MLP at
PureJaxRL's settings (10 envs, an update every 10 frames, batch 64) for comparison with its
13.9k steps/s, the cost of one probe at k=128 and k=256 (after compilation), and the probe's
share of training time at the paper's schedule (one probe per 1e5 frames). Writes
benchmarks/results/agents/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.agents import C51Config, DQNConfig, build_agent, make_value_probe
from tdgen.bench.record import Record, column
from tdgen.envs import make_env

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _timed(fn, repeats: int) -> float:
    """Median seconds per call after one warm-up (compilation) call (the 2 cores are shared)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - tick)
    return float(np.median(times))


def env_rate(num_envs: int, steps: int) -> float:
    """Random-policy environment steps per second, jitted scan, observations summed."""
    env = make_env("minatar/breakout")

    @jax.jit
    def rollout(key):
        obs, state = env.reset_batch(key, num_envs)

        def step(carry, key):
            state, total = carry
            key_act, key_env = jax.random.split(key)
            action = jax.random.randint(key_act, (num_envs,), 0, env.num_actions)
            obs, state, reward, _, _ = env.step_batch(key_env, state, action)
            return (state, total + jnp.sum(obs) + jnp.sum(reward)), None

        (_, total), _ = jax.lax.scan(step, (state, jnp.float32(0)), jax.random.split(key, steps))
        return total

    return steps * num_envs / _timed(lambda: rollout(jax.random.PRNGKey(0)), 3)


def train_rate(agent_name: str, config) -> tuple[float, object, object]:
    """Training frames per second with learning on (buffer pre-filled past learning_starts)."""
    agent = build_agent(agent_name, config)
    segment = agent.jit_segment()
    state = agent.init()
    state = segment(state)  # compile, fill past learning_starts
    jax.block_until_ready(state)
    tick = time.perf_counter()
    repeats = 2
    for _ in range(repeats):
        state = segment(state)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - tick
    return repeats * config.segment_frames / seconds, agent, state


def probe_cost(agent, state, k: int) -> float:
    """Seconds for one probe (current + random parameters, one draw) after compilation."""
    import dataclasses

    agent = dataclasses.replace(agent, config=agent.config.replace(probe_k=k))
    probe = make_value_probe(agent)
    return _timed(lambda: probe(state).matrices[""], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter segments (< 3 min)")
    args = parser.parse_args()
    record = Record("agents")
    seg = 4_000 if args.quick else 20_000
    common = dict(frames=seg, log_every=seg, probe_every=0, checkpoint_every=0,
                  buffer_size=20_000, learning_starts=1_000)  # fmt: skip
    rows = []
    env_sps = env_rate(16, 2_000 if args.quick else 10_000)
    rows.append(("env only, random policy, 16 envs", env_sps, 1.0))
    dqn_sps, dqn_agent, dqn_state = train_rate("dqn", DQNConfig.minatar(**common))
    rows.append(("DQN, MinAtar CNN, 4 envs, update/4 frames", dqn_sps, dqn_sps / env_sps))
    c51_sps, c51_agent, c51_state = train_rate("c51", C51Config.minatar(**common))
    rows.append(("C51, MinAtar CNN, 4 envs, update/4 frames", c51_sps, c51_sps / env_sps))
    pjr = dict(common, num_envs=10, train_every=10, batch_size=64, frames=seg, log_every=seg,
               buffer_size=20_000, target_period=1_000, encoder="mlp")  # fmt: skip
    mlp_sps, _, _ = train_rate("dqn", DQNConfig.minatar(**pjr))
    rows.append(("DQN, MLP, PureJaxRL settings (10 envs, /10, b64)", mlp_sps, mlp_sps / env_sps))
    rates = record.table("rates", "MinAtar breakout, rates after compilation",
                         [column("measurement"), column("rate", "frames/s"), column("x env")])  # fmt: skip
    print(f"{'measurement':52s} {'frames/s':>10s} {'x env':>8s}")
    for name, sps, ratio in rows:
        rates.add(name, sps, ratio)
        print(f"{name:52s} {sps:10,.0f} {ratio:8.3f}")
    print()
    probes = record.table("probes", "one probe (current + random parameters, one draw)",
                          [column("agent"), column("k"), column("probe", "s"),
                           column("share of training at 1 probe / 1e5 frames", "%")])  # fmt: skip
    print(f"{'probe (current + random params, 1 draw)':52s} {'seconds':>10s} {'share@1e5':>10s}")
    for name, agent, state, sps in (("DQN", dqn_agent, dqn_state, dqn_sps),
                                    ("C51", c51_agent, c51_state, c51_sps)):  # fmt: skip
        for k in (128, 256):
            seconds = probe_cost(agent, state, k)
            train_seconds = 1e5 / sps
            share = seconds / (seconds + train_seconds)
            probes.add(name, k, seconds, 100 * share)
            print(f"{name + f' k={k}':52s} {seconds:10.3f} {share:10.2%}")
    record.write(RESULTS)


if __name__ == "__main__":
    main()
