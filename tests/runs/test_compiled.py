"""A long process drops its compiled programs before it reaches Linux's mapping limit."""

import sys

import jax
import jax.numpy as jnp
import pytest

from tdgen.runs import compiled

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def compiled_program():
    """A jitted function and how many times JAX traced it: a trace happens on a cache miss only.

    Counting traces, not `_cache_size()`: the C++ dispatch cache was found empty after a call
    late in the full suite (CI), while the tracing caches behave the same in any process."""
    traces = []

    def body(x):
        traces.append(1)
        return jnp.sin(x) * 2.0

    f = jax.jit(body)
    f(jnp.ones(3))
    f(jnp.ones(3))
    assert len(traces) == 1
    return f, traces


@linux
def test_mapping_count_and_limit_are_this_process_and_kernel():
    count = compiled.mapping_count()
    assert count is not None and 0 < count < compiled.mapping_limit()
    before = count
    programs = [jax.jit(lambda x, k=k: x * k).lower(jnp.ones(4)).compile() for k in range(20)]
    assert compiled.mapping_count() > before  # XLA:CPU code lives in mappings of its own
    del programs


@linux
def test_release_only_past_the_share_of_the_limit(monkeypatch):
    f, traces = compiled_program()
    assert not compiled.release_if_crowded()  # a fresh test process is far below half
    f(jnp.ones(3))
    assert len(traces) == 1
    monkeypatch.setattr(compiled, "mapping_limit", lambda: compiled.mapping_count() // 2)
    assert compiled.release_if_crowded()
    assert float(f(jnp.ones(3))[0]) == pytest.approx(2 * float(jnp.sin(1.0)))
    assert len(traces) == 2  # the program was dropped: traced and compiled again


def test_release_keeps_everything_where_the_os_does_not_count(monkeypatch):
    f, traces = compiled_program()
    monkeypatch.setattr(compiled, "mapping_count", lambda: None)
    assert not compiled.release_if_crowded()
    f(jnp.ones(3))
    assert len(traces) == 1


def test_release_drops_the_update_matrix_memo(monkeypatch):
    cleared = []
    monkeypatch.setattr(compiled.cached_update_matrix, "cache_clear", lambda: cleared.append(1))
    compiled.release_compiled()
    assert cleared == [1]


@pytest.mark.slow  # trains a tiny DQN
def test_run_groups_and_policy_loads_check_the_limit(monkeypatch, tmp_path):
    from tdgen import policies
    from tdgen.agents import DQNConfig, ensure_runs, launch

    calls = []
    monkeypatch.setattr(launch, "release_if_crowded", lambda: calls.append("runs"))
    monkeypatch.setattr(policies, "release_if_crowded", lambda: calls.append("policy"))
    config = DQNConfig.minatar(frames=256, num_envs=4, buffer_size=256, batch_size=16,
                               learning_starts=64, target_period=128, epsilon_decay_frames=128,
                               log_every=128, probe_every=0, checkpoint_every=128,
                               encoder="mlp")  # fmt: skip
    ensure_runs("dqn", [config], [tmp_path / "run"])
    assert calls == ["runs", "runs"]  # on entry, and after the group trained
    ensure_runs("dqn", [config], [tmp_path / "run"])  # reused: checked on entry only
    assert calls == ["runs"] * 3
    policies.load_policy(tmp_path / "run")
    assert calls[-1] == "policy"
