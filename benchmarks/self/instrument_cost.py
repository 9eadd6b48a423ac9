"""What the instrument costs, against its goals, as a benchmark record (`tdgen.bench.record`).

    python benchmarks/self/instrument_cost.py [--k 128] [--repeats 3] [--results benchmarks/results]

Three goals, each measured in this one process (compile excluded, best of ``--repeats``):
  agents     what agents log by default at each probe (the update rank, exact, and the table's
             agent-default measures, `tdgen.interference.table`) on the Nature CNN at k
             transitions, against the DQN updates of 1e5 frames (one update of 32 per 4 frames,
             Adam): goal <= 2% (acting not counted, so an upper bound on the share of training)
  torch      tdgen.interference.torch.Probe against the JAX Probe on the same architecture and
             batch, the same measures, the two sides alternating call by call: goal <= 1.5x
  schedule   a jitted lax.scan of DQN updates on the MinAtar CNN with `probe.on_schedule` that
             never fires, against the same scan without it, alternating: goal "nothing
             measurable" (the ratio, with the spread of the repeats beside it)
And the import times, each in a fresh interpreter (best of 5): `import tdgen` (the front door,
which loads neither JAX nor torch), torch alone, and the torch instrument (which loads no JAX).
Writes RESULTS/instrument_cost/MACHINE.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from update_rank import best, problem, torch_nets  # update_rank.py's networks

from tdgen.bench.record import Record, column
from tdgen.interference import Probe
from tdgen.interference.table import AGENT_DEFAULT_MEASURES

TRAIN_BATCH, FRAMES_PER_UPDATE, PROBE_EVERY_FRAMES = 32, 4, 100_000
AGENT_PROBE = (*AGENT_DEFAULT_MEASURES, "update_rank")
GOALS = {"agents_pct": 2.0, "torch_over_jax": 1.5}


def update_fn(loss_fn, opt, batch):
    train = jax.tree.map(lambda x: x[:TRAIN_BATCH], batch)

    def update(params, state):
        grads = jax.grad(lambda p: jax.vmap(loss_fn, (None, 0))(p, train).mean())(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return update


def agents(k: int, repeats: int) -> dict:
    net, params, batch, loss_fn, opt, state = problem("nature", k)
    update = jax.jit(update_fn(loss_fn, opt, batch))
    update(params, state)
    probe = Probe(net.apply, loss_fn, opt, model=net, measures=AGENT_PROBE, center="none")
    compiled = jax.jit(probe).lower(params, state, batch).compile()
    compiled(params, state, batch)
    out = {"net": "nature", "k": k, "measures": list(AGENT_PROBE)}
    out["update_s"] = best(lambda: update(params, state), repeats)
    out["probe_s"] = best(lambda: compiled(params, state, batch), repeats)
    updates = PROBE_EVERY_FRAMES / FRAMES_PER_UPDATE
    out["agents_pct"] = 100 * out["probe_s"] / (updates * out["update_s"])
    return out


def torch_against_jax(k: int, repeats: int) -> dict:
    import torch

    from tdgen.interference.table import TORCH_MEASURES
    from tdgen.interference.torch import Probe as TorchProbe

    measures = tuple(m for m in AGENT_PROBE if m in TORCH_MEASURES)
    net, params, batch, loss_fn, opt, state = problem("nature", k)
    jax_probe = jax.jit(Probe(net.apply, loss_fn, opt, model=net, measures=measures,
                              center="none"))  # fmt: skip
    tnet, shape, actions = torch_nets("nature")
    g = torch.Generator().manual_seed(0)
    tbatch = {"obs": torch.rand(k, *shape, generator=g),
              "action": torch.randint(0, actions, (k,), generator=g),
              "target": torch.randn(k, generator=g)}  # fmt: skip

    def tloss(module, t):
        q = module(t["obs"][None])[0]
        return 0.5 * (q.gather(-1, t["action"][None])[0] - t["target"]) ** 2

    topt = torch.optim.Adam(tnet.parameters(), lr=1e-4)
    torch_probe = TorchProbe(tnet, topt, tloss, measures=measures, center="none")
    jax.block_until_ready(jax_probe(params, state, batch))
    torch_probe(tbatch)
    jax_times, torch_times = [], []
    for _ in range(repeats):  # alternating sides, so drifting load hits both
        start = time.perf_counter()
        jax.block_until_ready(jax_probe(params, state, batch))
        jax_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch_probe(tbatch)
        torch_times.append(time.perf_counter() - start)
    return {"net": "nature", "k": k, "measures": list(measures), "jax_s": min(jax_times),
            "torch_s": min(torch_times), "torch_threads": torch.get_num_threads(),
            "torch_over_jax": min(torch_times) / min(jax_times)}  # fmt: skip


def schedule(repeats: int, steps: int = 200) -> dict:
    net, params, batch, loss_fn, opt, state = problem("minatar", 32)
    update = update_fn(loss_fn, opt, batch)
    probe = Probe(net.apply, loss_fn, opt, model=net, measures=AGENT_PROBE, center="none")

    def scan(with_probe: bool):
        def body(carry, step):
            params, state = update(*carry)
            if with_probe:  # every 10**9 steps: never on steps 1..steps
                metrics = probe.on_schedule(step, 10**9, params, state, batch)
                return (params, state), metrics["interference/update_rank"]
            return (params, state), jnp.float32(0)

        return jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(1, steps + 1)))

    runs = {False: scan(False), True: scan(True)}
    for fn in runs.values():
        jax.block_until_ready(fn(params, state))
    times = {False: [], True: []}
    for _ in range(repeats):
        for side, fn in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(params, state))
            times[side].append(time.perf_counter() - start)
    plain, probed = min(times[False]), min(times[True])
    spread = max(times[False]) / plain - 1
    return {"net": "minatar", "steps": steps, "plain_s": plain, "with_probe_s": probed,
            "ratio": probed / plain, "plain_spread": spread}  # fmt: skip


IMPORTS = {
    "tdgen": "import tdgen",
    "torch": "import torch",
    "torch_instrument": "from tdgen.interference.torch import Probe",
    "jax_instrument": "from tdgen.interference import Probe",
}


def imports(repeats: int = 5) -> dict:
    """Seconds of each statement in IMPORTS in a fresh interpreter (best of ``repeats``), and
    whether the torch instrument loaded JAX."""
    timer = "import sys, time; t = time.perf_counter(); {0}; print(time.perf_counter() - t, 'jax' in sys.modules)"
    out = {}
    for name, statement in IMPORTS.items():
        runs = [subprocess.run([sys.executable, "-c", timer.format(statement)], check=True,
                               capture_output=True, text=True).stdout.split()
                for _ in range(repeats)]  # fmt: skip
        out[f"{name}_s"] = min(float(seconds) for seconds, _ in runs)
        out[f"{name}_loads_jax"] = runs[0][1] == "True"
    return out


MEASURED = (("agents", "agents' default probe on the Nature CNN against the updates of 1e5 frames",
             (("net", None, "net"), ("k", None, "k"), ("update", "s", "update_s"),
              ("probe", "s", "probe_s"), ("probe / updates of 1e5 frames", "%", "agents_pct"))),
            ("torch", "the torch Probe against the JAX Probe, alternating call by call",
             (("net", None, "net"), ("k", None, "k"), ("JAX Probe", "s", "jax_s"),
              ("torch Probe", "s", "torch_s"), ("torch threads", None, "torch_threads"),
              ("torch / JAX", None, "torch_over_jax"))),
            ("schedule", "a lax.scan of MinAtar updates with probe.on_schedule that never fires",
             (("net", None, "net"), ("steps", None, "steps"), ("plain scan", "s", "plain_s"),
              ("with the probe", "s", "with_probe_s"), ("with / plain", None, "ratio"),
              ("spread of the plain scan", None, "plain_spread"))))  # fmt: skip
GOAL_TEXT = {"agents_pct": "agents' default probe, % of the updates of 1e5 frames",
             "torch_over_jax": "torch Probe / JAX Probe"}  # fmt: skip


def add_results(record: Record, result: dict) -> None:
    """The measured sections of ``result`` as tables of ``record``, and the goals."""
    for name, title, columns in MEASURED:
        record.table(name, title, [column(c, u) for c, u, _ in columns]).add(
            *[result[name][key] for _, _, key in columns]
        )
    record.table("probe_measures", "the measures of each probe",
                 [column("probe"), column("measures")]).add("agents", result["agents"]["measures"])  # fmt: skip
    record.tables[-1].add("torch", result["torch"]["measures"])
    imports = record.table("imports", "each statement in a fresh interpreter, best of 5",
                           [column("statement"), column("time", "s"), column("loads JAX")])  # fmt: skip
    for name, statement in IMPORTS.items():
        imports.add(
            statement, result["imports"][f"{name}_s"], result["imports"][f"{name}_loads_jax"]
        )
    for name, limit in GOALS.items():
        section = "agents" if name == "agents_pct" else "torch"
        record.goal(name, result[section][name], limit, GOAL_TEXT[name])


def main() -> None:
    """Measure every section, print each as JSON, and write the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--results", type=Path, default=Path(__file__).resolve().parents[1] / "results"
    )
    args = parser.parse_args()
    record = Record("instrument_cost")
    result = {}
    for name, fn in (("agents", lambda: agents(args.k, args.repeats)),
                     ("torch", lambda: torch_against_jax(args.k, args.repeats)),
                     ("schedule", lambda: schedule(args.repeats)),
                     ("imports", imports)):  # fmt: skip
        result[name] = fn()
        print(json.dumps({name: result[name]}), flush=True)
    add_results(record, result)
    record.write(args.results)


if __name__ == "__main__":
    main()
