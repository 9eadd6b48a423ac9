"""Seed groups against sequential runs: N seeds as one vmapped program (not a test).

    .venv/bin/python benchmarks/self/seeds.py [--quick] [--seeds 1 2 4 8] [--timeout 600]

For DQN and PPO on MinAtar breakout, each with the MinAtar CNN (im2col convolution) and an MLP,
and N seeds: the group (`Train.jit_group`: one compile, the seeds as vmapped lanes or as
`lax.map` lanes) against N sequential runs in one process, each built anew (as `tdgen train` per seed: every run compiles
its own program). Prints total frames/s including compilation, compile seconds, and the group's
memory: its state's bytes and XLA's temp allocation for one segment. Each measurement runs in its
own subprocess with a timeout, so a hanging program is reported as "hung" instead of stopping the
benchmark. Settings: DQN at Dopamine's MinAtar preset (4 envs, update every 4 frames, batch 32),
PPO at the minatar preset (64 envs x 128 steps, 3 epochs x 8 minibatches); --quick halves frames.
Writes benchmarks/results/seeds/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"

CASES = {
    "dqn-cnn": ("dqn", {"encoder": "minatar"}),
    "dqn-mlp": ("dqn", {"encoder": "mlp"}),
    "ppo-cnn": ("ppo", {"encoder": "minatar"}),
    "ppo-mlp": ("ppo", {"encoder": "mlp", "hidden_size": 64}),
}


def config_for(agent: str, extra: dict, quick: bool):
    from tdgen.agents import DQNConfig, PPOConfig

    if agent == "dqn":
        frames = 20_000 if quick else 40_000
        return DQNConfig.minatar(frames=frames, log_every=frames // 4, probe_every=0,
                                 checkpoint_every=0, learning_starts=1_000, **extra)  # fmt: skip
    frames = 64 * 128 * (4 if quick else 8)
    return PPOConfig.minatar(frames=frames, log_every=frames // 4, eval_every=0, probe_every=0,
                             checkpoint_every=0, **extra)  # fmt: skip


def measure(case: str, n: int, mode: str, quick: bool) -> dict:
    """One measurement in this process: the group of n seeds, or n sequential runs."""
    import jax

    from tdgen.agents import build_agent
    from tdgen.agents.train import seed_keys

    agent_name, extra = CASES[case]
    config = config_for(agent_name, extra, quick)
    segments = config.frames // config.segment_frames
    out: dict = {"case": case, "n": n, "mode": mode, "frames": config.frames * n}
    start = time.perf_counter()
    compile_seconds = 0.0
    if mode in ("vmap", "map"):
        train = build_agent(agent_name, config).make_train()
        tick = time.perf_counter()
        init, segment = train.jit_group(mode)
        state = init(seed_keys(range(n)))
        compiled = segment.lower(state).compile()
        compile_seconds = time.perf_counter() - tick
        memory = compiled.memory_analysis()
        out["state_mib"] = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20
        out["temp_mib"] = getattr(memory, "temp_size_in_bytes", 0) / 2**20
        for _ in range(segments):
            state, _ = compiled(state)
        jax.block_until_ready(state)
    else:
        for seed in range(n):
            train = build_agent(agent_name, config.replace(seed=seed)).make_train()
            tick = time.perf_counter()
            state = jax.jit(train.init)(jax.random.PRNGKey(seed))
            compiled = jax.jit(train.segment, donate_argnums=0).lower(state).compile()
            compile_seconds += time.perf_counter() - tick
            for _ in range(segments):
                state, _ = compiled(state)
            jax.block_until_ready(state)
    out["seconds"] = time.perf_counter() - start
    out["compile_seconds"] = compile_seconds
    out["fps"] = out["frames"] / out["seconds"]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_child(case: str, n: int, mode: str, quick: bool, timeout: float) -> dict:
    args = [sys.executable, __file__, "--child", case, str(n), mode] + (
        ["--quick"] if quick else []
    )
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": case, "n": n, "mode": mode, "hung": True}
    if done.returncode != 0:
        return {"case": case, "n": n, "mode": mode, "error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--child", nargs=3, default=None)
    args = parser.parse_args()
    if args.child:
        case, n, mode = args.child
        print(json.dumps(measure(case, int(n), mode, args.quick)))
        return
    from tdgen.bench.record import Record, column

    record = Record("seeds")
    table = record.table("groups", "N seeds as a group against N sequential runs; frames/s include compilation",
                         [column("case"), column("N"), column("sequential", "frames/s"),
                          column("vmap", "frames/s"), column("vmap x"), column("map", "frames/s"),
                          column("map x"), column("compile sequential", "s"),
                          column("compile vmap", "s"), column("compile map", "s"),
                          column("group state", "MiB"), column("XLA temp", "MiB"),
                          column("peak RSS", "MiB"), column("failed")])  # fmt: skip
    header = (f"{'case':8s} {'N':>2s} {'seq f/s':>8s} {'vmap f/s':>9s} {'x':>5s} {'map f/s':>8s} "
              f"{'x':>5s} {'compile s seq/vmap/map':>23s} {'state MiB':>9s} {'temp MiB':>8s} "
              f"{'RSS MiB':>8s}")  # fmt: skip
    print(header)
    rows = []
    for case in args.cases:
        for n in args.seeds:
            seq = run_child(case, n, "sequential", args.quick, args.timeout)
            vmap = run_child(case, n, "vmap", args.quick, args.timeout)
            lmap = run_child(case, n, "map", args.quick, args.timeout)
            rows.append((seq, vmap, lmap))
            if any("fps" not in r for r in (seq, vmap, lmap)):
                states = [f"{r['mode']}: {r.get('error') or ('hung' if r.get('hung') else 'ok')}"
                          for r in (seq, vmap, lmap)]  # fmt: skip
                print(f"{case:8s} {n:2d} " + "; ".join(states), flush=True)
                table.add(case, n, *[None] * 11, "; ".join(states))
                continue
            print(f"{case:8s} {n:2d} {seq['fps']:8,.0f} {vmap['fps']:9,.0f} "
                  f"{vmap['fps'] / seq['fps']:5.2f} {lmap['fps']:8,.0f} "
                  f"{lmap['fps'] / seq['fps']:5.2f} "
                  f"{seq['compile_seconds']:11.1f}/{vmap['compile_seconds']:5.1f}/"
                  f"{lmap['compile_seconds']:5.1f} {vmap['state_mib']:9.1f} "
                  f"{vmap['temp_mib']:8.1f} {vmap['peak_rss_mib']:8.0f}", flush=True)  # fmt: skip
            table.add(case, n, seq["fps"], vmap["fps"], vmap["fps"] / seq["fps"], lmap["fps"],
                      lmap["fps"] / seq["fps"], seq["compile_seconds"], vmap["compile_seconds"],
                      lmap["compile_seconds"], vmap["state_mib"], vmap["temp_mib"],
                      vmap["peak_rss_mib"], None)  # fmt: skip
    print(json.dumps([list(r) for r in rows]))
    record.write(RESULTS)


if __name__ == "__main__":
    main()
