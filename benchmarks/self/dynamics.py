"""Cost of the learning-dynamics suite (tdgen.interference.Probe) against one training update.

    python benchmarks/self/dynamics.py [--quick] [--k 128] [--nets minatar nature] [--no-torch]

For the MinAtar CNN (10x10x4, conv 16 3x3, dense 128, 6 actions) and the Nature CNN (84x84x4,
conv 32/64/64, dense 512, 18 actions) of update_rank.py, warm Adam (lr 1e-4), in one process:
  update       one DQN training update (grad of the mean TD loss of 32 transitions + Adam), jitted
  suite        Probe(...) with every measure at k transitions (reference = the batch), jitted;
               and each measure alone (which dominate)
  overhead     suite / (updates per 1e5 frames * update), one update per 4 frames (DQN): the
               share of update time one probe per 1e5 frames adds (acting not counted: an upper
               bound on the share of training time)
  one_call     the one-call update_matrix(...) at k=64: first call, second identical call
               (cached), and a make_update_matrix probe, for the Nature CNN
  torch        tdgen.interference.torch.Probe on the same architecture (CPU), same measures
               but the output NTK, against the JAX suite: the ratio torch / JAX
Times are the best of `--repeats` after a warm-up call (compile excluded, reported apart). Writes
benchmarks/results/dynamics/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import optax
from update_rank import NETS, best, problem, torch_problem  # the networks of update_rank.py

from tdgen.bench.record import Record, column
from tdgen.interference import MEASURES, Probe, make_update_matrix, update_matrix

RESULTS = Path(__file__).resolve().parents[1] / "results"

TRAIN_BATCH, FRAMES_PER_UPDATE, PROBE_EVERY_FRAMES = 32, 4, 100_000


def training_update(net, params, batch, loss_fn, opt, state, repeats):
    train = jax.tree.map(lambda x: x[:TRAIN_BATCH], batch)

    @jax.jit
    def update(params, state):
        grads = jax.grad(lambda p: jax.vmap(loss_fn, (None, 0))(p, train).mean())(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    update(params, state)
    return best(lambda: update(params, state), repeats)


def jax_suite(name, k, repeats, each=True):
    net, params, batch, loss_fn, opt, state = problem(name, k)
    out = {"net": name, "k": k}
    out["update_s"] = training_update(net, params, batch, loss_fn, opt, state, repeats)
    probe = Probe(net.apply, loss_fn, opt, model=net, center="none")
    start = time.perf_counter()
    compiled = jax.jit(probe).lower(params, state, batch, None, params).compile()
    out["suite_compile_s"] = time.perf_counter() - start
    compiled(params, state, batch, None, params)
    out["suite_s"] = best(lambda: compiled(params, state, batch, None, params), repeats)
    out["suite_over_update"] = out["suite_s"] / out["update_s"]
    updates = PROBE_EVERY_FRAMES / FRAMES_PER_UPDATE
    out["overhead_pct_per_1e5_frames"] = 100 * out["suite_s"] / (updates * out["update_s"])
    if each:
        for measure in MEASURES:
            alone = jax.jit(
                Probe(net.apply, loss_fn, opt, model=net, measures=(measure,), center="none")
            )
            alone(params, state, batch, None, params)
            out[f"{measure}_s"] = best(lambda a=alone: a(params, state, batch, None, params), 1)
    return out


def one_call(name, k, repeats):
    net, params, batch, loss_fn, opt, state = problem(name, k)
    start = time.perf_counter()
    jax.block_until_ready(update_matrix(net.apply, params, loss_fn, batch, opt, state))
    out = {"net": name, "k": k, "first_call_s": time.perf_counter() - start}
    out["second_call_s"] = best(
        lambda: update_matrix(net.apply, params, loss_fn, batch, opt, state), repeats
    )
    fn = make_update_matrix(net.apply, loss_fn, opt)
    fn(params, state, batch)
    out["make_update_matrix_s"] = best(lambda: fn(params, state, batch), repeats)
    return out


def torch_suite(name, k, repeats):
    import torch

    from tdgen.interference.torch import Probe as TorchProbe

    net, batch = torch_problem(name, k)

    def loss_fn(module, t):  # gather, not q[a]: keeps torch.func.vmap's per-sample gradients
        q = module(t["obs"][None])[0]
        return 0.5 * (q.gather(-1, t["action"][None])[0] - t["target"]) ** 2

    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    opt.zero_grad()
    sum(loss_fn(net, {key: v[i] for key, v in batch.items()}) for i in range(k)).backward()
    opt.step()
    probe = TorchProbe(net, opt, loss_fn, center="none")
    probe(batch)
    out = {"net": name, "k": k, "torch_threads": torch.get_num_threads()}
    out["torch_suite_s"] = best(lambda: probe(batch), repeats)
    for measure in probe.measures:
        alone = TorchProbe(net, opt, loss_fn, measures=(measure,), center="none")
        alone(batch)
        out[f"torch_{measure}_s"] = best(lambda a=alone: a(batch), 1)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MinAtar only, k=32, 1 repeat")
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    nets, k, repeats = args.nets, args.k, args.repeats
    if args.quick:
        nets, k, repeats = ["minatar"], 32, 1
    record = Record("dynamics")
    suite = record.table("suite", f"every measure of Probe jitted together, k = {k}",
                         [column("network"), column("update", "s"), column("all measures", "s"),
                          column("compile", "s"), column("measures / update"),
                          column("share of update time at 1 probe / 1e5 frames", "%"),
                          column("torch all measures", "s"), column("torch / JAX")])  # fmt: skip
    each = record.table("measures", "each measure alone (one call, indicative)",
                        [column("network"), column("measure"), column("JAX", "s"),
                         column("torch", "s")])  # fmt: skip
    for name in nets:
        row = jax_suite(name, k, repeats)
        if not args.no_torch:
            row.update(torch_suite(name, k, repeats))
            row["torch_over_jax"] = row["torch_suite_s"] / row["suite_s"]
        print(json.dumps(row), flush=True)
        suite.add(name, row["update_s"], row["suite_s"], row["suite_compile_s"],
                  row["suite_over_update"], row["overhead_pct_per_1e5_frames"],
                  row.get("torch_suite_s"), row.get("torch_over_jax"))  # fmt: skip
        for measure in MEASURES:
            each.add(name, measure, row[f"{measure}_s"], row.get(f"torch_{measure}_s"))
    name = "minatar" if args.quick else "nature"
    call = one_call(name, 16 if args.quick else 64, repeats)
    print(json.dumps({"one_call": call}), flush=True)
    record.table("one_call", "the one-call update_matrix(...) against a make_update_matrix probe",
                 [column("network"), column("k"), column("first call", "s"),
                  column("second call", "s"), column("make_update_matrix", "s")]).add(
        name, call["k"], call["first_call_s"], call["second_call_s"], call["make_update_matrix_s"])  # fmt: skip
    record.write(RESULTS)


if __name__ == "__main__":
    main()
