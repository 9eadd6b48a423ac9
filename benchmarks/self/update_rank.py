"""Speed, agreement and memory of the update matrix, against baselines run in the same process.

    python benchmarks/self/update_rank.py [--quick] [--sections jax torch memory]

Networks: Nature DQN (84x84x4, conv 32 8x8/4, 64 4x4/2, 64 3x3/1, dense 512, 18 actions) and
MinAtar (10x10x4, conv 16 3x3/1, dense 128, 6 actions), warm Adam (lr 1e-4), reduce="max".
Rows:
  exact       update_matrix(method="exact") (defaults: chunk 1, conv as im2col matmul)
  loop        baseline: a Python loop over k of one jitted step+evaluate (XLA convolution)
  linearized  update_matrix(method="linearized"), error vs exact (relative Frobenius), ranks
  torch       tdgen.interference.torch vs a deepcopy-and-step loop, and a torch.func vmap
Compile time is measured separately (ahead-of-time compile); run times are the best of repeats.
GFLOP/s counts the k*m forward passes (XLA cost analysis of one forward pass) and is compared
with a 2048x2048 float32 matmul measured in the same process. Peak memory: resident set size
(ru_maxrss) of a child process that computes only that matrix. Writes
benchmarks/results/update_rank/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen.interference import make_update_matrix, update_rank

RESULTS = Path(__file__).resolve().parents[1] / "results"


class NatureQ(nn.Module):
    actions: int = 18

    @nn.compact
    def __call__(self, x):
        for features, size, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.relu(nn.Conv(features, (size, size), (stride, stride), padding="VALID")(x))
        x = nn.relu(nn.Dense(512)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.actions)(x)


class MinAtarQ(nn.Module):
    actions: int = 6

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.actions)(x)


NETS = {"nature": (NatureQ(), (84, 84, 4)), "minatar": (MinAtarQ(), (10, 10, 4))}


def problem(name, k, seed=0):
    net, shape = NETS[name]
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    batch = {
        "obs": jax.random.uniform(keys[0], (k, *shape)),
        "action": jax.random.randint(keys[1], (k,), 0, net.actions),
        "target": jax.random.normal(keys[2], (k,)),
    }
    params = net.init(keys[0], batch["obs"][:1])

    def loss_fn(p, t):
        return 0.5 * (net.apply(p, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    opt = optax.adam(1e-4)
    grads = jax.grad(lambda p: jax.vmap(loss_fn, (None, 0))(p, batch).mean())(params)
    state = opt.update(grads, opt.init(params), params)[1]
    return net, params, batch, loss_fn, opt, state


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_rate():
    a = jnp.ones((2048, 2048), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    mm(a).block_until_ready()
    return 2 * 2048**3 / best(lambda: mm(a), 5) / 1e9


def forward_flops(net, params, obs):
    cost = jax.jit(net.apply).lower(params, obs[:1]).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def timed_matrix(out, label, fn, params, state, batch, repeats):
    """Compile ``fn`` (a `make_update_matrix` function) and time it: ``out[label + "_compile_s"]``,
    ``[label + "_s"]`` (best of ``repeats``) and ``[label + "_rank"]``; returns the matrix."""
    start = time.perf_counter()
    run = fn.compile(params, state, batch)
    out[f"{label}_compile_s"] = time.perf_counter() - start
    A = run(params, state, batch)
    out[f"{label}_s"] = best(lambda: run(params, state, batch), repeats)
    out[f"{label}_rank"] = int(update_rank(A))
    return A


def exact_and_loop(name, k, repeats, with_loop=True):
    net, params, batch, loss_fn, opt, state = problem(name, k)
    out = {"net": name, "k": k}
    A = timed_matrix(out, "exact", make_update_matrix(net.apply, loss_fn, opt), params, state,
                     batch, repeats)  # fmt: skip
    out["gflops"] = k * k * forward_flops(net, params, batch["obs"]) / out["exact_s"] / 1e9
    if with_loop:

        @jax.jit
        def row(params, state, transition, obs):
            updates = opt.update(jax.grad(loss_fn)(params, transition), state, params)[0]
            new = optax.apply_updates(params, updates)
            return net.apply(new, obs).max(-1) - net.apply(params, obs).max(-1)

        transitions = [jax.tree.map(lambda x, i=i: x[i], batch) for i in range(k)]
        start = time.perf_counter()
        row(params, state, transitions[0], batch["obs"]).block_until_ready()
        out["loop_compile_s"] = time.perf_counter() - start

        def loop():
            return jnp.stack([row(params, state, t, batch["obs"]) for t in transitions])

        B = loop()
        out["loop_s"] = best(loop, repeats)
        out["loop_max_abs_diff"] = float(jnp.abs(A - B).max() / jnp.abs(B).max())
    L = timed_matrix(out, "lin", make_update_matrix(net.apply, loss_fn, opt, method="linearized"),
                     params, state, batch, repeats)  # fmt: skip
    out["lin_rel_error"] = float(jnp.linalg.norm(L - A) / jnp.linalg.norm(A))
    return out


# --- PyTorch ------------------------------------------------------------------------------------


def torch_nets(name):
    import torch

    torch.manual_seed(0)
    if name == "nature":
        net = torch.nn.Sequential(
            torch.nn.Conv2d(4, 32, 8, 4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 4, 2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, 3, 1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(3136, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 18),
        )
        return net, (4, 84, 84), 18
    net = torch.nn.Sequential(
        torch.nn.Conv2d(4, 16, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 8 * 8, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 6),
    )
    return net, (4, 10, 10), 6


def torch_problem(name, k):
    """The torch twin of ``name`` and a batch of k random transitions (seeded)."""
    import torch

    net, shape, actions = torch_nets(name)
    g = torch.Generator().manual_seed(0)
    batch = {
        "obs": torch.rand(k, *shape, generator=g),
        "action": torch.randint(0, actions, (k,), generator=g),
        "target": torch.randn(k, generator=g),
    }
    return net, batch


def torch_compare(name, k, repeats):
    import torch
    from torch.func import functional_call, grad, vmap

    from tdgen.interference.torch import update_matrix as torch_update_matrix

    net, batch = torch_problem(name, k)

    def loss_fn(module, t):
        return 0.5 * (module(t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    opt.zero_grad()
    sum(loss_fn(net, {key: v[i] for key, v in batch.items()}) for i in range(k)).backward()
    opt.step()
    out = {"net": name, "k": k}
    A = torch_update_matrix(net, opt, loss_fn, batch)
    out["torch_s"] = best(lambda: torch_update_matrix(net, opt, loss_fn, batch), repeats)

    def deepcopy_loop():
        with torch.no_grad():
            base = net(batch["obs"]).max(-1).values
        rows = []
        for i in range(k):
            twin = copy.deepcopy(net)
            twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-4)
            twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
            loss_fn(twin, {key: v[i] for key, v in batch.items()}).backward()
            twin_opt.step()
            with torch.no_grad():
                rows.append((twin(batch["obs"]).max(-1).values - base).numpy())
        return np.stack(rows)

    B = deepcopy_loop()
    out["deepcopy_s"] = best(deepcopy_loop, repeats)
    out["torch_max_abs_diff"] = float(np.abs(A - B).max())

    # torch.func: per-sample grads with vmap(grad), forward of k parameter copies with vmap.
    # SGD step (Adam's state would need the same update written by hand): times the vmap path.
    params = {n: p.detach() for n, p in net.named_parameters()}

    def func_loss(p, obs, action, target):
        q = functional_call(net, p, (obs[None],))[0].gather(0, action[None])[0]
        return 0.5 * (q - target) ** 2

    def func_matrix():
        grads = vmap(grad(func_loss), (None, 0, 0, 0))(
            params, batch["obs"], batch["action"], batch["target"]
        )
        copies = {n: params[n] - 1e-4 * grads[n] for n in params}
        with torch.no_grad():
            base = net(batch["obs"]).max(-1).values
            out = vmap(lambda p: functional_call(net, p, (batch["obs"],)).max(-1).values)(copies)
        return out - base

    func_matrix()
    out["torch_func_vmap_s"] = best(func_matrix, repeats)
    return out


# --- memory probe in a child process --------------------------------------------------------------


def probe(name, k, method):
    net, params, batch, loss_fn, opt, state = problem(name, k)
    start = time.perf_counter()
    A = make_update_matrix(net.apply, loss_fn, opt, method=method)(params, state, batch)
    rank = int(update_rank(A))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(
        json.dumps(
            {
                "net": name,
                "k": k,
                "method": method,
                "rank": rank,
                "seconds_with_compile": seconds,
                "peak_rss_gib": peak,
            }
        )
    )


def memory(name, k, method):
    result = subprocess.run(
        [sys.executable, __file__, "--probe", name, str(k), method],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small k only (~3 minutes)")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["jax", "torch", "memory"],
        choices=["jax", "torch", "memory"],
        help="which tables to measure",
    )
    parser.add_argument("--probe", nargs=3, metavar=("NET", "K", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe[0], int(args.probe[1]), args.probe[2])
        return
    ks = (
        {"nature": (32,), "minatar": (32, 128)}
        if args.quick
        else {"nature": (32, 128, 512), "minatar": (32, 128, 512)}
    )
    from tdgen.bench.record import Record, column

    record = Record("update_rank")
    repeats = 2
    peak = matmul_rate()
    print(f"devices: {jax.devices()}; float32 2048^2 matmul: {peak:.1f} GFLOP/s", flush=True)
    record.table("matmul", "a float32 2048x2048 matrix product, best of 5",
                 [column("rate", "GFLOP/s")]).add(peak)  # fmt: skip
    if "jax" in args.sections:
        jax_table(ks, repeats, peak, record, column)
    if "torch" in args.sections:
        torch_table(args.quick, repeats, record, column)
    if "memory" in args.sections:
        memory_table(args.quick, record, column)
    record.write(RESULTS)


def jax_table(ks, repeats, peak, record, column):
    """Exact against the loop and the linearized method, per network and k."""
    table = record.table("jax", "update_matrix: exact (the defaults), a Python loop, linearized",
                         [column("net"), column("k"), column("exact", "s"), column("loop", "s"),
                          column("loop / exact"), column("exact", "GFLOP/s"),
                          column("exact / matmul"), column("compile exact", "s"),
                          column("compile loop", "s"), column("linearized", "s"),
                          column("exact / linearized"), column("linearized relative error"),
                          column("rank exact"), column("rank linearized")])  # fmt: skip
    print(
        "| net | k | exact s | loop s | loop/exact | exact GFLOP/s | /matmul | compile s "
        "(exact, loop) | linearized s | exact/lin | lin rel err | rank exact/lin |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, sizes in ks.items():
        for k in sizes:
            r = exact_and_loop(name, k, 1 if k >= 128 else repeats)
            print(
                f"| {name} | {k} | {r['exact_s']:.2f} | {r['loop_s']:.2f} | "
                f"{r['loop_s'] / r['exact_s']:.2f} | {r['gflops']:.1f} | "
                f"{r['gflops'] / peak:.2f} | {r['exact_compile_s']:.1f}, "
                f"{r['loop_compile_s']:.1f} | {r['lin_s']:.2f} | "
                f"{r['exact_s'] / r['lin_s']:.2f} | {r['lin_rel_error']:.3f} | "
                f"{r['exact_rank']}/{r['lin_rank']} |",
                flush=True,
            )
            assert r["loop_max_abs_diff"] < 1e-3, r
            table.add(name, k, r["exact_s"], r["loop_s"], r["loop_s"] / r["exact_s"], r["gflops"],
                      r["gflops"] / peak, r["exact_compile_s"], r["loop_compile_s"], r["lin_s"],
                      r["exact_s"] / r["lin_s"], r["lin_rel_error"], r["exact_rank"],
                      r["lin_rank"])  # fmt: skip


def torch_table(quick, repeats, record, column):
    """The PyTorch adapter against a deepcopy-and-step loop and a torch.func vmap."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: torch rows skipped")
    else:
        table = record.table("torch", "tdgen.interference.torch against a deepcopy-and-step loop",
                             [column("net"), column("k"), column("adapter", "s"),
                              column("deepcopy loop", "s"), column("loop / adapter"),
                              column("torch.func vmap (SGD)", "s"),
                              column("max abs diff")])  # fmt: skip
        print(
            "\n| net | k | adapter s | deepcopy loop s | loop/adapter | torch.func vmap s "
            "(SGD) | max abs diff |"
        )
        print("|---|---|---|---|---|---|---|")
        sizes = (
            {"nature": (32,), "minatar": (32,)}
            if quick
            else {"nature": (32, 128), "minatar": (32, 128)}
        )
        for name, ks_torch in sizes.items():
            for k in ks_torch:
                r = torch_compare(name, k, 1 if k >= 128 else repeats)
                table.add(name, k, r["torch_s"], r["deepcopy_s"], r["deepcopy_s"] / r["torch_s"],
                          r["torch_func_vmap_s"], r["torch_max_abs_diff"])  # fmt: skip
                print(
                    f"| {name} | {k} | {r['torch_s']:.2f} | {r['deepcopy_s']:.2f} | "
                    f"{r['deepcopy_s'] / r['torch_s']:.2f} | {r['torch_func_vmap_s']:.2f} | "
                    f"{r['torch_max_abs_diff']:.1e} |",
                    flush=True,
                )


def memory_table(quick, record, column):
    """Peak RSS of a child process computing one matrix."""
    table = record.table("memory", "peak resident memory of a process computing one matrix",
                         [column("net"), column("k"), column("method"), column("peak RSS", "GiB"),
                          column("with compilation", "s"), column("rank")])  # fmt: skip
    print("\n| net | k | method | peak RSS GiB | seconds (with compile) | rank |")
    print("|---|---|---|---|---|---|")
    probes = (
        [("nature", 128, "exact"), ("nature", 128, "linearized")]
        if quick
        else [("nature", 512, "linearized"), ("nature", 1024, "exact")]
    )
    for name, k, method in probes:
        r = memory(name, k, method)
        table.add(name, k, method, r["peak_rss_gib"], r["seconds_with_compile"], r["rank"])
        print(
            f"| {name} | {k} | {method} | {r['peak_rss_gib']:.2f} | "
            f"{r['seconds_with_compile']:.1f} | {r['rank']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
