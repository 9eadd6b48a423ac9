"""The host event loop with a seed group: a run that diverges stops alone, and its siblings keep
their own schedule of log lines, events and checkpoints (as they would alone)."""

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import struct

from tdgen.runs import MetricsLogger, RunDir, complete_checkpoints
from tdgen.runs.loop import Event, Group, run_segments, stacked_member
from tdgen.runs.metrics import read_metrics


@struct.dataclass
class Fake:
    frames: jnp.ndarray
    total: jnp.ndarray  # a per-run accumulator reset by every log line
    diverged: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class Schedule:
    frames: int = 1_000
    log_every: int = 200
    checkpoint_every: int = 400
    keep_checkpoints: int = 10


def test_a_diverging_run_stops_alone_and_its_sibling_keeps_its_schedule(tmp_path):
    runs = [RunDir.create(tmp_path / f"r{i}", "fake", {"i": i}) for i in range(2)]
    loggers = [MetricsLogger(r.path, tensorboard=False) for r in runs]

    def advance(s: Fake) -> Fake:  # 100 frames a segment; run 1 diverges at frame 300
        frames = s.frames + 100
        return Fake(frames, s.total + 1, s.diverged | ((frames == 300) & (jnp.arange(2) == 1)))

    def log_values(config, s, frames, seconds):
        return {"total": int(s.total), **({"charts/diverged": 1} if s.diverged else {})}, s

    seen = []
    events = [Event(500, lambda s, i: seen.append((int(s.frames), i)) or {"event": 1})]
    reset = lambda s: s.replace(total=jnp.zeros_like(s.total))  # noqa: E731
    start = Fake(jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32), jnp.zeros(2, bool))
    run_segments(Schedule(), "fake", runs, start, loggers, False, advance=advance,
                 diverged=lambda s: np.asarray(s.diverged), log_values=log_values,
                 events=events, group=Group(2, stacked_member, reset))  # fmt: skip
    for logger in loggers:
        logger.close()
    healthy, diverged = read_metrics(runs[0].path), read_metrics(runs[1].path)
    lines = [r for r in healthy if "total" in r]
    assert [r["step"] for r in lines] == [200, 400, 600, 800, 1_000]
    assert all(r["total"] == 2 for r in lines)  # reset on its own schedule only
    assert [r["step"] for r in healthy if "event" in r] == [500, 1_000]
    assert [r["step"] for r in diverged] == [200, 300] and diverged[-1]["charts/diverged"] == 1
    assert complete_checkpoints(runs[0].checkpoints) == [400, 800, 1_000]
    assert complete_checkpoints(runs[1].checkpoints) == [300]
    assert seen == [(500, 0), (1_000, 0)]  # the diverged run's events stop with it
