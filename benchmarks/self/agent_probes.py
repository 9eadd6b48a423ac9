"""What the learning-dynamics suite adds to an agent's probe (`probe_measures`), in one process.

    python benchmarks/self/agent_probes.py [--k 128] [--draws 2] [--repeats 2]

For DQN (Tandem preset, MinAtar CNN, breakout: Figure 3's quick runs) and PPO (minatar preset,
MinAtar CNN, space_invaders: Figure 4's), after a short training segment: the probe's time with
the default measures and with probe_measures="none" (the update rank alone, random baseline
included), warm (the second call onwards; compile reported apart), and the suite's own
`perf/dynamics_seconds`. Best of --repeats. Writes benchmarks/results/agent_probes/MACHINE.json
(`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from tdgen.agents import build_agent, config_class, make_actor_critic_probe, make_value_probe
from tdgen.bench.record import Record, column

RESULTS = Path(__file__).resolve().parents[1] / "results"


def timed(fn, repeats):
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    best, suite = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if time.perf_counter() - start < best:
            best, suite = time.perf_counter() - start, result.dynamics_seconds
    return first, best, suite


def case(kind, preset, env, k, draws, repeats, measures):
    extra = {"learning_starts": 0} if kind == "dqn" else {}
    config = config_class(kind).preset(preset, env, probe_k=k, probe_draws=draws,
                                       probe_measures=measures, **extra)  # fmt: skip
    agent = build_agent(kind, config)
    if kind == "dqn":
        state = jax.jit(lambda s: agent.segment(s, 64))(agent.init())
        probe = make_value_probe(agent)
        return timed(lambda: probe(state), repeats)
    state, rollout = jax.jit(lambda s: agent.segment(s, 1))(agent.init())
    probe = make_actor_critic_probe(agent)
    return timed(lambda: probe(state, rollout), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    record = Record("agent_probes")
    table = record.table("probes", f"one probe at k = {args.k}, {args.draws} draws, warm, best of {args.repeats}",
                         [column("agent"), column("update rank alone", "s"),
                          column("default measures", "s"), column("their perf/dynamics_seconds", "s"),
                          column("first call (compiles)", "s"), column("default / alone")])  # fmt: skip
    default = config_class("dqn").__dataclass_fields__["probe_measures"].default
    for kind, preset, env in (("dqn", "tandem", "minatar/breakout"),
                              ("ppo", "minatar", "minatar/space_invaders")):  # fmt: skip
        row = {"agent": kind, "k": args.k, "draws": args.draws}
        _, alone, _ = case(kind, preset, env, args.k, args.draws, args.repeats, "none")
        first, full, suite = case(kind, preset, env, args.k, args.draws, args.repeats, default)
        row.update(rank_only_s=alone, with_suite_s=full, suite_s=suite, first_call_s=first,
                   suite_share=suite / full, probe_ratio=full / alone)  # fmt: skip
        print(json.dumps({key: round(v, 4) if isinstance(v, float) else v
                          for key, v in row.items()}))  # fmt: skip
        table.add(f"{kind} ({preset}, {env})", alone, full, suite, first, full / alone)
    record.write(RESULTS)


if __name__ == "__main__":
    main()
