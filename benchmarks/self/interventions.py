"""What plasticity interventions cost a training run (not a test).

    .venv/bin/python benchmarks/self/interventions.py [--quick] [--rounds 5] [--seeds 4]

For DQN (Dopamine's MinAtar preset, MinAtar CNN) and PPO (the minatar preset) on MinAtar
breakout, in one process, alternating with the baseline agent of the same config:

- *between firings*: each periodic event with a period that never comes during the timed
  segments, so the segment carries the event's branch but never takes it. The goal: at most 2%
  over the baseline (ratio <= 1.02), for one seed and for a vmapped group of ``--seeds`` seeds
  (where `tdgen.agents.train.same_in_every_seed` keeps the branch a branch);
- *per firing*: the event alone (`Applied.after_update` at an update count its period divides,
  against one it does not), jitted on the agent's own parameters, optimiser state and a batch,
  in milliseconds, beside the time of one training segment per update;
- *always on*: the network options, loss terms and optimiser wrappers, which change every update
  (their cost is the intervention, not an overhead);
- the vmapped group with every event at once compiles its segment once.

Times are the best of ``--rounds`` alternating rounds. Writes
benchmarks/results/interventions/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
EVENTS = ("redo", "reset", "shrink_perturb", "plasticity_injection")
ALWAYS = ("layer_norm", "crelu", "l2_init", "parseval", "infer", "weight_decay", "trac")
NEVER = 10**9  # a period no timed segment reaches


def config_for(agent: str, interventions: tuple[str, ...], quick: bool):
    from tdgen.agents import DQNConfig, PPOConfig

    if agent == "dqn":
        frames = 4_000 if quick else 10_000
        return DQNConfig.minatar(frames=frames, learning_starts=0, probe_every=0,
                                 checkpoint_every=0, log_every=frames,
                                 interventions=interventions)  # fmt: skip
    frames = 64 * 128 * (2 if quick else 4)
    return PPOConfig.minatar(frames=frames, log_every=frames, eval_every=0, probe_every=0,
                             checkpoint_every=0, interventions=interventions)  # fmt: skip


class Timed:
    """One compiled training program (one seed, or a vmapped group) and its running state."""

    def __init__(self, agent_name: str, interventions: tuple[str, ...], quick: bool, seeds: int):
        import jax

        from tdgen.agents import build_agent
        from tdgen.agents.train import seed_keys

        self.agent = build_agent(agent_name, config_for(agent_name, interventions, quick))
        train = self.agent.make_train()
        compiles = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, duration, **_: compiles.append(event)
            if event == "/jax/core/compile/backend_compile_duration" else None
        )  # fmt: skip
        if seeds > 1:
            init, segment = train.jit_group("vmap")
            self.state = init(seed_keys(range(seeds)))
        else:
            init, segment = train.jit()
            self.state = init(jax.random.PRNGKey(0))
        before = len(compiles)
        self.segment = segment
        self.state, _ = self.segment(self.state)  # compile and warm
        jax.block_until_ready(self.state)
        self.compiles = len(compiles) - before
        self.updates_per_segment = self._updates_per_segment()

    def _updates_per_segment(self) -> int:
        config = self.agent.config
        if hasattr(config, "train_every"):
            return config.segment_frames // config.train_every
        iterations = config.segment_frames // (config.num_envs * config.num_steps)
        return iterations * config.epochs * config.num_minibatches

    def time_segment(self) -> float:
        import jax

        tick = time.perf_counter()
        self.state, _ = self.segment(self.state)
        jax.block_until_ready(self.state)
        return time.perf_counter() - tick


def firing_ms(timed: Timed, rounds: int) -> tuple[float, float]:
    """(ms of after_update when the event fires, ms when it does not), jitted, one seed."""
    import jax
    import jax.numpy as jnp

    agent = timed.agent
    applied = agent.applied if hasattr(agent, "applied") else agent.algorithm.applied
    state = timed.state
    period = next(i.period for i in applied.interventions if i.kind == "event")
    obs = state.obs if hasattr(state, "obs") and state.obs.ndim > 1 else None
    if obs is None or obs.shape[0] < 32:
        obs = jnp.zeros((32, *agent.env.observation_shape), agent.env.observation_dtype)
    obs = obs.astype(jnp.float32)
    step = jax.jit(
        lambda p, s, m, k, n: applied.after_update(p, s, m, k, obs, n)[:3]
    )  # fmt: skip
    args = (state.params, state.opt_state, state.memory, jax.random.PRNGKey(1))
    out = []
    for updates in (period, period + 1):
        jax.block_until_ready(step(*args, jnp.int32(updates)))
        best = float("inf")
        for _ in range(rounds):
            tick = time.perf_counter()
            jax.block_until_ready(step(*args, jnp.int32(updates)))
            best = min(best, time.perf_counter() - tick)
        out.append(best * 1e3)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--agents", nargs="+", default=["dqn", "ppo"], choices=["dqn", "ppo"])
    args = parser.parse_args()
    from tdgen.bench.record import Record, column

    record = Record("interventions")
    between = record.table(
        "between_firings",
        "Segment time with an event that never fires during it, against the baseline of the same "
        "config (best of alternating rounds); goal: ratio <= 1.02",
        [column("agent"), column("intervention"), column("seeds"), column("baseline", "ms"),
         column("with it", "ms"), column("ratio"), column("compiles")],
    )  # fmt: skip
    firing = record.table(
        "per_firing",
        "One firing of the event (after_update at an update count its period divides), jitted, "
        "one seed, against the same call when it does not fire, and one segment per update",
        [column("agent"), column("intervention"), column("firing", "ms"), column("not firing", "ms"),
         column("training per update", "ms")],
    )  # fmt: skip
    always = record.table(
        "always_on",
        "Segment time with an intervention that acts on every update, against the baseline",
        [column("agent"), column("intervention"), column("baseline", "ms"), column("with it", "ms"),
         column("ratio")],
    )  # fmt: skip
    for agent in args.agents:
        cases = [(name, (f"{name}:period={NEVER}",), seeds)
                 for name in EVENTS for seeds in (1, args.seeds)]  # fmt: skip
        cases.append(("every event", tuple(f"{n}:period={NEVER}" for n in EVENTS), args.seeds))
        cases += [(name, (name,), 1) for name in ALWAYS]
        baselines = {seeds: Timed(agent, (), args.quick, seeds) for seeds in (1, args.seeds)}
        for name, specs, seeds in cases:
            timed = Timed(agent, specs, args.quick, seeds)
            base = baselines[seeds]
            best_base = best_with = float("inf")
            for _ in range(args.rounds):
                best_base = min(best_base, base.time_segment())
                best_with = min(best_with, timed.time_segment())
            ratio = best_with / best_base
            if name in ALWAYS:
                always.add(agent, name, best_base * 1e3, best_with * 1e3, ratio)
                print(f"{agent} {name:22s} always on: {ratio:.3f}x", flush=True)
                continue
            between.add(agent, name, seeds, best_base * 1e3, best_with * 1e3, ratio,
                        timed.compiles)  # fmt: skip
            print(f"{agent} {name:22s} seeds={seeds}: between firings {ratio:.3f}x, "
                  f"{timed.compiles} compile(s)", flush=True)  # fmt: skip
            if seeds == 1:
                fire, idle = firing_ms(timed, args.rounds)
                per_update = best_base * 1e3 / base.updates_per_segment
                firing.add(agent, name, fire, idle, per_update)
                print(f"{agent} {name:22s} one firing {fire:.2f} ms (idle {idle:.2f} ms; "
                      f"training {per_update:.3f} ms per update)", flush=True)  # fmt: skip
    record.write(RESULTS)


if __name__ == "__main__":
    main()
