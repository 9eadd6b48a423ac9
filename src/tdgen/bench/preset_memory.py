"""Memory each `paper` preset needs on an accelerator (and on the host), without running it.

For every agent run of the paper-scale experiments (Figure 3: DQN/C51 Tandem on Atari; Figure 4:
PPO/DAAC on ProcGen) and the MinAtar presets, the jitted training step is compiled for the CPU
from abstract shapes (`jax.eval_shape`, nothing allocated) and XLA's `memory_analysis()` gives
its argument, output, aliased (donated) and temporary bytes. Device peak ~= arguments + outputs
- aliased + temporaries. XLA:GPU lays out and fuses differently, so read these as estimates
within tens of percent; parameter, optimiser and buffer bytes are exact. The update-rank probe
is not included (docs/memory-and-gpu.md).

    tdgen preset-memory [--results DIR]
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

GIB = 2**30


def tree_bytes(tree) -> int:
    """Bytes of every array of ``tree`` (arrays or shape structs)."""
    return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def compiled_peak(fn, *args) -> dict[str, int]:
    """XLA's memory analysis of ``fn`` compiled for ``args``: arguments, temporaries, peak bytes."""
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    a, o = analysis.argument_size_in_bytes, analysis.output_size_in_bytes
    alias, temp = analysis.alias_size_in_bytes, analysis.temp_size_in_bytes
    return {"arguments": a, "temporaries": temp, "peak": a + o - alias + temp}


def value_based(agent_name: str, config) -> dict[str, float]:
    """Parameters, device peak of one training step and replay bytes of a value-based run."""
    from tdgen.agents import build_agent

    agent = build_agent(agent_name, config)
    key = jax.random.PRNGKey(0)
    params = jax.eval_shape(agent.init_params, key)
    row: dict[str, float] = {"params": sum(np.prod(x.shape) for x in jax.tree.leaves(params))}
    if config.env.startswith("atari/"):
        from tdgen.agents.value_based.frame_replay import replay_bytes
        from tdgen.agents.value_based.host import (
            HostFunctions,
            gather_windows,
            init_host_replay,
            initial_learner,
        )  # fmt: skip

        learner = jax.eval_shape(lambda k: initial_learner(agent, k), key)
        small = init_host_replay(8, config.num_envs, agent.env.observation_shape)
        example = gather_windows(small, np.zeros(1, np.int64), np.zeros(1, np.int64))
        batch = {k: jax.ShapeDtypeStruct((config.batch_size, *np.shape(v)[1:]), np.asarray(v).dtype)
                 for k, v in example.items()}  # fmt: skip
        updates = jax.ShapeDtypeStruct((), jnp.int32)
        peak = compiled_peak(HostFunctions(agent).update, learner, batch, updates)
        shape = agent.env.observation_shape  # frames stored once (frame_replay)
        row["host_replay_gib"] = replay_bytes(config.buffer_size, config.num_envs, shape) / GIB
    else:
        state = jax.eval_shape(agent._init, key)
        peak = compiled_peak(lambda s: agent.segment(s, 1), state)
        row["device_replay_gib"] = tree_bytes(state.replay) / GIB
    row["device_peak_gib"] = peak["peak"] / GIB
    return row


def actor_critic(config) -> dict[str, float]:
    """Parameters, device peak of one learning step and rollout bytes of an actor-critic run."""
    from tdgen.agents import build_agent
    from tdgen.agents.actor_critic.agent import Rollout

    agent = build_agent(config.kind, config)
    state = jax.eval_shape(agent._init, jax.random.PRNGKey(0))
    t, n = config.num_steps, config.num_envs
    f32 = jnp.float32
    rollout = Rollout(
        obs=jax.ShapeDtypeStruct((t, n, *agent.env.observation_shape), agent.env.observation_dtype),
        action=jax.ShapeDtypeStruct((t, n), jnp.int32), logprob=jax.ShapeDtypeStruct((t, n), f32),
        value=jax.ShapeDtypeStruct((t, n), f32), reward=jax.ShapeDtypeStruct((t, n), f32),
        done=jax.ShapeDtypeStruct((t, n), jnp.bool_),
    )  # fmt: skip
    last_value = jax.ShapeDtypeStruct((n,), f32)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    peak = compiled_peak(agent.learn, state, rollout, last_value, key)
    return {
        "params": sum(np.prod(x.shape) for x in jax.tree.leaves(state.params)),
        "rollout_gib": tree_bytes(rollout) / GIB,
        "device_peak_gib": peak["peak"] / GIB,
    }


def measure() -> list[tuple[str, dict[str, float]]]:
    """(run, its figures) for every paper-scale agent run and the MinAtar presets."""
    from tdgen.experiments import fig3_value_update_rank as fig3
    from tdgen.experiments import fig4_actor_critic_update_rank as fig4
    from tdgen.sweep.grid import agent_config

    rows = []
    fig3_paper = fig3.Config.paper()
    for agent in ("dqn", "c51"):
        cfg = fig3.agent_config(fig3_paper, agent, "atari/Pong", "dense", 0)
        rows.append((f"{agent} tandem atari/Pong (fig3/8/12 paper)", value_based(agent, cfg)))
    fig4_paper = fig4.Config.paper()
    for agent in ("ppo", "daac"):
        cfg = fig4.agent_config(fig4_paper, agent, "procgen/bigfish", 0)
        rows.append((f"{agent} procgen procgen/bigfish (fig4 paper)", actor_critic(cfg)))
        other = cfg.replace(conv_impl="im2col")  # the convolution lowering only: the same numbers
        rows.append((f"{agent} procgen, conv_impl=im2col", actor_critic(other)))
    for agent in ("dqn", "c51"):
        cfg = agent_config(agent, "minatar", "minatar/space_invaders", 0, {})
        rows.append((f"{agent} minatar minatar/space_invaders", value_based(agent, cfg)))
        cfg = agent_config(agent, "tandem", "minatar/space_invaders", 0, {})
        rows.append((f"{agent} tandem minatar/space_invaders", value_based(agent, cfg)))
    for agent in ("ppo", "daac"):
        cfg = agent_config(agent, "minatar", "minatar/space_invaders", 0, {})
        rows.append((f"{agent} minatar minatar/space_invaders", actor_critic(cfg)))
    return rows


COLUMNS = (("run", None), ("parameters", None), ("device peak (step)", "GiB"),
           ("replay / rollout", "GiB"), ("host replay", "GiB"))  # fmt: skip


def cells(name: str, r: dict[str, float]) -> list:
    """The row of ``name`` under COLUMNS."""
    buffer = r.get("device_replay_gib", r.get("rollout_gib", 0.0))
    return [name, int(r["params"]), r["device_peak_gib"], buffer, r.get("host_replay_gib", 0.0)]


def main(results_dir: Path | None = None) -> None:
    """Print the table; with ``results_dir``, also write the benchmark record ``preset_memory``."""
    from tdgen.bench.record import Record, column, markdown_table

    rec = Record("preset_memory")
    table = rec.table("presets", "each training step compiled from abstract shapes",
                      [column(n, u) for n, u in COLUMNS])  # fmt: skip
    for name, r in measure():
        table.add(*cells(name, r))
    print(markdown_table(vars(table)))
    if results_dir is not None:
        rec.write(results_dir)
