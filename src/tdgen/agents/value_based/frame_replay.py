"""The Atari host replay: each frame stored once, stacks gathered at sample time (Dopamine's layout).

envpool gives a stack of the last 4 frames per agent step [n, 84, 84, 4]; consecutive stacks of
an episode share 3 frames, so storing the stack per transition (28,224 B) holds every frame 4
times. This ring holds one 84x84 uint8 frame per agent step per environment lane (7,056 B) and
rebuilds stacks when sampled, as Dopamine's circular replay does (Castro et al. 2018).

Layout: one ring of ``slots = rows + stack - 1`` rows, each row the newest frame of one
vectorised step for all ``num_envs`` lanes (``frames [slots, n, 84, 84]``), plus per row and lane
the action taken (int32), the clipped reward (float32), terminated (bool), valid (false for
envpool's auto-reset steps and for the newest row before a resume, as before) and first (the row
starts an episode: the environment was reset, so the stack holds only this episode's frames).
Lanes are independent episodes, so a stack only ever reads its own column.

Stacks: the observation of row s is the frames of rows s-3..s of its lane, oldest first on the
last axis; rows before the episode's first row are replaced by that first row, because that is
what envpool's own reset stack shows (it repeats the first frame, not zeros; `write_row` checks
one frame per lane at every write). The next observation of row s is the stack of row s+1, so a
sampled transition is a window of 5 frames (`gather_windows`, what the host loop's update takes;
`gather` gives NHWC numpy stacks for probes and distillation).

Sampling is unchanged from the stacked buffer it replaces: the sampleable transitions are the
newest ``min(filled, rows)`` rows but the newest (its next observation is not stored yet), and
the 3 extra rows keep the frames the oldest of them stacks on, so a stack never reads across the
write head and the same random draws pick the same transitions: batches equal, value for value,
what the stacked buffer gave (tests/agents/test_frame_replay.py). Indices are (row, lane) of this
ring; flat indices are row * num_envs + lane.
"""

from __future__ import annotations

import numpy as np
from flax import struct

from tdgen.errors import InsufficientMemoryError

GIB = 2**30


@struct.dataclass
class HostReplay:
    """Host (numpy) frame ring; see the module docstring.

    frames [slots, n, H, W] uint8; action, reward, terminated, valid, first [slots, n];
    position: the next row to write; filled: rows written (at most ``slots``).
    """

    frames: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    valid: np.ndarray
    first: np.ndarray
    position: np.ndarray
    filled: np.ndarray
    stack: int = struct.field(pytree_node=False, default=4)

    @property
    def slots(self) -> int:
        return self.frames.shape[0]

    @property
    def rows(self) -> int:
        """Transitions per lane that can be sampled (the configured capacity / num_envs)."""
        return self.slots - (self.stack - 1)

    @property
    def num_envs(self) -> int:
        return self.frames.shape[1]


def bytes_per_transition(obs_shape: tuple[int, ...]) -> int:
    """Host bytes per stored transition: one frame plus action, reward and three flags."""
    return int(np.prod(obs_shape[:-1])) + 4 + 4 + 3


def replay_bytes(size: int, num_envs: int, obs_shape: tuple[int, ...]) -> int:
    """Bytes of a ring of ``size`` transitions over ``num_envs`` lanes."""
    slots = size // num_envs + obs_shape[-1] - 1
    return slots * num_envs * bytes_per_transition(obs_shape)


def available_memory() -> int:
    """Bytes the kernel can still hand out (MemAvailable of /proc/meminfo; else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require_memory(size: int, num_envs: int, obs_shape: tuple[int, ...]) -> None:
    """Refuse, in one line with the figure, a replay larger than the memory the host has free."""
    need = replay_bytes(size, num_envs, obs_shape)
    free = available_memory()
    if need > free:
        raise InsufficientMemoryError(
            f"buffer_size {size} needs {need / GIB:.1f} GiB of host memory for the Atari replay "
            f"but {free / GIB:.1f} GiB is available: lower buffer_size or free memory"
        )


def init_host_replay(size: int, num_envs: int, obs_shape: tuple[int, ...]) -> HostReplay:
    """An empty ring of ``size`` transitions; refused in one line if it cannot fit in memory."""
    require_memory(size, num_envs, obs_shape)
    slots = size // num_envs + obs_shape[-1] - 1
    flags = {name: np.zeros((slots, num_envs), np.bool_)
             for name in ("terminated", "valid", "first")}  # fmt: skip
    return HostReplay(
        frames=np.zeros((slots, num_envs, *obs_shape[:-1]), np.uint8),
        action=np.zeros((slots, num_envs), np.int32),
        reward=np.zeros((slots, num_envs), np.float32),
        position=np.int32(0),
        filled=np.int32(0),
        stack=obs_shape[-1],
        **flags,
    )


def stack_rows(replay: HostReplay, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Ring rows [m, stack] of the frames of the stacks at (rows, cols), oldest first: rows s-3..s
    clamped to the episode's first row (the reset stack repeats the first frame)."""
    k, slots = replay.stack, replay.slots
    rows = np.asarray(rows, np.int64)
    back = (rows[:, None] - np.arange(k - 1, -1, -1)) % slots  # [m, k]: s-3, ..., s
    # age of the episode start within the window: the smallest j < k with first[s - j]
    starts = replay.first[back[:, ::-1][:, :-1], np.asarray(cols)[:, None]]  # first[s], ..., [s-2]
    age = np.where(starts.any(axis=1), starts.argmax(axis=1), k - 1)
    ages = np.minimum(np.arange(k - 1, -1, -1)[None, :], age[:, None])
    return (rows[:, None] - ages) % slots


def gather_stacks(replay: HostReplay, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Observations [m, H, W, stack] uint8 of rows (rows, cols)."""
    cols = np.asarray(cols)
    frames = replay.frames[stack_rows(replay, rows, cols), cols[:, None]]  # [m, k, H, W]
    return np.ascontiguousarray(np.moveaxis(frames, 1, -1))


def write_row(replay: HostReplay, obs, action, reward, terminated, valid) -> HostReplay:
    """Write one vectorised step (obs [n, H, W, stack]) in place; returns the replay advanced.

    A row starts an episode when the previous one was an auto-reset step or a resume (not valid),
    or the ring is empty. The incoming stack must be what the ring rebuilds, so every write checks
    that its second-newest frame is the lane's previous frame or, at an episode start, that its
    oldest frame is its newest (the reset stack repeats the first frame); an environment that
    stacks otherwise is refused (full equality with envpool is tested, not checked per step).
    """
    row, n = int(replay.position), replay.num_envs
    if int(replay.filled) == 0:
        first = np.ones(n, np.bool_)
    else:
        first = ~replay.valid[(row - 1) % replay.slots]
    previous = replay.frames[(row - 1) % replay.slots]
    chained = (obs[..., -2] == previous).reshape(n, -1).all(axis=1)
    repeated = (obs[..., 0] == obs[..., -1]).reshape(n, -1).all(axis=1)
    wrong = np.flatnonzero(np.where(first, ~repeated, ~chained))
    if wrong.size:
        raise ValueError(
            f"lane {wrong[0]}'s observation stack is not its previous frames (or, at an episode "
            "start, the first frame repeated): the frame-once replay needs envpool's stacking"
        )
    replay.frames[row] = obs[..., -1]
    replay.action[row] = action
    replay.reward[row] = reward
    replay.terminated[row] = terminated
    replay.valid[row] = valid
    replay.first[row] = first
    return replay.replace(
        position=np.int32((row + 1) % replay.slots),
        filled=np.int32(min(int(replay.filled) + 1, replay.slots)),
    )


def candidate_rows(replay: HostReplay) -> tuple[int, int]:
    """(first row, count) of the rows whose next observation is stored, oldest first."""
    held = min(int(replay.filled), replay.rows)
    return (int(replay.position) - held) % replay.slots, max(held - 1, 0)


def sample_indices(replay: HostReplay, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """``n`` (row, col) pairs drawn uniformly with replacement from the valid transitions."""
    first, count = candidate_rows(replay)
    rows, cols = np.empty(n, np.int64), np.empty(n, np.int64)
    missing = np.arange(n)
    while missing.size:  # rejection of invalid transitions (about one per episode)
        r = (first + rng.integers(0, count, missing.size)) % replay.slots
        c = rng.integers(0, replay.num_envs, missing.size)
        rows[missing], cols[missing] = r, c
        missing = missing[~replay.valid[r, c]]
    return rows, cols


def valid_flat_indices(replay: HostReplay) -> np.ndarray:
    """Flat indices row * num_envs + col of every sampleable transition, oldest row first."""
    first, count = candidate_rows(replay)
    rows = (first + np.arange(count)) % replay.slots
    ok = replay.valid[rows]
    return (rows[:, None] * replay.num_envs + np.arange(replay.num_envs))[ok]


def gather_windows(replay: HostReplay, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
    """Transitions at (rows[i], cols[i]) with their two stacks as one window of frames: frames
    [m, stack + 1, H, W] uint8 (obs = frames[:, :-1], next_obs = frames[:, 1:], channels first),
    action, reward, terminated [m]. For sampleable transitions only (row s valid: s + 1 continues
    the episode, so both stacks share the clamp at its start). The host loop's update takes this
    (1.25 frames per stack transferred, the channels-last transpose done by XLA: `window_batch`)."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    window = np.concatenate([stack_rows(replay, rows, cols), (rows[:, None] + 1) % replay.slots], 1)
    flat = replay.frames.reshape(-1, *replay.frames.shape[2:])  # a view: row * n + lane
    return {
        "frames": flat[window * replay.num_envs + cols[:, None]],
        "action": replay.action[rows, cols],
        "reward": replay.reward[rows, cols],
        "terminated": replay.terminated[rows, cols],
    }


def window_batch(windows: dict, xp=np) -> dict:
    """`gather_windows`'s output in the layout of `tdgen.agents.value_based.replay.gather`: obs,
    next_obs [m, H, W, stack] (``xp``: numpy, or jax.numpy inside a jitted update); a batch that
    already has stacks (no "frames") is returned as it is."""
    if "frames" not in windows:
        return windows
    frames = windows["frames"]
    rest = {k: v for k, v in windows.items() if k != "frames"}
    return {"obs": xp.moveaxis(frames[:, :-1], 1, -1), "next_obs": xp.moveaxis(frames[:, 1:], 1, -1),
            **rest}  # fmt: skip


def gather(replay: HostReplay, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
    """Sampleable transitions at (rows[i], cols[i]) as numpy obs, next_obs [m, H, W, stack] uint8
    and action, reward, terminated [m] (probes, distillation)."""
    batch = window_batch(gather_windows(replay, rows, cols))
    return {k: np.ascontiguousarray(v) for k, v in batch.items()}


def invalidate_newest(replay: HostReplay) -> None:
    """Mark the newest row's transitions unsampleable (in place): after a resume its next
    observation is a reset, and the row written next starts an episode."""
    if int(replay.filled) > 0:
        replay.valid[(int(replay.position) - 1) % replay.slots] = False


__all__ = [
    "HostReplay", "available_memory", "bytes_per_transition", "candidate_rows", "gather",
    "gather_stacks", "gather_windows", "init_host_replay", "invalidate_newest", "replay_bytes", "require_memory", "sample_indices",
    "stack_rows", "valid_flat_indices", "window_batch", "write_row",
]  # fmt: skip
