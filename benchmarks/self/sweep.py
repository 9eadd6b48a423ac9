"""Sweep benchmark: 8 tiny MinAtar DQN runs (2 games x 4 seeds), local backends side by side.

Each mode runs as a fresh Python process (imports and JAX start-up included, as `tdgen sweep`)
into a fresh out dir; the cached modes start from an empty (cold) XLA compilation cache:
  sequential          one process, runs one after another, no persistent cache
  sequential+cache    one process, persistent compilation cache shared by the runs
  pool2               a pool of 2 spawned processes, no persistent cache
  pool2+cache         a pool of 2 processes sharing one persistent cache
  pool2+cache,1thread the same, each process limited to 1 XLA CPU thread

Prints wall seconds per mode and the ratio to `sequential` (> 1: faster than sequential).
Seed groups (seeds trained as one program) are measured by seeds.py, not here. Writes
benchmarks/results/sweep/MACHINE.json (`tdgen.bench.record`).

    python benchmarks/self/sweep.py [--frames 4000] [--rounds 1] [--modes sequential pool2+cache]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tdgen.sweep.backends import LocalBackend
from tdgen.sweep.grid import Grid
from tdgen.sweep.launch import run_sweep

RESULTS = Path(__file__).resolve().parents[1] / "results"

MODES = {
    "sequential": (LocalBackend(workers=1), False),
    "sequential+cache": (LocalBackend(workers=1), True),
    "pool2": (LocalBackend(workers=2), False),
    "pool2+cache": (LocalBackend(workers=2), True),
    "pool2+cache,1thread": (LocalBackend(workers=2, threads=1), True),
}


def grid(frames: int) -> Grid:
    """2 games x 4 seeds of a small DQN (MinAtar CNN, Dopamine's MinAtar preset, shortened)."""
    return Grid(
        agents=("dqn",), envs=("minatar/breakout", "minatar/asterix"), seeds=(0, 1, 2, 3),
        set=dict(frames=frames, num_envs=4, buffer_size=5_000, learning_starts=500,
                 epsilon_decay_frames=frames // 2, log_every=frames // 4, probe_every=0,
                 checkpoint_every=0),
    )  # fmt: skip


def run_mode(mode: str, frames: int, out: Path, cache: Path | None) -> None:
    """One mode's sweep, in this (fresh) process."""
    backend, _ = MODES[mode]
    results = run_sweep([grid(frames)], out, backend, cache_dir=cache)
    failed = [r for r in results if r.status != "trained"]
    if failed:
        raise SystemExit(f"{mode}: runs did not train: {failed}")


def measure(mode: str, frames: int, scratch: Path) -> float:
    """Wall seconds of one mode as a user sees it: a fresh Python process (imports included), a
    fresh out dir and, for the cached modes, a fresh (cold) compilation cache."""
    _, cached = MODES[mode]
    out = scratch / mode.replace("+", "_").replace(",", "_")
    cache = scratch / f"{out.name}_cache" if cached else None
    shutil.rmtree(out, ignore_errors=True)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)
    command = [sys.executable, __file__, "--run-mode", mode, "--frames", str(frames),
               "--out", str(out)] + (["--cache", str(cache)] if cache else [])  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--run-mode", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_mode:
        run_mode(args.run_mode, args.frames, args.out, args.cache)
        return
    if "sequential" not in args.modes:
        args.modes = ["sequential", *args.modes]
    from tdgen.bench.record import Record, column

    record = Record("sweep")
    seconds: dict[str, list[float]] = {m: [] for m in args.modes}
    with tempfile.TemporaryDirectory(prefix="tdgen-sweep-bench-") as scratch:
        for r in range(args.rounds):
            for mode in args.modes:
                seconds[mode].append(measure(mode, args.frames, Path(scratch)))
                print(f"round {r + 1} {mode:22s} {seconds[mode][-1]:7.1f} s", flush=True)
    base = min(seconds["sequential"])
    print(f"\n8 runs x {args.frames} frames; best of {args.rounds} round(s)")
    print("| mode | wall s | speed-up vs sequential |")
    print("|---|---|---|")
    table = record.table("modes", f"8 runs x {args.frames} frames, best of {args.rounds} round(s)",
                         [column("mode"), column("wall", "s"), column("speed-up vs sequential")])  # fmt: skip
    for mode in args.modes:
        best = min(seconds[mode])
        table.add(mode, best, base / best)
        print(f"| {mode} | {best:.1f} | {base / best:.2f} |")
    record.write(RESULTS)


if __name__ == "__main__":
    main()
