"""The check in tests/conftest.py: a test that trains (itself or through a fixture of any scope)
fails unless it is marked slow; a marked test trains, and a test that does not train is left alone.

It runs the suite's own conftest in a fresh pytest process over four small tests.
"""

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # its marked inner test trains a tiny DQN

pytest_plugins = ["pytester"]

TESTS = """
import pytest

from tdgen.agents import DQNConfig, train

TINY = dict(frames=200, num_envs=4, buffer_size=200, batch_size=8, learning_starts=40,
            target_period=40, log_every=100, probe_every=0, checkpoint_every=0, encoder="mlp")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    return train("dqn", DQNConfig.minatar(**TINY), tmp_path_factory.mktemp("r") / "run", progress=False)


def test_unmarked_trains(tmp_path):
    train("dqn", DQNConfig.minatar(**TINY), tmp_path / "run", progress=False)


def test_unmarked_reads_a_trained_fixture(trained):
    assert trained.exists()


@pytest.mark.slow
def test_marked_trains(tmp_path):
    assert (train("dqn", DQNConfig.minatar(**TINY), tmp_path / "run", progress=False)).exists()


def test_unmarked_without_training():
    assert DQNConfig.minatar(**TINY).frames == 200
"""


def test_the_check_fails_unmarked_tests_that_train_and_only_those(pytester, request):
    root = Path(request.config.rootpath)
    shutil.copy(root / "tests" / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nmarkers = ["slow: trains"]\n')
    pytester.makepyfile(test_inner=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE")
    result.assert_outcomes(passed=2, failed=1, errors=1)  # the fixture's training fails its setup
    summary = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    assert [line.split()[1] for line in summary] == [
        "test_inner.py::test_unmarked_trains",
        "test_inner.py::test_unmarked_reads_a_trained_fixture",
    ]
    # The reports proper, not the summary lines (those are cut to the terminal's width, which varies).
    message = "is not marked slow: add `pytestmark = pytest.mark.slow`"
    reports = [line for line in result.outlines if message in line and line not in summary]
    assert sorted(line.split()[0] for line in reports) == [
        "test_inner.py::test_unmarked_reads_a_trained_fixture",
        "test_inner.py::test_unmarked_trains",
    ]
