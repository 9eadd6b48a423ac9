"""Run PPO or DAAC in a run directory: `train_actor_critic(config, out)`, `resume_actor_critic(run)`.

On gymnax (MinAtar) training advances in jitted segments and resumes bit for bit; on envpool
ProcGen rollouts are stepped on the host (`tdgen.agents.actor_critic_host`). Both share the host
event loop of every agent (`tdgen.agents.events`): log line, evaluation on training and held-out
levels (`charts/train_return`, `charts/test_return`), update-rank probes of actor and critic,
checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from tdgen.agents.actor_critic import ACState, ActorCriticAgent, eval_key
from tdgen.agents.actor_critic_config import PPOConfig
from tdgen.agents.actor_critic_probes import make_actor_critic_probe
from tdgen.agents.events import Event, probe_event, run_segments
from tdgen.runs import CheckpointError, MetricsLogger, RunDir, latest_checkpoint, load_checkpoint


def train_actor_critic(config: PPOConfig, out: Path, progress: bool = True) -> Path:
    """Train PPO or DAAC (by the config's class) into a new run directory ``out``."""
    agent = ActorCriticAgent.build(config)  # unknown environments fail before anything is written
    run = RunDir.create(Path(out), config.kind, config.to_dict())
    with MetricsLogger(run.path) as logger:
        return _run(agent, run, agent.init(), logger, progress)


def resume_actor_critic(run: RunDir, config: PPOConfig, progress: bool = True) -> Path:
    """Continue ``run`` from its latest complete checkpoint (or from the start)."""
    agent = ActorCriticAgent.build(config)
    state, frames = agent.init(), 0
    path = latest_checkpoint(run.checkpoints)
    if path is not None:
        frames, state = load_actor_critic_state(agent, run, path)
    with MetricsLogger(run.path, resume_step=frames) as logger:
        return _run(agent, run, state, logger, progress)


def load_actor_critic_state(agent: ActorCriticAgent, run: RunDir, path: Path):
    """`(frames, state)` of the checkpoint at ``path``, checked against its name and kind."""
    frames, state = load_checkpoint(path, agent.init(), kind=run.kind)
    if int(state.frames) != frames:
        raise CheckpointError(
            f"checkpoint {path} is named for frame {frames} but holds frame {int(state.frames)}"
        )
    return frames, state


def _run(agent: ActorCriticAgent, run: RunDir, state: ACState, logger, progress: bool) -> Path:
    config = agent.config
    iterations = config.segment_frames // config.batch_frames
    latest: dict[str, Any] = {}  # the last rollout of the last segment, for the probes
    events: list[Event] = []
    env = None
    if agent.host_stepped:
        from tdgen.agents.actor_critic_host import (
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

        def evaluate(state):
            return host_evaluate(agent, fns, state)
    else:
        segment = agent.jit_segment()
        jit_evaluate = jax.jit(agent.evaluate)

        def advance(state):
            state, latest["rollout"] = segment(state)
            return state

        def evaluate(state):
            return {k: float(v) for k, v in jit_evaluate(state.params, eval_key(state)).items()}

    if config.eval_every:
        events.append(Event(config.eval_every, _timed(evaluate, "perf/eval_seconds")))
    if config.probe_every:
        probe = make_actor_critic_probe(agent)
        events.append(
            probe_event(config.probe_every, lambda s: probe(s, latest["rollout"]), run.probes)
        )
    try:
        return run_segments(
            config, config.kind, run, state, logger, progress, advance=advance,
            diverged=lambda s: bool(s.diverged), log_values=_log_values, events=events,
            log_every=config.log_period,
        )  # fmt: skip
    finally:
        if env is not None:
            env.close()


def _timed(fn, name: str):
    def run(state):
        tick = time.perf_counter()
        values = fn(state)
        return {**values, name: time.perf_counter() - tick}

    return run


def _log_values(config: PPOConfig, state: ACState, frames: int, seconds: float):
    """The metrics line of the interval since the last one, and the state with accumulators reset."""
    return_sum, episodes, sums, counts, diverged = jax.device_get(
        (state.return_sum, state.episodes, state.loss_sums, state.loss_counts, state.diverged)
    )
    values: dict[str, Any] = {}
    if episodes > 0:
        values["charts/episodic_return"] = float(return_sum / episodes)
        values["charts/episodes"] = int(episodes)
    for name, total in sums.items():
        if counts[name] > 0:
            values[f"losses/{name}"] = float(total / counts[name])
    values["charts/updates"] = int(state.iterations)
    if diverged:
        values["charts/diverged"] = 1
    values["charts/SPS"] = frames / seconds if seconds > 0 else 0.0
    reset = state.replace(
        return_sum=jnp.zeros_like(state.return_sum),
        episodes=jnp.zeros_like(state.episodes),
        loss_sums=jax.tree.map(jnp.zeros_like, state.loss_sums),
        loss_counts=jax.tree.map(jnp.zeros_like, state.loss_counts),
    )
    return values, reset


__all__ = ["load_actor_critic_state", "resume_actor_critic", "train_actor_critic"]
