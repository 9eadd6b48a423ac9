"""Speed of DQN on envpool Atari breakout, in one process (not a test).

    .venv/bin/python benchmarks/peers/agents_atari.py [--quick]

Reports, all on the same machine and in the same process:
- envpool breakout raw agent steps/s with random actions (no learning);
- tdgen's host loop (`tdgen.agents.value_based.host`) training SPS with learning on: Nature CNN, an
  update every 4 agent steps, batch 32, replay on the host in uint8, with and without overlap
  (overlap: envpool's send/recv around the asynchronously dispatched update; without: the update
  finishes before the emulators step), at num_envs 1 and 8;
- a CleanRL-style baseline written plainly below (dqn_atari_jax.py's loop).
Every DQN row uses the same network, loss and optimiser, with flax's own convolution as CleanRL
(on Atari's Nature CNN the "xla" lowering updates faster than im2col on XLA:CPU).
Rows are timed in interleaved rounds and the median reported, because the cores are shared.
SPS counts agent steps (one agent step = 4 emulator frames), as CleanRL's `charts/SPS` does.
Writes benchmarks/results/agents_atari/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen.agents import DQNConfig, build_agent
from tdgen.agents.value_based import host as hl
from tdgen.bench.record import Record, column

RESULTS = Path(__file__).resolve().parents[1] / "results"


def env_rate(num_envs: int, steps: int) -> float:
    """Raw envpool breakout agent steps/s (summed over envs), random actions, synchronous."""
    import envpool

    env = envpool.make("Breakout-v5", env_type="gymnasium", num_envs=num_envs, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (steps, num_envs))
    tick = time.perf_counter()
    for a in actions:
        obs = env.step(a)[0]
    seconds = time.perf_counter() - tick
    assert obs.dtype == np.uint8
    env.close()
    return steps * num_envs / seconds


def _config(num_envs: int, conv_impl: str = "xla") -> DQNConfig:
    """Nature DQN on breakout with learning on from the first measured step."""
    return DQNConfig.nature(
        env="atari/Breakout", num_envs=num_envs, frames=10**9 // num_envs * num_envs,
        buffer_size=8_000, learning_starts=200, train_every=4, batch_size=32, probe_every=0,
        checkpoint_every=0, log_every=num_envs, target_period=1_000 * num_envs,
        epsilon_decay_frames=10_000, conv_impl=conv_impl,
    )  # fmt: skip


class HostLoop:
    """tdgen's host loop, warmed up past learning_starts; ``run(steps)`` returns seconds."""

    def __init__(self, num_envs: int, overlap: bool, conv_impl: str = "xla"):
        self.config = config = _config(num_envs, conv_impl)
        self.agent = build_agent("dqn", config)
        self.fns = hl.HostFunctions(self.agent)
        self.env = self.agent.env.vector(num_envs, seed=0)
        self.state, self.obs = hl.init_state(self.agent), self.env.reset()
        self.done = np.zeros(num_envs, np.bool_)
        self.overlap = overlap
        self.run(2 * config.learning_starts)  # compiles, fills the replay

    def run(self, steps: int) -> float:
        tick = time.perf_counter()
        iterations = max(steps // self.config.num_envs, 1)
        self.state, self.obs, self.done = hl.train_segment(
            self.agent, self.fns, self.state, self.env, self.obs, self.done, iterations,
            self.overlap,
        )  # fmt: skip
        jax.block_until_ready(self.state.learner)
        return time.perf_counter() - tick


class CleanRLLoop:
    """CleanRL's dqn_atari_jax.py loop, written plainly (one env, the same network and loss).

    Per agent step: epsilon-greedy in Python (the greedy action from a jitted forward), one
    envpool step, the transition stored as (obs, next_obs) (SB3's ReplayBuffer), and every 4
    steps one jitted update, which the next action waits for. ``run(steps)`` returns seconds.
    """

    def __init__(self, conv_impl: str = "xla"):
        import envpool

        self.config = config = _config(1, conv_impl)
        self.agent = agent = build_agent("dqn", config)
        self.env = envpool.make("Breakout-v5", env_type="gymnasium", num_envs=1, seed=0,
                                episodic_life=False, reward_clip=False)  # fmt: skip
        size = config.buffer_size
        self.store = {"obs": np.zeros((size, 84, 84, 4), np.uint8),
                      "next_obs": np.zeros((size, 84, 84, 4), np.uint8),
                      "action": np.zeros(size, np.int32), "reward": np.zeros(size, np.float32),
                      "terminated": np.zeros(size, np.bool_)}  # fmt: skip
        self.params = agent.init_params(jax.random.PRNGKey(0))
        self.target = jax.tree.map(jnp.copy, self.params)
        self.opt_state = agent.optimizer.init(self.params)
        self.q_values = jax.jit(agent.apply)

        @jax.jit
        def update(params, target, opt_state, batch):
            loss, grads = jax.value_and_grad(agent.batch_loss)(params, target, batch)
            updates, opt_state = agent.optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self.update = update
        self.rng = np.random.default_rng(0)
        self.obs = self.env.reset()[0].transpose(0, 2, 3, 1)
        self.step = 0
        self.run(2 * config.learning_starts)

    def run(self, steps: int) -> float:
        config, store, size = self.config, self.store, self.config.buffer_size
        tick = time.perf_counter()
        for _ in range(steps):
            if self.rng.random() < 0.1:
                action = self.rng.integers(0, 4, 1)
            else:
                action = np.asarray(jnp.argmax(self.q_values(self.params, self.obs), axis=1))
            next_obs, reward, terminated, _, _ = self.env.step(action)
            next_obs = next_obs.transpose(0, 2, 3, 1)
            i = self.step % size
            store["obs"][i], store["next_obs"][i], store["action"][i] = (
                self.obs[0],
                next_obs[0],
                action[0],
            )
            store["reward"][i], store["terminated"][i] = np.clip(reward[0], -1, 1), terminated[0]
            self.obs = next_obs
            if self.step > config.learning_starts and self.step % config.train_every == 0:
                idx = self.rng.integers(0, min(self.step + 1, size), config.batch_size)
                batch = {k: v[idx] for k, v in store.items()}
                self.params, self.opt_state, _ = self.update(
                    self.params, self.target, self.opt_state, batch
                )
            if self.step % config.target_period == 0:
                self.target = self.params
            self.step += 1
        jax.block_until_ready(self.params)
        return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (< 3 minutes)")
    args = parser.parse_args()
    steps, rounds = (120, 3) if args.quick else (400, 5)
    record = Record("agents_atari")
    table = record.table("loops", f"Breakout, medians of {rounds} interleaved rounds of {steps} agent steps",
                         [column("loop"), column("rate", "agent steps/s"), column("x CleanRL-style"),
                          column("slowest round", "agent steps/s"),
                          column("fastest round", "agent steps/s")])  # fmt: skip
    print(
        f"jax {jax.__version__}; {rounds} interleaved rounds of {steps} agent steps per row, "
        "median rate (the cores are shared: rounds alternate so load drifts hit every row)"
    )
    raw = {"envpool breakout raw, 1 env": env_rate(1, 8 * steps),
           "envpool breakout raw, 8 envs": env_rate(8, steps)}  # fmt: skip
    runners = {"CleanRL-style loop, 1 env": CleanRLLoop()}
    for num_envs in (1, 8):
        for overlap in (False, True):
            name = f"tdgen host loop, {num_envs} env{'s' if num_envs > 1 else ''}, " + (
                "overlap" if overlap else "no overlap"
            )
            runners[name] = HostLoop(num_envs, overlap)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            rates[name].append(steps / runner.run(steps))
    median = {name: float(np.median(r)) for name, r in rates.items()}
    baseline = median["CleanRL-style loop, 1 env"]
    width = max(len(name) for name in [*raw, *median])
    print(f"{'':{width}}  {'agent steps/s':>13}  {'x CleanRL-style':>15}")
    for name, rate in raw.items():
        print(f"{name:{width}}  {rate:13.1f}")
        table.add(name, rate, None, None, None)
    for name, rate in median.items():
        spread = f"  [{min(rates[name]):.1f}-{max(rates[name]):.1f}]"
        print(f"{name:{width}}  {rate:13.1f}  {rate / baseline:15.2f}{spread}")
        table.add(name, rate, rate / baseline, min(rates[name]), max(rates[name]))
    print(
        "(DQN rows: Nature CNN (flax Conv, as CleanRL), an update every 4 agent steps, batch 32,"
        " learning on; SPS in agent steps = 4 emulator frames.)"
    )
    record.write(RESULTS)


if __name__ == "__main__":
    main()
