"""Checkpoints of the full training state, bit-exact resume after SIGKILL, refusal of bad ones."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tdgen.agents import C51Config, build_agent, resume, train
from tdgen.runs import CheckpointError, RunDir, latest_checkpoint, load_checkpoint, save_checkpoint
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics
from tdgen.sweep.launch import default_cache_dir

pytestmark = pytest.mark.slow


def test_checkpoint_round_trip_of_the_full_state(make_config, tmp_path):
    agent = build_agent("dqn", make_config())
    state = jax.jit(lambda s: agent.segment(s, 60))(agent.init())
    path = save_checkpoint(tmp_path, int(state.frames), state, kind="dqn")
    frames, restored = load_checkpoint(path, agent.init(seed=123), kind="dqn")
    assert frames == 240
    leaves, restored_leaves = jax.tree.leaves(state), jax.tree.leaves(restored)
    assert jax.tree.structure(state) == jax.tree.structure(restored)
    for a, b in zip(leaves, restored_leaves, strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
    assert np.asarray(restored.replay.obs).dtype == np.uint8


_SCRIPT = """
import json, sys
from tdgen.agents import DQNConfig, resume, train
mode, out, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if mode == "train":
    train("dqn", DQNConfig(**config), out, progress=True)
else:
    resume(out, progress=False)
"""


def _run(mode, out, config, env, wait=True):
    args = [sys.executable, "-c", _SCRIPT, mode, str(out), json.dumps(config)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
    return proc


def _comparable(rows):
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_FIELDS} for row in rows]


@pytest.mark.timeout(600)
def test_sigkill_then_resume_gives_exactly_the_uninterrupted_metrics(make_config, tmp_path):
    config = make_config(
        frames=24_000, log_every=2_000, checkpoint_every=6_000, probe_every=6_000,
        epsilon_decay_frames=8_000, learning_starts=500, target_period=1_000,
    ).to_dict()  # fmt: skip
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(default_cache_dir()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    reference = tmp_path / "reference"
    _run("train", reference, config, env)

    killed = tmp_path / "killed"
    proc = _run("train", killed, config, env, wait=False)
    deadline = time.monotonic() + 200
    while latest_checkpoint(killed / "checkpoints") is None:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close(), proc.stderr.close()
    interrupted_at = int(latest_checkpoint(killed / "checkpoints").stem.split("_")[1])
    assert interrupted_at < config["frames"], "the run finished before it was killed"

    _run("resume", killed, config, env)
    expected, got = read_metrics(reference), read_metrics(killed)
    assert [row["step"] for row in got] == list(range(2_000, 24_001, 2_000))
    assert _comparable(got) == _comparable(expected)
    assert any("interference/update_rank" in row for row in got)
    for probe in sorted((reference / "probes").iterdir()):
        with np.load(probe) as a, np.load(killed / "probes" / probe.name) as b:
            np.testing.assert_array_equal(a["update_matrix"], b["update_matrix"])


@pytest.fixture(scope="module")
def finished_dqn_run(tmp_path_factory):
    from tdgen.agents import DQNConfig

    config = DQNConfig.minatar(
        frames=400, num_envs=4, buffer_size=400, batch_size=8, learning_starts=40,
        target_period=40, log_every=100, probe_every=0, checkpoint_every=200, encoder="mlp",
    )  # fmt: skip
    return train("dqn", config, tmp_path_factory.mktemp("runs") / "dqn", progress=False)


def _snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()
            and "tb" not in p.parts}  # fmt: skip


def test_a_dqn_checkpoint_is_refused_by_a_c51_run(finished_dqn_run, tmp_path):
    c51_run = RunDir.create(tmp_path / "c51", "c51", C51Config.minatar(encoder="mlp").to_dict())
    source = latest_checkpoint(finished_dqn_run / "checkpoints")
    for suffix in (".msgpack", ".done"):
        shutil.copy(
            source.with_suffix(suffix), c51_run.checkpoints / source.with_suffix(suffix).name
        )
    before = _snapshot(c51_run.path)
    with pytest.raises(CheckpointError, match="holds a 'dqn' state, not 'c51'"):
        resume(c51_run.path, progress=False)
    assert _snapshot(c51_run.path) == before


def test_a_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(finished_dqn_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished_dqn_run, run)
    latest = latest_checkpoint(run / "checkpoints")
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    latest.write_bytes(bytes(data))
    before = _snapshot(run)
    with pytest.raises(CheckpointError, match="corrupt"):
        resume(run, progress=False)
    assert _snapshot(run) == before


def test_training_refuses_an_existing_run(finished_dqn_run):
    from tdgen.agents import DQNConfig

    with pytest.raises(ValueError, match="already holds a run"):
        train("dqn", DQNConfig.minatar(encoder="mlp"), finished_dqn_run, progress=False)


def test_a_diverging_run_stops_cleanly_and_says_so(make_config, tmp_path):
    config = make_config(lr=1e30, frames=4_000, probe_every=0, checkpoint_every=0)
    run = train("dqn", config, tmp_path / "diverged", progress=False)
    rows = read_metrics(run)
    assert rows[-1].get("charts/diverged") == 1
    assert rows[-1]["step"] < config.frames
    assert latest_checkpoint(run / "checkpoints") is not None
    resume(run, progress=False)  # a finished (diverged) run resumes to nothing new
    assert read_metrics(run) == rows
