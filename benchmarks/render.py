"""Write docs/benchmarks.md from the newest result of each benchmark on each machine.

    python benchmarks/render.py [--results benchmarks/results] [--out docs/benchmarks.md] [--check]

Every figure on the page comes from a record under ``--results`` (`tdgen.bench.record`), which
the benchmark's script writes; the prose here says only what each benchmark measures and how to
read it. A benchmark without a record gets the command that records one. ``--check`` writes
nothing and exits 1 when the page differs from what the records give (`make bench-docs` writes it).
Pure Python over JSON files: fast, offline, and without JAX.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

from tdgen.bench.record import cell, latest, markdown_table

ROOT = Path(__file__).resolve().parents[1]


class Section(NamedTuple):
    """A benchmark on the page: its record's name, heading, command and what it measures."""

    benchmark: str
    title: str
    command: str
    text: str


SELF = (
    Section(
        "update_rank",
        "The update matrix",
        "python benchmarks/self/update_rank.py --quick",
        """
`update_matrix` (warm Adam at lr 1e-4, reduce "max") on the Nature and MinAtar networks: the exact
method (the defaults) against a Python loop over k of a jitted step and evaluation, and against
the linearized method (its error relative to exact, in the Frobenius norm, and both ranks); the
exact method's rate against a large matrix product measured in the same process; the PyTorch
adapter against a deepcopy-and-step loop; and the peak memory of a process computing one matrix.
Read loop / exact and exact / linearized: above 1, the first is slower.""",
    ),
    Section(
        "instrument_cost",
        "What the instrument costs",
        "python benchmarks/self/instrument_cost.py",
        """
Three costs against goals, each measured in one process with compilation excluded: one probe
of the agents' default measures on the Nature CNN against the DQN updates of 1e5 frames (one
update of 32 per 4 frames, so acting is not counted and the share is an upper bound); the torch
Probe against the JAX Probe on the same network and batch, alternating call by call; and a
`probe.on_schedule` that never fires inside a jitted `lax.scan` of updates (a ratio near 1, within
the plain scan's own spread, is nothing measurable). Import times are each in a fresh
interpreter: `import tdgen` loads neither JAX nor torch.""",
    ),
    Section(
        "dynamics",
        "Every learning-dynamics measure",
        "python benchmarks/self/dynamics.py",
        """
Every measure of `Probe` jitted together at k transitions (reference = the batch) against one DQN
update (the gradient of the mean TD loss of 32 transitions plus Adam), on the MinAtar and Nature
CNNs, and the torch Probe's same measures. The share column is the probe's cost at one probe per
1e5 frames over the updates of those frames. Single-measure timings are one call each and vary
between runs: read the totals. The one-call `update_matrix(...)` is timed on its first call,
an identical second call (cached, no retrace) and a `make_update_matrix` probe.""",
    ),
    Section(
        "agent_probes",
        "Inside agents' probes",
        "python benchmarks/self/agent_probes.py",
        """
An agent's probe with its default `probe_measures` against `probe_measures="none"` (the update
rank alone), after a short training segment: DQN at the Tandem preset, PPO at the `minatar`
preset (actor and critic, so its measures run twice). The first call compiles the measures with
the update rank; the expensive measures (`grad_noise`, `loss_ntk`, `output_ntk`) are off by
default for this cost.""",
    ),
    Section(
        "agents",
        "Value-based agents on MinAtar",
        "python benchmarks/self/agents.py --quick",
        """
Training frames per second with learning on, after compilation, against the environment alone
with a random policy: DQN and C51 with the MinAtar CNN at Dopamine's MinAtar settings, and DQN
with an MLP at PureJaxRL's settings. Then the seconds of one probe at k = 128 and 256 and its
share of training time at one probe per 1e5 frames.""",
    ),
    Section(
        "actor_critic",
        "Actor-critic agents",
        "python benchmarks/self/actor_critic.py --quick",
        """
PPO and DAAC at the `minatar` preset and PPO with an MLP at PureJaxRL's default sizes, in frames
per second after compilation, against the environment alone; with `--procgen`, PPO at the
`procgen` preset against envpool ProcGen alone.""",
    ),
    Section(
        "replay",
        "The Atari replay's sample path",
        "python benchmarks/self/replay.py",
        """
The frame ring (each frame stored once) against a buffer of stacked observations holding the same
transitions, per batch of 32 in interleaved rounds: the sample path (draw, host gather,
`device_put`), the same with the jitted Nature-CNN update (the ring's stacks assembled inside
it), and the channels-last numpy batch that probes and distillation take. Below 1, the ring is
faster; the best rounds are the least disturbed by other work.""",
    ),
    Section(
        "seeds",
        "Seed groups",
        "python benchmarks/self/seeds.py --quick",
        """
N seeds trained as one group (`vmap` or `map` lanes, one compile) against N sequential runs in
one process that each compile their own program, as `tdgen train` per seed does; frames per
second include compilation, so in short runs most of a group's gain is the one compile. Each
cell runs in its own subprocess.""",
    ),
    Section(
        "interventions",
        "Plasticity interventions",
        "python benchmarks/self/interventions.py --quick --rounds 3",
        """
What each plasticity intervention costs DQN (Dopamine's MinAtar preset) and PPO (the `minatar`
preset) on Breakout, against the baseline of the same config in the same process, in
alternating rounds (best of each). Periodic events with a period no timed segment reaches: the
segment carries the event's branch but never takes it (goal: at most 2%, for one seed and for a
vmapped group of four, which compiles once). One firing of each event alone, against the same
call when it does not fire and beside the training time per update. The other kinds act on every
update, so their ratio is the intervention's cost, not an overhead.""",
    ),
    Section(
        "sweep",
        "Sweeps: processes and the compilation cache",
        "python benchmarks/self/sweep.py",
        """
Eight tiny MinAtar DQN runs per mode, each mode a fresh process from a cold cache: one process
with and without the persistent compilation cache, and pools of two processes. Above 1 in the
last column, the mode is faster than one process without the cache.""",
    ),
)

PEERS = (
    Section(
        "peer_ppo",
        "PPO against a PureJaxRL-style PPO",
        "python benchmarks/peers/peer_ppo.py --rounds 3 --updates 200",
        """
tdgen's PPO against `benchmarks/peers/purejaxrl_ppo.py`, a PPO written from PureJaxRL's design
(one `jax.jit` of scans, no host work; PureJaxRL is not on PyPI) with tdgen's network (one 64x64
ReLU trunk), both on gymnax Breakout-MinAtar at PureJaxRL's default sizes, each side in its own
subprocess, alternating, compilation excluded. Read the median of tdgen / peer.""",
    ),
    Section(
        "procgen_update",
        "ProcGen PPO's update against PyTorch",
        "python benchmarks/peers/procgen_update.py",
        """
The `procgen` preset's update (IMPALA CNN, minibatches of 2,048 64x64x3 observations, 8
minibatches x 3 epochs per 16,384-sample rollout) against a PyTorch update written from CleanRL's
`ppo_procgen.py`, back to back in one process; frames/s = 16,384 / (environment + rollout forward
+ update). Read x PyTorch per repeat.""",
    ),
    Section(
        "agents_atari",
        "DQN on Atari against a CleanRL-style loop",
        "python benchmarks/peers/agents_atari.py --quick",
        """
tdgen's host loop (Nature CNN, an update every 4 agent steps, replay on the host) with and without
overlapping acting and learning, against a CleanRL-style synchronous loop with the same network,
loss and optimiser, and envpool Breakout alone; medians of interleaved rounds, in agent steps
(4 emulator frames) per second. Needs envpool's Atari games.""",
    ),
)

MACHINE = (
    Section(
        "preset_memory",
        "Memory of the paper presets",
        "tdgen preset-memory --results benchmarks/results",
        """
Each paper preset's training step compiled for the CPU from abstract shapes, nothing allocated:
XLA's memory analysis gives the device peak of one step, within tens of percent of XLA:GPU's;
parameter, replay and rollout bytes are exact ([Memory and GPUs](memory-and-gpu.md)).""",
    ),
    Section(
        "gpu_check",
        "The GPU check",
        "python benchmarks/gpu_check.py",
        """
Each paper program trained for about a minute on the default device and stopped by SIGTERM: its
rate after compilation (updates/s for students), one probe's seconds, the device's and host's peak
memory, and the projected hours of the experiment's runs of that kind on this device
([Memory and GPUs](memory-and-gpu.md)).""",
    ),
)

PARTS = (("tdgen itself", SELF), ("Against peers", PEERS), ("Memory and GPUs", MACHINE))

INTRO = """# Benchmarks

This page is generated by `benchmarks/render.py` (`make bench-docs`) from the newest result of
each benchmark on each machine, `benchmarks/results/BENCHMARK/MACHINE.json`, which the
benchmark's script writes with the machine, its load average before and after, the versions and
the command line (`tdgen.bench.record`). Rerun a script on your machine to add its results.
Ratios measured in one process are what to read: absolute rates depend on the machine and on
what else ran on it. Retired one-off investigations are summarised in
[Design notes](design-notes.md)."""


def machine_table(record: dict[str, Any]) -> str:
    """The machine, versions, date and load average of a record as a one-row table."""
    m, v, load = record["machine"], record["versions"], record["load_average"]

    def first(values):
        return f"{values[0]:.2f}" if values else "-"

    row = [m["cpu"], m.get("accelerator") or "-", cell(m["cores"]),
           f"{v.get('jax') or '-'} / {v.get('jaxlib') or '-'}", v.get("torch") or "-",
           v.get("tdgen") or "-", record["date"][:10],
           f"{first(load['start'])} / {first(load['end'])}"]  # fmt: skip
    head = ["CPU", "accelerator", "cores", "jax / jaxlib", "torch", "tdgen", "date",
            "load average before / after (1 min)"]  # fmt: skip
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      "| " + " | ".join(row) + " |"])  # fmt: skip


def goals_table(goals: list[dict[str, Any]]) -> str:
    """A record's goals: what, the value, the limit and whether it holds."""
    lines = ["| goal | value | at most | met |", "|---|---|---|---|"]
    lines += [f"| {g['what'] or g['name']} | {cell(g['value'])} | {cell(g['at_most'])} | "
              f"{cell(g['met'])} |" for g in goals]  # fmt: skip
    return "\n".join(lines)


def sentence(text: str) -> str:
    """``text`` with a capital first letter, unless its first word is a name in code."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return text[0].upper() + text[1:] if first.rstrip("'").isalpha() else text


def record_text(record: dict[str, Any]) -> list[str]:
    """A record's blocks: the machine, the command, any note, the goals and every table."""
    blocks = [
        f"On {record['machine']['slug']}, recorded by `{record['command']}`:",
        machine_table(record),
    ]
    if record.get("note"):
        blocks.append(f"*{sentence(record['note'])}.*")
    if record["goals"]:
        blocks.append(goals_table(record["goals"]))
    for table in record["tables"]:
        blocks += [f"*{sentence(table['title'])}:*", markdown_table(table)]
    return blocks


def render(results: Path) -> str:
    """The page from every record under ``results``."""
    records = latest(results)
    blocks = [INTRO]
    for part, sections in PARTS:
        blocks.append(f"## {part}")
        for section in sections:
            blocks += [f"### {section.title}", section.text.strip()]
            found = records.pop(section.benchmark, {})
            if not found:
                blocks.append(f"No result is recorded yet: `{section.command}` records one.")
            for slug in sorted(found):
                blocks += record_text(found[slug])
    if records:
        raise ValueError(f"records of benchmarks the page does not list: {', '.join(records)}")
    return "\n\n".join(blocks) + "\n"


def main() -> None:
    """Write the page, or with --check compare it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    page = render(args.results)
    if args.check:
        if not args.out.exists() or args.out.read_text() != page:
            sys.exit(f"{args.out} is not what {args.results} gives: run `make bench-docs`")
        return
    args.out.write_text(page)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
