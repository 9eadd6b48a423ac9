"""Students of Atari value teachers: batches sampled on the host from the frame-once replay.

An Atari DQN/C51/QR-DQN teacher brings its replay as it was at the checkpoint: the host ring of
`tdgen.agents.value_based.frame_replay` (1e6 transitions, 6.6 GiB, on the paper presets; Appendix
B.3). It never enters a jitted function: every update draws its batch on the host from
``numpy.random.default_rng([seed, SAMPLE, updates])`` (uniform over the valid transitions, as the
teacher's own loop samples), gathers the 5-frame windows (`gather_windows`) and runs one jitted
`Distiller.learn` on them, the stacks assembled by XLA (`window_batch`), the teacher's outputs
computed inside the update. So a student is a function of (teacher checkpoint, config, seed), and a
resumed one updates bit for bit as an uninterrupted one.

With ``collect`` (Appendix B.3: "allow the pre-trained agent to collect additional data during
distillation") the teacher keeps acting, epsilon-greedy at ``teacher_epsilon``, in an envpool pool
of one emulator per replay lane: one vectorised step every ``collect_every`` updates, before that
update samples, written into the ring with `write_row` (the teacher's loop's clipping and
validity rules). The student's state then carries the ring (checkpointed with it, streamed:
`tdgen.runs.msgpack_stream`); without collect the state carries no replay and the teacher's is the
data. As in the teacher's own loop, envpool's emulators cannot be saved: a (re)start opens a pool
seeded from (seed, updates) and marks the newest row unsampleable (its next observation would be a
reset), so a resumed collecting student is not bit-exact with an uninterrupted one.

Probes draw k distinct valid transitions on the host (`probe_replay`, from (seed, updates)) and run
the student's usual probe on them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from tdgen import streams
from tdgen.agents.probes import ProbeResult
from tdgen.agents.value_based.frame_replay import (
    HostReplay,
    gather_windows,
    invalidate_newest,
    sample_indices,
    window_batch,
    write_row,
)
from tdgen.agents.value_based.host import env_seed, probe_replay
from tdgen.distill.trainer import Distiller, DistillState, make_distill_probe


def data(distiller: Distiller, state: DistillState) -> HostReplay:
    """The ring the student samples: its own (collect) or the teacher's."""
    return state.replay if distiller.config.collect else distiller.teacher.replay


class Collection:
    """The teacher acting in an envpool pool of one emulator per replay lane, from ``updates``."""

    def __init__(self, distiller: Distiller, replay: HostReplay, updates: int):
        c, teacher = distiller.config, distiller.teacher
        self.teacher, self.seed = teacher, c.seed
        self.env = teacher.env.vector(replay.num_envs, env_seed(c.seed, updates, streams.ENV))
        self.obs = self.env.reset()
        self.prev_done = np.zeros(replay.num_envs, np.bool_)
        self.key = jax.random.fold_in(jax.random.PRNGKey(c.seed), streams.COLLECT)
        epsilon = c.teacher_epsilon
        self._act = jax.jit(lambda params, obs, key: teacher.act(params, obs, key, epsilon))
        invalidate_newest(replay)  # the row before this pool's first: its next obs is a reset

    def step(self, replay: HostReplay, updates: int) -> HostReplay:
        """One vectorised teacher step written into ``replay`` (in place; returned advanced)."""
        key = jax.random.fold_in(self.key, updates)
        actions = np.asarray(self._act(self.teacher.params, self.obs, key))
        next_obs, reward, terminated, truncated, _ = self.env.step(actions)
        replay = write_row(replay, self.obs, actions, np.clip(reward, -1.0, 1.0), terminated,
                           ~self.prev_done)  # fmt: skip
        self.obs, self.prev_done = next_obs, terminated | truncated
        return replay

    def close(self) -> None:
        self.env.close()


@contextlib.contextmanager
def segments(distiller: Distiller, start: DistillState) -> Iterator[Callable]:
    """``advance(state) -> state``: ``segment_updates`` host-sampled updates (collecting first
    where due); the collection pool, if any, is closed on exit."""
    c = distiller.config
    update = jax.jit(lambda state, windows: distiller.learn(state, window_batch(windows, jnp)),
                     donate_argnums=0)  # fmt: skip
    collection = Collection(distiller, start.replay, int(start.updates)) if c.collect else None

    def advance(state: DistillState) -> DistillState:
        replay = data(distiller, state)
        learner = state.replace(replay=())  # the ring stays on the host
        updates = int(state.updates)
        for _ in range(c.segment_updates):
            if collection is not None and updates % c.collect_every == 0:
                replay = collection.step(replay, updates)
            rng = np.random.default_rng([c.seed, streams.SAMPLE, updates])
            learner = update(learner, gather_windows(replay, *sample_indices(replay, rng,
                                                                             c.batch_size)))  # fmt: skip
            updates += 1
        return learner.replace(replay=replay if c.collect else ())

    try:
        yield advance
    finally:
        if collection is not None:
            collection.close()


def make_probe(distiller: Distiller) -> Callable[[DistillState], ProbeResult | None]:
    """The student's probe on k distinct valid transitions drawn on the host at its update count;
    saved indices are the ring's flat ones (row * num_envs + lane)."""
    c = distiller.config
    probe = make_distill_probe(distiller)

    def run(state: DistillState) -> ProbeResult | None:
        drawn = probe_replay(data(distiller, state), c.seed, int(state.updates), c.probe_k,
                             c.probe_draws)  # fmt: skip
        if drawn is None:
            return None
        device_replay, chosen = drawn
        result = probe(state.replace(replay=device_replay))
        return dataclasses.replace(result, indices=chosen[result.indices])

    return run


__all__ = ["Collection", "data", "make_probe", "segments"]
