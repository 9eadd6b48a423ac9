"""How the `tdgen` command reports each kind of error (`tdgen.cli.main`).

A user's mistake (an InputError: an option, a config field, a file) is one line and exit 2; a fault
of the environment (disk full, permission denied, out of memory) is one line naming the fault and
exit 1; anything else is a bug in tdgen: its traceback, exit 1 and a line asking for a report.
Errors are injected by replacing `tdgen.cli.run` (or a function a command calls), so nothing
trains or compiles.
"""

import errno
import os
import subprocess
import sys

import pytest

from tdgen import cli
from tdgen.errors import InputError, InsufficientMemoryError, make_dir

REPORT = "tdgen: internal error (a bug in tdgen): please report it with the traceback above at "


def raising(error: BaseException):
    """A stand-in for `tdgen.cli.run` that raises ``error``."""

    def run(args):
        raise error

    return run


def outcome(capsys, args=("list",)) -> tuple[int, str]:
    """The exit status of `tdgen ARGS` and what it wrote on stderr."""
    with pytest.raises(SystemExit) as info:
        cli.main(list(args))
    captured = capsys.readouterr()
    assert not captured.out, captured.out
    return info.value.code, captured.err


def test_an_internal_value_error_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    import tdgen.experiments

    def experiment_names():  # a bug inside a command, not a user's mistake
        raise ValueError("an invariant of tdgen broke")

    monkeypatch.setattr(tdgen.experiments, "experiment_names", experiment_names)
    status, err = outcome(capsys, ["list"])
    assert status == 1, err
    assert "Traceback (most recent call last)" in err and "in experiment_names" in err
    assert "ValueError: an invariant of tdgen broke" in err
    assert err.strip().splitlines()[-1].startswith(REPORT), err
    assert "tdgen: error:" not in err


def test_an_installed_command_shows_a_bug_with_its_traceback():
    code = ("import tdgen.cli as cli\n"
            "def run(args):\n    raise KeyError('internal')\n"
            "cli.run = run\ncli.main(['list'])\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TDGEN_DEBUG"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):", done.stderr
    assert lines[-2] == "KeyError: 'internal'" and lines[-1].startswith(REPORT), done.stderr


def test_a_users_mistake_is_one_line_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(cli, "run", raising(InputError("--eps must be a fraction, got 2.0")))
    status, err = outcome(capsys)
    assert status == 2
    assert err == "tdgen: error: --eps must be a fraction, got 2.0\n"


def test_a_missing_optional_package_is_bad_input(monkeypatch, capsys):
    from tdgen._extras import MissingExtraError

    error = MissingExtraError("Atari needs envpool: pip install 'tdgen[atari]'", name="envpool")
    assert isinstance(error, InputError) and isinstance(error, ImportError)
    monkeypatch.setattr(cli, "run", raising(error))
    assert outcome(capsys) == (2, "tdgen: error: Atari needs envpool: pip install 'tdgen[atari]'\n")


@pytest.mark.parametrize(
    ("error", "fault"),
    [(OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.jsonl"), "disk full"),
     (PermissionError(errno.EACCES, "Permission denied", "runs/x"), "permission denied"),
     (OSError(errno.EPERM, "Operation not permitted"), "permission denied"),
     (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded"),
     (OSError(errno.EROFS, "Read-only file system"), "read-only file system")],
    ids=["disk-full", "permission", "not-permitted", "quota", "read-only"],
)  # fmt: skip
def test_a_fault_of_the_environment_is_one_line_naming_it(monkeypatch, capsys, error, fault):
    monkeypatch.setattr(cli, "run", raising(error))
    status, err = outcome(capsys)
    assert status == 1 and err == f"tdgen: {fault}: {error}\n", err
    assert "Traceback" not in err and "please report" not in err


def test_a_failed_checkpoint_write_names_the_fault_it_was_raised_from(monkeypatch, capsys):
    from tdgen.runs import CheckpointWriteError

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as cause:
            message = f"writing checkpoint c failed ({cause}); step 400 is intact"
            raise CheckpointWriteError(message) from cause
    except CheckpointWriteError as error:
        failure = error
    monkeypatch.setattr(cli, "run", raising(failure))
    status, err = outcome(capsys)
    assert status == 1 and err.startswith("tdgen: disk full: writing checkpoint c failed"), err
    assert len(err.splitlines()) == 1


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "run", raising(MemoryError()))
    assert outcome(capsys) == (1, "tdgen: out of memory\n")
    monkeypatch.setattr(cli, "run", raising(MemoryError("cannot allocate 6.6 GiB")))
    assert outcome(capsys) == (1, "tdgen: out of memory: cannot allocate 6.6 GiB\n")


def test_xla_out_of_accelerator_memory_is_one_line(monkeypatch, capsys):
    xla_error = type("XlaRuntimeError", (RuntimeError,), {"__module__": "jaxlib._jax"})
    error = xla_error("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17.2GiB.")
    monkeypatch.setattr(cli, "run", raising(error))
    status, err = outcome(capsys)
    assert status == 1 and err.startswith("tdgen: out of accelerator memory"), err
    assert len(err.splitlines()) == 1
    other = xla_error("INTERNAL: a compiler bug")  # any other XLA failure is a bug
    monkeypatch.setattr(cli, "run", raising(other))
    status, err = outcome(capsys)
    assert status == 1 and err.strip().splitlines()[-1].startswith(REPORT), err


@pytest.mark.parametrize(
    ("urls", "expected"),
    [
        (["Homepage, https://h", "Issues, https://i"], "https://i"),
        (["Documentation, https://d", "Source, https://s"], "https://s"),
        (["Documentation, https://d"], "the tdgen issue tracker"),
        (None, "the tdgen issue tracker"),
    ],
)
def test_a_bug_report_points_at_the_issue_tracker_of_the_installed_metadata(
    monkeypatch, urls, expected
):
    import importlib.metadata

    def metadata(name):
        if urls is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return _Meta(urls)

    monkeypatch.setattr(importlib.metadata, "metadata", metadata)
    assert cli.issue_tracker() == expected


class _Meta:
    def __init__(self, urls):
        self.urls = urls

    def get_all(self, key):
        return self.urls if key == "Project-URL" else None


def test_a_config_that_needs_more_memory_than_is_free_is_bad_input(monkeypatch, capsys):
    error = InsufficientMemoryError("buffer_size 1000000 needs 6.6 GiB: lower buffer_size")
    assert isinstance(error, MemoryError)
    monkeypatch.setattr(cli, "run", raising(error))
    assert outcome(capsys) == (2, f"tdgen: error: {error}\n")


def test_a_missing_file_that_no_reader_checked_is_a_bug(monkeypatch, capsys):
    monkeypatch.setattr(cli, "run", raising(FileNotFoundError(errno.ENOENT, "No such file", "x")))
    status, err = outcome(capsys)
    assert status == 1 and "Traceback" in err and "FileNotFoundError" in err
    assert err.strip().splitlines()[-1].startswith(REPORT)


def test_a_sweep_whose_runs_failed_is_one_line(monkeypatch, capsys):
    from tdgen.sweep import SweepError

    error = SweepError("1 of 2 runs failed: bad (ValueError). Tracebacks in out/logs")
    monkeypatch.setattr(cli, "run", raising(error))
    assert outcome(capsys) == (1, f"tdgen: error: {error}\n")


@pytest.mark.parametrize(
    "error",
    [ValueError("internal"), InputError("bad"), OSError(errno.ENOSPC, "No space left on device")],
    ids=["bug", "input", "disk-full"],
)
def test_debug_re_raises_every_kind(monkeypatch, error):
    monkeypatch.setenv("TDGEN_DEBUG", "1")
    monkeypatch.setattr(cli, "run", raising(error))
    with pytest.raises(type(error)):
        cli.main(["list"])


@pytest.mark.parametrize(
    "args",
    [["train", "dqn", "--frames", "-5"], ["train", "dqn", "--lr", "0"],
     ["reproduce", "fig9_kernel_td", "--set", "num_train=0"]],
    ids=["frames", "lr", "set"],
)  # fmt: skip
def test_a_config_validation_mistake_is_one_line_exit_2(tmp_path, capsys, args):
    status, err = outcome(capsys, [*args, "--out", str(tmp_path / "out")])
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("tdgen: error: "), err
    assert "must" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_an_output_folder_with_a_file_in_its_way_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(InputError, match=r"cannot be a folder: a file is in the way"):
            make_dir(path, "the folder of the report")
    assert make_dir(tmp_path / "a" / "b", "a folder").is_dir()
