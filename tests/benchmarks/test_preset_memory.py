"""`tdgen preset-memory` on small configs of each path (gymnax value-based, Atari host,
actor-critic): parameter and buffer bytes exact (against the agents' own abstract states), the
compiled step's peak holding at least its arguments."""

import json

import jax
import numpy as np
import pytest

from tdgen.agents import build_agent
from tdgen.agents.value_based.frame_replay import replay_bytes
from tdgen.bench import preset_memory
from tdgen.bench.preset_memory import GIB, actor_critic, tree_bytes, value_based
from tdgen.sweep.grid import agent_config

pytestmark = pytest.mark.slow  # compiles three training steps (no training)


def param_count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def test_gymnax_value_based_row_counts_parameters_and_device_replay_exactly():
    config = agent_config("dqn", "minatar", "minatar/breakout", 0, {"buffer_size": 1000})
    row = value_based("dqn", config)
    state = jax.eval_shape(build_agent("dqn", config)._init, jax.random.PRNGKey(0))
    assert row["params"] == param_count(state.params)
    assert row["device_replay_gib"] == tree_bytes(state.replay) / GIB
    # the step's arguments are the whole train state, replay included
    assert row["device_peak_gib"] >= tree_bytes(state) / GIB
    assert set(row) == {"params", "device_replay_gib", "device_peak_gib"}


def test_atari_host_row_compiles_the_host_update_and_counts_frames_once():
    config = agent_config("dqn", "nature", "atari/Pong", 0, {"buffer_size": 1000, "batch_size": 4})
    row = value_based("dqn", config)
    agent = build_agent("dqn", config)
    params = jax.eval_shape(agent.init_params, jax.random.PRNGKey(0))
    assert row["params"] == param_count(params)
    shape = agent.env.observation_shape
    assert row["host_replay_gib"] == replay_bytes(1000, config.num_envs, shape) / GIB
    assert row["device_peak_gib"] >= 3 * 4 * row["params"] / GIB  # params, target, Adam moments


def test_actor_critic_row_counts_the_rollout_exactly_and_main_writes_a_record(
    monkeypatch, tmp_path, capsys
):
    small = {"num_envs": 4, "num_steps": 8, "probe_k": 16, "num_minibatches": 2}
    config = agent_config("ppo", "minatar", "minatar/breakout", 0, small)
    row = actor_critic(config)
    agent = build_agent("ppo", config)
    obs_bytes = (
        np.prod(agent.env.observation_shape) * np.dtype(agent.env.observation_dtype).itemsize
    )
    per_step = obs_bytes + 4 * 4 + 1  # obs, action, logprob, value, reward (4 bytes), done (1)
    assert row["rollout_gib"] == 8 * 4 * per_step / GIB
    assert row["params"] == param_count(jax.eval_shape(agent._init, jax.random.PRNGKey(0)).params)

    monkeypatch.setattr(preset_memory, "measure", lambda: [("ppo minatar/breakout", row)])
    preset_memory.main(tmp_path)
    printed = capsys.readouterr().out
    assert f"| ppo minatar/breakout | {row['params']:,} |" in printed
    (path,) = (tmp_path / "preset_memory").glob("*.json")
    (table,) = json.loads(path.read_text())["tables"]
    assert table["rows"][0][:2] == ["ppo minatar/breakout", row["params"]]
    assert table["rows"][0][3] == pytest.approx(row["rollout_gib"])
    assert table["rows"][0][4] == 0.0  # no host replay
