"""Run PPO or DAAC in run directories: one run, or a group of seeds as one vmapped program.

On gymnax (MinAtar) training advances in jitted segments and resumes bit for bit; on envpool
ProcGen rollouts are stepped on the host (`tdgen.agents.actor_critic.host`). Both share the host
event loop of every agent (`tdgen.runs.loop`): log line, evaluation on training and held-out
levels (`charts/train_return`, `charts/test_return`), update-rank probes of actor and critic,
checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tdgen.agents.actor_critic.agent import ACState, ActorCriticAgent, eval_key, reset_accumulators
from tdgen.agents.actor_critic.config import PPOConfig
from tdgen.agents.actor_critic.probe import make_actor_critic_probe
from tdgen.agents.train import DEFAULT_LANES, group_start, load_run_state, start_state
from tdgen.runs import (
    MetricsLogger,
    RunDir,
)
from tdgen.runs.loop import Event, Group, log_line, probe_event, run_segments, stacked_member
from tdgen.runs.metrics import group_loggers


def train(agent: ActorCriticAgent, run: RunDir, progress: bool = True) -> Path:
    """Train PPO or DAAC from frame 0 into the new run directory ``run``."""
    with MetricsLogger(run.path) as logger:
        return _run(agent, run, agent.init(), logger, progress)


def resume(agent: ActorCriticAgent, run: RunDir, frames: int | None, progress: bool = True):
    """Continue ``run`` from its checkpoint of ``frames`` (None: the newest; 0: the start)."""
    state, frames = start_state(agent, run, frames)
    with MetricsLogger(run.path, resume_step=frames) as logger:
        return _run(agent, run, state, logger, progress)


def train_group(
    agent: ActorCriticAgent,
    runs: Sequence[RunDir],
    starts: Sequence[int],
    progress: bool,
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train the runs of one group (configs that differ only by seed) as one program, each from
    its checkpoint of ``starts[i]`` (all equal; 0: the start); ``lanes``: `Train.jit_group`. Only
    gymnax agents: `tdgen.agents.launch` trains host-stepped seeds one by one."""
    config = agent.config
    init, segment = agent.make_train().jit_group(lanes)
    state = group_start(agent, init, runs, starts[0])
    latest: dict[str, Any] = {}

    def advance(state):
        state, latest["rollout"] = segment(state)
        return state

    jit_evaluate = jax.jit(agent.evaluate)
    events: list[Event] = []
    if config.eval_every:
        events.append(
            Event(
                config.eval_every,
                _timed(
                    lambda s, i: _plain(jit_evaluate(s.params, eval_key(s), s.memory)),
                    "perf/eval_seconds",
                ),
            )
        )
    if config.probe_every:
        probe = make_actor_critic_probe(agent)
        events.append(probe_event(
            config.probe_every, lambda s, i: probe(s, stacked_member(latest["rollout"], i)),
            [r.probes for r in runs],
        ))  # fmt: skip
    with group_loggers([r.path for r in runs], starts[0] or None) as loggers:
        return run_segments(
            config, config.kind, runs, state, loggers, progress, advance=advance,
            diverged=lambda s: np.asarray(s.diverged), log_values=log_values, events=events,
            log_every=config.log_period,
            group=Group(len(runs), stacked_member, reset_accumulators),
        )  # fmt: skip


def _run(
    agent: ActorCriticAgent,
    run: RunDir,
    state: ACState,
    logger,
    progress: bool,
    lanes: str = DEFAULT_LANES,
) -> Path:
    config = agent.config
    iterations = config.segment_frames // config.batch_frames
    latest: dict[str, Any] = {}  # the last rollout of the last segment, for the probes
    events: list[Event] = []
    env = None
    if agent.host_stepped:
        from tdgen.agents.actor_critic.host import (
            HostFunctions,
            env_seed,
            host_evaluate,
            host_segment,
        )

        fns = HostFunctions(agent)
        env = agent.env.vector(config.num_envs, env_seed(config.seed, int(state.frames)))
        latest["obs"] = env.reset()

        def advance(state):
            state, latest["obs"], latest["rollout"] = host_segment(
                agent, fns, state, env, latest["obs"], iterations
            )
            return state

        def evaluate(state, index):
            return host_evaluate(agent, fns, state)
    else:
        segment = agent.jit_segment()
        jit_evaluate = jax.jit(agent.evaluate)

        def advance(state):
            state, latest["rollout"] = segment(state)
            return state

        def evaluate(state, index):
            return _plain(jit_evaluate(state.params, eval_key(state), state.memory))

    if config.eval_every:
        events.append(Event(config.eval_every, _timed(evaluate, "perf/eval_seconds")))
    if config.probe_every:
        probe = make_actor_critic_probe(agent)
        events.append(
            probe_event(config.probe_every, lambda s, i: probe(s, latest["rollout"]), run.probes)
        )
    try:
        return run_segments(
            config, config.kind, run, state, logger, progress, advance=advance,
            diverged=lambda s: bool(s.diverged), log_values=log_values, events=events,
            log_every=config.log_period,
        )  # fmt: skip
    finally:
        if env is not None:
            env.close()


def _plain(values: dict[str, jax.Array]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}


def _timed(fn, name: str):
    def run(state, index):
        tick = time.perf_counter()
        values = fn(state, index)
        return {**values, name: time.perf_counter() - tick}

    return run


def log_values(config: PPOConfig, state: ACState, frames: int, seconds: float):
    """The metrics line of the interval since the last one, and the state with accumulators reset.

    CleanRL's names: losses/policy_loss, losses/value_loss, losses/entropy, losses/approx_kl,
    losses/clipfrac, and losses/loss for PPO's joint loss; charts/SPS in frames per second of
    this run (in a group, each run's); interventions/[<network>/]<name>/<what>: what the
    interventions' events logged, summed over the updates since the last line."""
    return_sum, episodes, sums, counts, diverged, logs = jax.device_get(
        (state.return_sum, state.episodes, state.loss_sums, state.loss_counts, state.diverged,
         state.logs)
    )  # fmt: skip
    values = log_line(
        return_sum=return_sum, episodes=episodes,
        losses={name: (total, counts[name]) for name, total in sums.items()},
        updates=int(state.iterations), diverged=bool(diverged), steps=frames, seconds=seconds,
    )  # fmt: skip
    values.update({name: np.asarray(value).item() for name, value in logs.items()})
    return values, reset_accumulators(state)


__all__ = ["load_run_state", "log_values", "resume", "start_state", "train", "train_group"]
