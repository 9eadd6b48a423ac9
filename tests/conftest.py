"""Test-session settings: a persistent XLA compilation cache, and the check of the `slow` marker.

Most of a small training test is compilation, and a resumed run compiles the same functions again:
the on-disk cache (keyed by the program, the compile options and the jax version) turns the second
compilation into a load. It is the cache the command line uses, $TDGEN_JAX_CACHE or
~/.cache/tdgen/jax, so a fresh clone on a machine that ran the tests before loads what that run
compiled (and the second Python of .ci/run what the first compiled). A cold cache costs time,
never a different number.

Slow tests mark themselves, in their module (``pytestmark = pytest.mark.slow``) or on the test
(``@pytest.mark.slow``); the fast selection (`make test-fast`, ``pytest -m "not slow"``) leaves
them out. The check: every agent and every distillation student trains through one loop,
`tdgen.runs.loop.run_segments`, with a `tdgen.runs.RunConfig`. While a test that is not marked slow
runs (its setup, fixtures of any scope included, its call and its teardown), that loop fails the
test, naming the marker to add. Deep-RL experiments train, or read runs that a fixture trained, so
they are caught the same way. (A static rule on the test's source would miss the training done by
a shared fixture or a helper; a subprocess's training is not seen, and such tests mark themselves.)

A per-test timeout (``timeout`` in pyproject.toml; a longer test says so with
``@pytest.mark.timeout(SECONDS)``) ends a hang with the stacks of every thread (pytest-timeout's
thread method, which also fires inside a compiled XLA call). The tests that declare a longer limit
start first, so that under pytest-xdist the longest do not finish last on one worker.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import pytest

UNMARKED = "{nodeid} trains through tdgen.runs.loop.run_segments but is not marked slow: add " \
    "`pytestmark = pytest.mark.slow` to its module (or `@pytest.mark.slow` to the test)"  # fmt: skip
_running: list[pytest.Item] = []  # the test whose setup, call or teardown is under way


def pytest_configure(config):
    # Stable-Baselines3 makes a dated log folder in the temp dir per model unless told where.
    os.environ.setdefault("SB3_LOGDIR", str(Path(config.rootpath) / ".pytest_cache" / "sb3"))
    from tdgen.sweep.launch import default_cache_dir

    cache = default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    guard_training_loop()


def guard_training_loop() -> None:
    """Wrap `run_segments` before any test module imports it (they import it by name)."""
    import tdgen.runs.loop as loop
    from tdgen.runs.config import RunConfig

    if getattr(loop.run_segments, "guarded", False):
        return
    train = loop.run_segments

    @functools.wraps(train)
    def run_segments(config, *args, **kwargs):
        if isinstance(config, RunConfig) and _running and not is_slow(_running[-1]):
            pytest.fail(UNMARKED.format(nodeid=_running[-1].nodeid), pytrace=False)
        return train(config, *args, **kwargs)

    run_segments.guarded = True
    loop.run_segments = run_segments


def is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -declared_timeout(item))  # stable: file order otherwise


def declared_timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()
