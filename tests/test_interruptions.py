"""Faults while training: a checkpoint write that fails midway (disk full) keeps the previous one
and says so; SIGTERM checkpoints and exits 143, after which `tdgen resume` continues bit for bit."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tdgen import cli
from tdgen.runs import CheckpointWriteError, complete_checkpoints, load_checkpoint, save_checkpoint
from tdgen.runs import rundir as rundir_module
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics
from tdgen.sweep.launch import default_cache_dir

pytestmark = pytest.mark.slow

TINY = ["--num-envs", "4", "--buffer-size", "2000", "--batch-size", "16", "--encoder", "mlp",
        "--learning-starts", "100", "--train-every", "4", "--target-period", "200",
        "--no-progress"]  # fmt: skip


def _comparable(rows):
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_FIELDS} for row in rows]


def disk_full_after(monkeypatch, nbytes, armed=lambda: True):
    """Make `write_atomic` write ``nbytes`` of a file and then fail with ENOSPC, while ``armed()``."""
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            if not armed():
                return self.f.write(data)
            self.f.write(data[:nbytes])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(rundir_module.os, "fdopen", lambda *a, **k: Full(real(*a, **k)))


def test_a_checkpoint_write_failing_midway_keeps_the_previous_one(tmp_path, monkeypatch):
    state = {"frames": np.int32(100), "w": np.arange(1000.0)}
    save_checkpoint(tmp_path, 100, state, kind="toy")
    disk_full_after(monkeypatch, 300)
    with pytest.raises(CheckpointWriteError, match="step 100, is intact") as info:
        save_checkpoint(tmp_path, 200, {**state, "frames": np.int32(200)}, kind="toy")
    assert "No space left on device" in str(info.value)
    monkeypatch.undo()
    assert complete_checkpoints(tmp_path) == [100]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_000000000100.done",
                                                          "ckpt_000000000100.msgpack"]  # fmt: skip
    step, restored = load_checkpoint(tmp_path / "ckpt_000000000100.msgpack", state, kind="toy")
    assert step == 100 and np.array_equal(restored["w"], state["w"])


def test_disk_full_while_training_is_one_line_and_resume_continues(tmp_path, monkeypatch, capsys):
    flags = ["--frames", "800", "--log-every", "200", "--checkpoint-every", "400",
             "--probe-every", "0", *TINY]  # fmt: skip
    cli.main(["train", "dqn", *flags, "--out", str(tmp_path / "reference")])
    capsys.readouterr()
    run = tmp_path / "full"
    disk_full_after(monkeypatch, 500, armed=lambda: bool(complete_checkpoints(run / "checkpoints")))
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "dqn", *flags, "--out", str(run)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 1 and len(err.splitlines()) == 1, err
    assert "writing checkpoint" in err and "No space left on device" in err
    assert f"step 400, is intact: `tdgen resume {run}` continues from it" in err
    assert complete_checkpoints(run / "checkpoints") == [400]
    assert not [p for p in (run / "checkpoints").iterdir() if "800" in p.name]
    monkeypatch.undo()
    cli.main(["resume", str(run), "--no-progress"])
    assert _comparable(read_metrics(run)) == _comparable(read_metrics(tmp_path / "reference"))


def _tdgen(*args, env, wait=True):
    proc = subprocess.Popen([sys.executable, "-m", "tdgen.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    if wait:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    return proc


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seeds", [None, ["0", "1"]], ids=["run", "group"])
def test_sigterm_checkpoints_exits_143_and_resume_is_bit_for_bit(tmp_path, seeds):
    flags = ["--frames", "8000", "--log-every", "1000", "--checkpoint-every", "2000",
             "--probe-every", "4000", "--probe-k", "16", "--epsilon-decay-frames", "4000",
             *TINY, *(["--seeds", *seeds, "--lanes", "map"] if seeds else [])]  # fmt: skip
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(default_cache_dir()),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}  # fmt: skip
    members = [f"seed{s}" for s in seeds] if seeds else [""]
    _tdgen("train", "dqn", *flags, "--out", tmp_path / "reference", env=env)

    stopped = tmp_path / "stopped"
    proc = _tdgen("train", "dqn", *flags, "--out", stopped, env=env, wait=False)
    deadline = time.monotonic() + 240
    while not complete_checkpoints(stopped / members[-1] / "checkpoints"):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "tdgen: stopped by SIGTERM at frame" in err
    assert f"`tdgen resume {stopped}` continues" in err
    ends = [complete_checkpoints(stopped / m / "checkpoints")[-1] for m in members]
    assert len(set(ends)) == 1 and ends[0] < 8_000, ends  # every run of a group: the same frame
    assert f"at frame {ends[0]} " in err

    _tdgen("resume", stopped, "--no-progress", env=env)
    for member in members:
        ref, got = tmp_path / "reference" / member, stopped / member
        assert _comparable(read_metrics(got)) == _comparable(read_metrics(ref))
        assert [r["step"] for r in read_metrics(got)] == list(range(1000, 8_001, 1000))
        for probe in sorted((ref / "probes").iterdir()):
            with np.load(probe) as a, np.load(got / "probes" / probe.name) as b:
                np.testing.assert_array_equal(a["update_matrix"], b["update_matrix"])


def test_the_sigterm_handler_is_only_installed_while_training():
    from tdgen.runs.loop import sigterm_received

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_received() as received:
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert received.is_set()
    assert signal.getsignal(signal.SIGTERM) is before
