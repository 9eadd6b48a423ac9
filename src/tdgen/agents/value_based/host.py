"""The host-stepping training loop for envpool Atari: envpool on the host, a jitted update.

The same agent as the gymnax loop (`tdgen.agents.value_based.Agent`: its network, per-transition
loss vmapped by `Agent.batch_loss`, optimiser, epsilon-greedy `Agent.act`, target period, probes,
metric names, atomic checkpoints), with the environment stepped by envpool and the replay kept on
the host in uint8. One iteration, identical with and without overlap:

1. act on the current observations (jitted epsilon-greedy; the acting key lives in the state);
2. start the environment step: ``send`` (overlap) or nothing yet;
3. the updates due (one per ``train_every`` agent steps once past ``learning_starts``), each on a
   batch gathered on the host, dispatched asynchronously; then the target copy if due;
4. finish the step: ``recv`` (overlap; the emulators ran on envpool's threads meanwhile) or wait
   for the updates, then ``step`` (no overlap);
5. write one replay row.

So overlap changes only timing, never a number. Updates sample from the replay as it was before
this iteration's row.

Counting: a *frame* in the config (``frames``, ``learning_starts``, ``train_every``,
``target_period``, ``epsilon_decay_frames``, ``probe_every``, ...) is one agent step of one
environment, as in the gymnax loop, so the Atari presets' numbers (Nature DQN's "update every 4",
which are agent steps) mean what their sources mean. One agent step is 4 emulator frames
(frame skip 4); metrics log ``charts/emulator_frames`` = 4 x frames. envpool's auto-reset step
(after an episode ends, one step whose action is ignored) counts as a frame, as in CleanRL.

Replay (`tdgen.agents.value_based.frame_replay`): a ring of rows x num_envs holding one frame
per agent step (the observation an action was taken at is rebuilt from its lane's last 4 frames);
the next observation is the next row of the same lane, because envpool returns an episode's final
observation at its last step and the reset observation one step later. The transition of an
auto-reset step (final -> reset observation) is marked invalid and never sampled, nor is the
newest row (its next observation is not stored yet). 7,067 B per transition: a 1M buffer (the
Nature and Tandem presets) needs 6.6 GiB; a preset that does not fit free memory is refused
before it allocates.

Resume: parameters, target parameters, optimiser state, replay, acting key, counters and
accumulators are restored exactly. envpool's emulator state cannot be saved, so a resumed run
starts new episodes from a reset with the envpool seed derived from (seed, frames), and the
replay's newest transition before the checkpoint is invalidated (its next observation would be the
reset). An Atari resume is therefore NOT bit-exact with an uninterrupted run (the gymnax loop is);
it continues the same learner on a freshly reset environment.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tdgen import streams
from tdgen.agents.probes import ProbeResult, ProbeView
from tdgen.agents.value_based import replay as replay_lib
from tdgen.agents.value_based.agent import Agent, intervention_values
from tdgen.agents.value_based.config import epsilon_at
from tdgen.agents.value_based.frame_replay import (
    HostReplay,
    gather,
    gather_windows,
    init_host_replay,
    invalidate_newest,
    sample_indices,
    valid_flat_indices,
    window_batch,
    write_row,
)
from tdgen.agents.value_based.probe import make_value_probe
from tdgen.envs.atari import emulator_frames
from tdgen.runs import MetricsLogger, RunDir, latest_checkpoint, load_run_checkpoint
from tdgen.runs.checkpoint import CheckpointError
from tdgen.runs.loop import log_line, probe_event, run_segments


def is_host_env(name: str) -> bool:
    """Whether ``name`` is stepped on the host (envpool) rather than in a jitted scan."""
    return name.startswith("atari/")


@struct.dataclass
class Learner:
    """The device side: parameters, target, optimiser state, loss accumulators since the last log,
    and the interventions' memory and logged sums (as in `TrainState`)."""

    params: Any
    target_params: Any
    opt_state: Any
    loss_sum: jax.Array
    loss_count: jax.Array
    diverged: jax.Array
    memory: Any = ()
    logs: Any = struct.field(default_factory=dict)


@struct.dataclass
class HostTrainState:
    """Everything a host run checkpoints: learner, host replay, acting key and counters."""

    learner: Learner
    replay: HostReplay
    key: jax.Array
    frames: np.ndarray
    updates: np.ndarray
    return_sum: np.ndarray
    episodes: np.ndarray


def initial_learner(agent: Agent, key_params: jax.Array) -> Learner:
    """The learner at update 0 from the parameters' key (pure: `jax.eval_shape` can trace it)."""
    return Learner(
        **agent.init_learner(key_params),
        loss_sum=jnp.float32(0.0),
        loss_count=jnp.int32(0),
        diverged=jnp.bool_(False),
    )


def init_state(agent: Agent, seed: int | None = None) -> HostTrainState:
    """The state at frame 0 (the same parameter initialisation as `Agent.init`)."""
    config = agent.config
    key = jax.random.PRNGKey(config.seed if seed is None else seed)
    key, key_params, _ = jax.random.split(key, 3)
    learner = initial_learner(agent, key_params)
    replay = init_host_replay(config.buffer_size, config.num_envs, agent.env.observation_shape)
    return HostTrainState(learner, replay, key, np.int32(0), np.int32(0), np.float32(0.0),
                          np.int32(0))  # fmt: skip


class HostFunctions:
    """The jitted pieces: epsilon-greedy acting, one update (`Agent.learn`, the gymnax loop's,
    interventions included), the target copy (`Agent.copy_target`)."""

    def __init__(self, agent: Agent):
        config = agent.config
        events_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), streams.INTERVENTIONS)

        def act(params, obs, key, frames, memory):
            key, key_act = jax.random.split(key)
            return agent.act(params, obs, key_act, epsilon_at(config, frames), memory), key

        def update(learner: Learner, windows, updates) -> Learner:
            """Update number ``updates`` on `gather_windows` transitions (stacks assembled here,
            by XLA); the interventions' events draw from (seed, updates)."""
            batch = window_batch(windows, jnp)
            return agent.learn(learner, batch, jax.random.fold_in(events_key, updates), updates)

        self.act = jax.jit(act)
        self.update = jax.jit(update, donate_argnums=0)
        self.copy_target = jax.jit(lambda lr: lr.replace(target_params=agent.copy_target(lr)))


def env_seed(seed: int, frames: int, stream: int = streams.ENV) -> int:
    """envpool's seed for a (re)start at ``frames``: fresh episodes after every resume; another
    ``stream`` gives an independent seed (evaluation pools)."""
    return int(np.random.SeedSequence([seed, stream, frames]).generate_state(1)[0] >> 2)


def train_segment(agent, fns, state, env, obs, prev_done, iterations, overlap: bool):
    """``iterations`` vectorised steps (see the module docstring); returns the state, obs, done."""
    config = agent.config
    n = config.num_envs
    learner, replay, key = state.learner, state.replay, state.key
    frames, updates = int(state.frames), int(state.updates)
    return_sum, episodes = float(state.return_sum), int(state.episodes)
    per_iteration = max(n // config.train_every, 1)
    for _ in range(iterations):
        actions, key = fns.act(learner.params, obs, key, jnp.int32(frames), learner.memory)
        actions = np.asarray(actions)
        if overlap:
            env.send(actions)
        after = frames + n
        if after > config.learning_starts and (
            config.train_every < n or after % config.train_every == 0
        ):
            for _ in range(per_iteration):
                rng = np.random.default_rng([config.seed, streams.SAMPLE, updates])
                windows = gather_windows(replay, *sample_indices(replay, rng, config.batch_size))
                updates += 1
                learner = fns.update(learner, windows, jnp.int32(updates))
        if after % config.target_period == 0:
            learner = fns.copy_target(learner)
        if overlap:
            next_obs, reward, terminated, truncated, info = env.recv()
        else:
            jax.block_until_ready(learner)
            next_obs, reward, terminated, truncated, info = env.step(actions)
        replay = write_row(replay, obs, actions, np.clip(reward, -1.0, 1.0), terminated,
                           ~prev_done)  # fmt: skip
        done = terminated | truncated
        return_sum += float(np.sum(info["episode_return"][done]))
        episodes += int(np.sum(done))
        obs, prev_done, frames = next_obs, done, after
    state = state.replace(
        learner=learner, replay=replay, key=key, frames=np.int32(frames),
        updates=np.int32(updates), return_sum=np.float32(return_sum), episodes=np.int32(episodes),
    )  # fmt: skip
    return state, obs, prev_done


def probe_replay(
    replay: HostReplay, seed: int, position: int, k: int, draws: int
) -> tuple[replay_lib.Replay, np.ndarray] | None:
    """``k * draws`` distinct valid transitions (fewer if the replay holds fewer) drawn on the host
    from (seed, position), as a [m, 1] device `replay_lib.Replay` for a probe's draws, with their
    flat indices (row * num_envs + lane, sorted); None when fewer than k are valid."""
    valid = valid_flat_indices(replay)
    if valid.size < k:
        return None
    rng = np.random.default_rng([seed, streams.PROBE, position])
    chosen = np.sort(rng.choice(valid, min(valid.size, k * draws), replace=False))
    batch = gather(replay, *np.divmod(chosen, replay.num_envs))
    device_replay = replay_lib.Replay(
        **{key: jnp.asarray(v)[:, None] for key, v in batch.items()},
        position=jnp.int32(0), filled=jnp.int32(chosen.size),
    )  # fmt: skip
    return device_replay, chosen


def make_host_probe(agent: Agent):
    """`probe(state) -> ProbeResult | None`: the gymnax loop's probe on host-drawn transitions
    (`probe_replay` at the run's frames); its draws pick k of them each, and the saved indices are
    mapped back to this replay's flat ones."""
    config = agent.config
    probe = make_value_probe(agent)

    def host_probe(state: HostTrainState) -> ProbeResult | None:
        drawn = probe_replay(state.replay, config.seed, int(state.frames), config.probe_k,
                             config.probe_draws)  # fmt: skip
        if drawn is None:
            return None
        device_replay, chosen = drawn
        lr = state.learner
        params = agent.effective_params(lr.params, lr.memory)
        view = ProbeView(params, lr.opt_state, state.key, int(state.frames))
        result = probe(lr, replay=device_replay, view=view)
        return (
            None if result is None else dataclasses.replace(result, indices=chosen[result.indices])
        )

    return host_probe


def _log_values(config, state: HostTrainState, frames: int, seconds: float):
    """The gymnax loop's metric names, plus ``charts/emulator_frames``; accumulators reset."""
    lr = state.learner
    loss_sum, loss_count, diverged, logs = jax.device_get(
        (lr.loss_sum, lr.loss_count, lr.diverged, lr.logs)
    )
    values = {"charts/epsilon": float(epsilon_at(config, jnp.int32(state.frames))), **log_line(
        return_sum=float(state.return_sum), episodes=int(state.episodes),
        losses={"td_loss": (loss_sum, loss_count)}, updates=int(state.updates),
        diverged=bool(diverged), steps=frames, seconds=seconds,
    ), **intervention_values(logs, loss_count),
        "charts/emulator_frames": emulator_frames(int(state.frames))}  # fmt: skip
    state = state.replace(
        learner=lr.replace(loss_sum=jnp.zeros_like(lr.loss_sum),
                           loss_count=jnp.zeros_like(lr.loss_count),
                           logs=jax.tree.map(jnp.zeros_like, lr.logs)),
        return_sum=np.float32(0.0), episodes=np.int32(0),
    )  # fmt: skip
    return values, state


def train_host(agent: Agent, run: RunDir, progress: bool = True, overlap: bool = True) -> Path:
    """Train from frame 0 into the (new) run directory ``run``."""
    with MetricsLogger(run.path) as logger:
        return _run(agent, run, init_state(agent), logger, progress, overlap)


def resume_host(agent: Agent, run: RunDir, progress: bool = True, overlap: bool = True) -> Path:
    """Continue ``run`` from its latest complete checkpoint (not bit-exact: see the module doc)."""
    state, frames = load_host_state(agent, run.checkpoints, run.kind)
    with MetricsLogger(run.path, resume_step=frames) as logger:
        return _run(agent, run, state, logger, progress, overlap)


def load_host_state(agent: Agent, directory: Path, kind: str) -> tuple[HostTrainState, int]:
    """The latest complete checkpoint in ``directory`` as a HostTrainState (frame 0 if none)."""
    path = latest_checkpoint(directory)
    if path is None:
        return init_state(agent), 0
    return load_host_checkpoint(agent, path, kind)[::-1]


def load_host_checkpoint(agent: Agent, path: Path, kind: str) -> tuple[int, HostTrainState]:
    """`(frames, state)` of the checkpoint at ``path``."""
    # The replay and counters come back as numpy (they are numpy in the target), read in place.
    return load_run_checkpoint(path, init_state(agent), kind=kind, check=refuse_stacked_replay)


def refuse_stacked_replay(path: Path, stored: dict) -> None:
    """Refuse, in one line, a checkpoint of tdgen 0.1.0's stacked Atari replay (replay.obs)."""
    if isinstance(stored.get("replay"), dict) and "obs" in stored["replay"]:
        raise CheckpointError(
            f"checkpoint {path} holds the stacked Atari replay of tdgen 0.1.0 (replay.obs, 4 frames "
            "per transition); this version stores each frame once: restart the run from frame 0"
        )


def _run(agent: Agent, run: RunDir, state: HostTrainState, logger, progress: bool, overlap: bool):
    config = agent.config
    frames = int(state.frames)
    if frames > 0:  # the pre-checkpoint newest row: its next observation is gone
        invalidate_newest(state.replay)
    env = agent.env.vector(config.num_envs, env_seed(config.seed, frames))
    fns = HostFunctions(agent)
    iterations = config.segment_frames // config.num_envs
    stepping = {"obs": env.reset(), "prev_done": np.zeros(config.num_envs, np.bool_)}

    def advance(state: HostTrainState) -> HostTrainState:
        state, stepping["obs"], stepping["prev_done"] = train_segment(
            agent, fns, state, env, stepping["obs"], stepping["prev_done"], iterations, overlap
        )
        return state

    try:
        events = []
        if config.probe_every:
            host_probe = make_host_probe(agent)
            events.append(probe_event(config.probe_every, lambda s, i: host_probe(s), run.probes))
        return run_segments(
            config,
            agent.algorithm.kind,
            run,
            state,
            logger,
            progress,
            advance=advance,
            diverged=lambda s: bool(s.learner.diverged),
            log_values=_log_values,
            events=events,
        )
    finally:
        env.close()
