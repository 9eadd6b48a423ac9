"""The host-stepping loop on envpool Atari: end to end, replay semantics, overlap, resume."""

import dataclasses

import jax
import numpy as np
import pytest

pytest.importorskip("envpool")

from tdgen.agents import DQNConfig, build_agent, resume  # noqa: E402
from tdgen.agents.value_based import host as hl  # noqa: E402
from tdgen.runs import RunDir, latest_checkpoint, save_checkpoint  # noqa: E402
from tdgen.runs.metrics import read_metrics  # noqa: E402

pytestmark = pytest.mark.slow

GYMNAX_METRICS = {"charts/epsilon", "charts/episodic_return", "charts/episodes", "losses/td_loss",
                  "charts/updates", "charts/SPS", "interference/update_rank",
                  "interference/update_rank_random", "perf/probe_seconds"}  # fmt: skip


def _config(**overrides):
    values = dict(
        env="atari/Breakout", frames=480, num_envs=4, buffer_size=400, batch_size=8,
        learning_starts=80, target_period=80, epsilon_decay_frames=200, log_every=80,
        probe_every=240, probe_k=16, checkpoint_every=240, encoder="mlp",
    )  # fmt: skip
    return DQNConfig.nature(**{**values, **overrides})


def _agent(config, episode_steps=30):
    """The agent with short episodes (a time limit), so a few hundred frames finish several."""
    agent = build_agent("dqn", config)
    return dataclasses.replace(
        agent, env=dataclasses.replace(agent.env, max_episode_steps=episode_steps)
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    config = _config()
    run = RunDir.create(tmp_path_factory.mktemp("atari") / "dqn", "dqn", config.to_dict())
    hl.train_host(_agent(config), run, progress=False)
    return run


def test_a_few_hundred_frames_end_to_end_with_probes_and_checkpoints(finished_run):
    rows = read_metrics(finished_run.path)
    assert [r["step"] for r in rows] == list(range(80, 481, 80))
    names = set().union(*rows)
    assert names >= GYMNAX_METRICS and "charts/emulator_frames" in names
    assert rows[-1]["charts/emulator_frames"] == 4 * 480
    assert rows[-1]["charts/updates"] == (480 - 80) // 4
    assert all(np.isfinite(r["losses/td_loss"]) for r in rows[1:])
    assert sorted(p.name for p in finished_run.probes.iterdir()) == [
        "step_000000000240.npz", "step_000000000480.npz"]  # fmt: skip
    with np.load(finished_run.probes / "step_000000000480.npz") as probe:
        assert probe["update_matrix"].shape == (1, 16, 16)
        assert np.unique(probe["sample_indices"]).size == 16
    assert latest_checkpoint(finished_run.checkpoints).name == "ckpt_000000000480.msgpack"


def test_resume_restores_learner_replay_and_counters_exactly(finished_run, tmp_path):
    agent = _agent(_config())
    state, frames = hl.load_host_state(agent, finished_run.checkpoints, "dqn")
    assert frames == 480 and int(state.frames) == 480 and int(state.updates) == 100
    frames_ring = state.replay.frames  # one frame per row and lane, 3 rows of stack history
    assert isinstance(frames_ring, np.ndarray) and frames_ring.dtype == np.uint8
    assert frames_ring.shape == (103, 4, 84, 84) and frames_ring.flags.writeable
    # Round trip through a fresh checkpoint: every leaf comes back equal, dtypes kept.
    save_checkpoint(tmp_path, frames, state, kind="dqn")
    again, _ = hl.load_host_state(agent, tmp_path, "dqn")
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(again), strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)


def test_resume_after_losing_the_last_checkpoint_finishes_the_run(finished_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished_run.path, copy)
    for suffix in (".msgpack", ".done"):  # as if killed between frames 240 and 480
        (copy / "checkpoints" / f"ckpt_000000000480{suffix}").unlink()
    resume(copy, progress=False)  # launch dispatches atari/ runs to the host loop
    rows = read_metrics(copy)
    assert [r["step"] for r in rows] == list(range(80, 481, 80))
    assert rows[-1]["charts/updates"] == 100
    # Lines up to the checkpoint are kept; later ones come from the resumed run, whose
    # environment restarted from a reset (and here without the short time limit): not bit-exact.
    assert rows[:3] == read_metrics(finished_run.path)[:3]


def test_overlap_changes_timing_only_and_reset_steps_are_never_sampled():
    config = _config(learning_starts=40)
    agent = _agent(config, episode_steps=12)
    fns = hl.HostFunctions(agent)
    results = []
    for overlap in (True, False):
        env = agent.env.vector(config.num_envs, seed=7)
        state, obs = hl.init_state(agent), env.reset()
        done = np.zeros(config.num_envs, np.bool_)
        state, obs, done = hl.train_segment(agent, fns, state, env, obs, done, 30, overlap)
        env.close()
        results.append(state)
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    replay = results[0].replay
    # 30 steps, episodes of 12 steps plus one auto-reset step: resets at steps 12 and 25.
    assert int(results[0].episodes) == 2 * config.num_envs
    np.testing.assert_array_equal(np.flatnonzero(~replay.valid[:30, 0]), [12, 25])
    rows, cols = hl.sample_indices(replay, np.random.default_rng(0), 5_000)
    assert replay.valid[rows, cols].all() and rows.max() < 29  # never the newest row
    batch = hl.gather(replay, rows[:5], cols[:5])
    np.testing.assert_array_equal(
        batch["next_obs"], hl.gather(replay, rows[:5] + 1, cols[:5])["obs"]
    )
    # The stacks chain: the next observation's older frames are this one's newer frames.
    np.testing.assert_array_equal(batch["next_obs"][..., :3], batch["obs"][..., 1:])
