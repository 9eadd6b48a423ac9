"""Speed of PPO and DAAC, in one process (not a test).

    .venv/bin/python benchmarks/self/actor_critic.py [--quick] [--procgen]

MinAtar breakout (jitted on gymnax): the environment-only random-rollout rate (64 envs) as the
baseline, PPO and DAAC with the `minatar` preset (MinAtar CNN, 64 envs x 128 steps), and PPO with an
MLP at PureJaxRL's default PPO settings (4 envs x 128 steps, 4 epochs, 4 minibatches, 64 units)
(benchmarks/peers/peer_ppo.py runs a PureJaxRL-style PPO beside it). With --procgen: envpool
ProcGen bigfish (64 envs, random actions) as the baseline and PPO with the `procgen` preset (IMPALA
CNN, learning on). Rates exclude compilation (the first segment or iteration). Writes
benchmarks/results/actor_critic/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from agents import env_rate  # agents.py beside this file: the same env-only baseline
from tdgen.agents import DAACConfig, PPOConfig, build_agent
from tdgen.bench.record import Record, column

RESULTS = Path(__file__).resolve().parents[1] / "results"


def jitted_rate(config) -> float:
    """Frames per second of the jitted loop, after one compiling segment."""
    agent = build_agent(config.kind, config)
    segment = agent.jit_segment()
    state, _ = segment(agent.init())
    jax.block_until_ready(state)
    tick = time.perf_counter()
    state, _ = segment(state)
    jax.block_until_ready(state)
    return config.segment_frames / (time.perf_counter() - tick)


def procgen_rates(num_steps: int) -> tuple[float, float]:
    """(env-only random steps/s, PPO frames/s with learning on) on bigfish, 64 envs."""
    from tdgen.agents.actor_critic.host import HostFunctions, host_segment

    config = PPOConfig.procgen("procgen/bigfish", num_levels=10, num_steps=num_steps,
                               frames=64 * num_steps * 2, eval_every=0, probe_every=0,
                               checkpoint_every=0)  # fmt: skip
    agent = build_agent(config.kind, config)
    env = agent.env.vector(64, 0, num_threads=2)
    obs = env.reset()
    rng = np.random.default_rng(0)
    tick = time.perf_counter()
    for _ in range(500):
        env.step(rng.integers(0, 15, 64))
    env_sps = 500 * 64 / (time.perf_counter() - tick)
    fns = HostFunctions(agent)
    state = agent.init()
    state, obs, _ = host_segment(agent, fns, state, env, obs, 1)  # compiles
    jax.block_until_ready(state)
    tick = time.perf_counter()
    state, obs, _ = host_segment(agent, fns, state, env, obs, 1)
    jax.block_until_ready(state)
    return env_sps, config.batch_frames / (time.perf_counter() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter segments")
    parser.add_argument("--procgen", action="store_true", help="also ProcGen (minutes)")
    args = parser.parse_args()
    record = Record("actor_critic")
    iterations = 2 if args.quick else 6
    rows = []
    env_sps = env_rate(64, 1_000 if args.quick else 5_000)
    rows.append(("env only, random policy, 64 envs", env_sps, 1.0))
    common = dict(frames=64 * 128 * iterations, log_every=64 * 128 * iterations, eval_every=0,
                  probe_every=0, checkpoint_every=0)  # fmt: skip
    for name, cls in (("PPO", PPOConfig), ("DAAC", DAACConfig)):
        sps = jitted_rate(cls.minatar(**common))
        rows.append((f"{name}, minatar preset (CNN, 64 envs x 128 steps)", sps, sps / env_sps))
    pjr = PPOConfig.minatar(num_envs=4, num_steps=128, epochs=4, num_minibatches=4,
                            encoder="mlp", hidden_size=64, frames=512 * 16 * iterations,
                            log_every=512 * 16 * iterations, eval_every=0, probe_every=0,
                            checkpoint_every=0)  # fmt: skip
    sps = jitted_rate(pjr)
    rows.append(("PPO, MLP 64x64, PureJaxRL defaults (4 x 128, 4x4)", sps, sps / env_sps))
    if args.procgen:
        env_pg, ppo_pg = procgen_rates(32 if args.quick else 256)
        rows.append(("ProcGen bigfish env only, 64 envs, 2 threads", env_pg, 1.0))
        rows.append(("PPO, procgen preset (IMPALA, 64 envs), learning on", ppo_pg, ppo_pg / env_pg))
    table = record.table("rates", "rates after compilation; x env: against the row's environment alone",
                         [column("measurement"), column("rate", "frames/s"), column("x env")])  # fmt: skip
    print(f"{'measurement':56s} {'frames/s':>10s} {'x env':>8s}")
    for name, sps, ratio in rows:
        table.add(name, sps, ratio)
        print(f"{name:56s} {sps:10,.0f} {ratio:8.4f}")
    record.write(RESULTS)


if __name__ == "__main__":
    main()
