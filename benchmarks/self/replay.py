"""The Atari host replay's sample path: frame-once ring vs the stacked buffer it replaced (not a test).

    .venv/bin/python benchmarks/self/replay.py [--size 100000] [--rounds 7]

Both buffers hold the same transitions (Nature settings: 4 lanes, batch 32, 84x84x4 uint8
stacks), the frame ring as `tdgen.agents.value_based.frame_replay` stores it and the stacked one
as tdgen 0.1.0 did (the whole stack per row, the next observation the next row). Per batch, in
the same process, rounds interleaved, the median and the best round reported (the cores are
shared, and the best round is the least disturbed):
- sample path: the draw (`sample_indices` with a fresh generator per update, as
  `host.train_segment`), the host gather (the ring: `gather_windows`, 5 frames per transition;
  stacked: 8) and `jax.device_put`, until the batch is on the device;
- update: the sample path plus the host loop's jitted Nature-CNN DQN update on it
  (`host.HostFunctions.update`; the ring's NHWC stacks are assembled inside it by XLA);
- numpy batch (probes, distillation; once per probe): the draw and `gather`'s NHWC numpy stacks.
Also the write of one vectorised step (the ring checks the stack it is given) and the bytes per
transition. ``--size`` transitions are filled with random frames (a buffer far larger than the
caches, as a 1M one is). Writes benchmarks/results/replay/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from tdgen import streams
from tdgen.agents.value_based import frame_replay as fr
from tdgen.bench.record import Record, column

RESULTS = Path(__file__).resolve().parents[1] / "results"

LANES, BATCH, SHAPE = 4, 32, (84, 84, 4)


def filled_ring(size: int, seed: int = 0) -> fr.HostReplay:
    """A full ring of random frames with an episode end about every 1,000 steps per lane."""
    replay = fr.init_host_replay(size, LANES, SHAPE)
    rng = np.random.default_rng(seed)
    for start in range(0, replay.slots, 4096):
        block = replay.frames[start : start + 4096]
        block[...] = rng.integers(0, 256, block.shape, np.uint8)
    replay.action[...] = rng.integers(0, 6, replay.action.shape)
    replay.reward[...] = rng.choice([-1.0, 0.0, 1.0], replay.reward.shape)
    replay.valid[...] = rng.random(replay.valid.shape) > 1e-3
    replay.terminated[...] = np.roll(~replay.valid, -1, axis=0)
    replay.first[...] = np.roll(~replay.valid, 1, axis=0)
    return replay.replace(position=np.int32(0), filled=np.int32(replay.slots))


def stacked_copy(replay: fr.HostReplay) -> dict[str, np.ndarray]:
    """The stacked buffer of tdgen 0.1.0 holding the ring's sampleable rows, oldest first."""
    first, count = fr.candidate_rows(replay)
    rows = (first + np.arange(count + 1)) % replay.slots
    obs = np.empty((rows.size, LANES, *SHAPE), np.uint8)
    lanes = np.arange(LANES)
    for i, r in enumerate(rows):
        obs[i] = fr.gather_stacks(replay, np.full(LANES, r), lanes)
    take = {k: getattr(replay, k)[rows] for k in ("action", "reward", "terminated", "valid")}
    return {"obs": obs, **take, "first_row": first}


def stacked_sample(buffer: dict[str, np.ndarray], rng: np.random.Generator):
    """tdgen 0.1.0's draw and gather (rows are ages from the oldest, as the ring's offsets)."""
    rows_total = buffer["obs"].shape[0]
    rows, cols = np.empty(BATCH, np.int64), np.empty(BATCH, np.int64)
    missing = np.arange(BATCH)
    while missing.size:
        r = rng.integers(0, rows_total - 1, missing.size)
        c = rng.integers(0, LANES, missing.size)
        rows[missing], cols[missing] = r, c
        missing = missing[~buffer["valid"][r, c]]
    return {"obs": buffer["obs"][rows, cols], "action": buffer["action"][rows, cols],
            "reward": buffer["reward"][rows, cols], "next_obs": buffer["obs"][rows + 1, cols],
            "terminated": buffer["terminated"][rows, cols]}  # fmt: skip


def ring_sample(replay: fr.HostReplay, rng: np.random.Generator):
    return fr.gather(replay, *fr.sample_indices(replay, rng, BATCH))


def ring_device(replay: fr.HostReplay, rng: np.random.Generator):
    return jax.device_put(fr.gather_windows(replay, *fr.sample_indices(replay, rng, BATCH)))


def stacked_device(buffer: dict[str, np.ndarray], rng: np.random.Generator):
    return jax.device_put(stacked_sample(buffer, rng))


class Updates:
    """The host loop's jitted update (Nature DQN, Nature CNN) after a sample path."""

    def __init__(self):
        from tdgen.agents import DQNConfig, build_agent
        from tdgen.agents.value_based import host as hl

        agent = build_agent("dqn", DQNConfig.nature(env="atari/Pong", buffer_size=1_000,
                                                    batch_size=BATCH))  # fmt: skip
        self.fns = hl.HostFunctions(agent)
        self.learner = hl.init_state(agent).learner

    def after(self, sample):
        def step(data, rng):
            self.learner = self.fns.update(self.learner, sample(data, rng))
            return self.learner

        return step


def per_batch(sample, data, batches: int) -> float:
    tick = time.perf_counter()
    for i in range(batches):
        jax.block_until_ready(sample(data, np.random.default_rng([0, streams.SAMPLE, i])))
    return (time.perf_counter() - tick) / batches


def write_step(replay: fr.HostReplay, steps: int) -> tuple[float, float]:
    """Seconds per vectorised write: the ring (with its stack check) and a stacked row."""
    obs = fr.gather_stacks(replay, np.full(LANES, replay.slots - 1), np.arange(LANES))
    zeros, ones = np.zeros(LANES), np.ones(LANES, np.bool_)
    small = fr.init_host_replay(4096 * LANES, LANES, SHAPE)
    stacked = np.zeros((4096, LANES, *SHAPE), np.uint8)
    tick = time.perf_counter()
    for _ in range(steps):
        # a constant stack chains with itself when its 4 frames are equal
        small = fr.write_row(small, np.repeat(obs[..., -1:], 4, -1), zeros, zeros, ~ones, ones)
    ring = (time.perf_counter() - tick) / steps
    tick = time.perf_counter()
    for i in range(steps):
        stacked[i % 4096] = obs
    return ring, (time.perf_counter() - tick) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    record = Record("replay")
    ring = filled_ring(args.size)
    stacked = stacked_copy(ring)
    a = stacked_sample(stacked, np.random.default_rng([0, streams.SAMPLE, 0]))
    b = ring_sample(ring, np.random.default_rng([0, streams.SAMPLE, 0]))
    for key in a:  # the same draw gives the same transitions
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    print(f"buffer: {args.size:,} transitions, {LANES} lanes, batch {BATCH}; "
          f"{jax.devices()[0].platform}")  # fmt: skip
    stacked_bytes = int(np.prod(SHAPE)) + 11
    print(f"bytes per transition: frame ring {fr.bytes_per_transition(SHAPE):,}, "
          f"stacked {stacked_bytes:,} ({stacked_bytes / fr.bytes_per_transition(SHAPE):.2f}x); "
          f"1M transitions: {fr.replay_bytes(10**6, LANES, SHAPE) / fr.GIB:.2f} GiB vs "
          f"{10**6 * stacked_bytes / fr.GIB:.2f} GiB")  # fmt: skip
    record.table("bytes", "bytes per transition, and a 1M-transition buffer",
                 [column("buffer"), column("per transition", "B"), column("1M transitions", "GiB")])  # fmt: skip
    record.tables[-1].add("frame ring", fr.bytes_per_transition(SHAPE),
                          fr.replay_bytes(10**6, LANES, SHAPE) / fr.GIB)  # fmt: skip
    record.tables[-1].add("stacked", stacked_bytes, 10**6 * stacked_bytes / fr.GIB)
    paths = record.table("paths", f"per batch of {BATCH}, {args.size:,} transitions, {LANES} lanes, "
                         f"medians of {args.rounds} interleaved rounds",
                         [column("path"), column("frame ring", "ms"), column("stacked", "ms"),
                          column("ring / stacked"), column("ring / stacked, best rounds")])  # fmt: skip
    updates = Updates()
    pairs = {"sample path": (ring_device, stacked_device, args.batches),
             "update": (updates.after(ring_device), updates.after(stacked_device),
                        max(args.batches // 10, 5)),
             "numpy batch": (ring_sample, stacked_sample, args.batches)}  # fmt: skip
    for name, (ring_fn, stacked_fn, batches) in pairs.items():
        per_batch(ring_fn, ring, 3), per_batch(stacked_fn, stacked, 3)
        times = {"ring": [], "stacked": []}
        for _ in range(args.rounds):
            times["ring"].append(per_batch(ring_fn, ring, batches))
            times["stacked"].append(per_batch(stacked_fn, stacked, batches))
        r, s = np.median(times["ring"]), np.median(times["stacked"])
        best = min(times["ring"]) / min(times["stacked"])
        paths.add(name, r * 1e3, s * 1e3, r / s, best)
        print(f"{name:12s} ring {r * 1e3:8.3f} ms, stacked {s * 1e3:8.3f} ms per batch (medians): "
              f"ring/stacked = {r / s:.2f} (best rounds: {best:.2f})")  # fmt: skip
    w_ring, w_stacked = write_step(ring, 2000)
    print(f"write one step ({LANES} lanes): ring {w_ring * 1e6:.0f} us (with the stack check), "
          f"stacked {w_stacked * 1e6:.0f} us")  # fmt: skip
    record.table("write", f"writing one vectorised step ({LANES} lanes)",
                 [column("frame ring, with the stack check", "us"), column("stacked", "us")]).add(
        w_ring * 1e6, w_stacked * 1e6)  # fmt: skip
    record.write(RESULTS)


if __name__ == "__main__":
    main()
