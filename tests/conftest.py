"""Test-session settings: a persistent XLA compilation cache, and which tests are slow.

Most of a small training test is compilation, and a resumed run compiles the same functions again:
the on-disk cache (keyed by the program, the compile options and the jax version) turns the second
compilation into a load. It lives in .pytest_cache/, so repeated local runs reuse it too (and the
second Python of .ci/run reuses what the first compiled).

Slow tests train agents or run the deep-RL experiments: `make test` runs every test, the fast
selection (`make test-fast`, `pytest -m "not slow"`, .ci/run's second Python) leaves out those
marked slow: the paths in SLOW, less those in FAST.
"""

from pathlib import Path

import jax
import pytest

SLOW = (
    "tests/agents/",
    "tests/distill/test_trainer.py",
    "tests/distill/test_groups.py",
    "tests/distill/test_procgen.py",
    "tests/distill/test_atari.py",
    "tests/test_interruptions.py",
    "tests/benchmarks/test_gpu_check.py",
    "tests/experiments/",
    "tests/examples/",
    "tests/interference/test_command.py",
    "tests/runs/test_loop.py",
    "tests/sweep/test_local.py",
    "tests/sweep/test_cluster_backends.py",
    "tests/sweep/test_wandb_and_reproduce.py",
    "tests/losses/test_quantile.py::test_quantiles_converge_to_the_quantiles_of_the_targets",
    "tests/envs/test_levels.py::test_an_episode_is_a_function_of_its_level_and_actions",
    "tests/interference/test_update_matrix.py::test_linearized_agrees_with_exact",
)
FAST = (  # a few agents' tests and the theory experiments stay in the fast selection
    "tests/agents/test_registry.py",
    "tests/agents/test_actor_critic_losses.py",
    "tests/agents/test_value_based.py",
    "tests/experiments/test_scales.py",
    "tests/experiments/test_fig1_mountaincar_spectrum.py",
    "tests/experiments/test_fig9_kernel_td.py",
    "tests/experiments/test_fig10_smooth_kernel_regression.py",
    "tests/experiments/test_thm41_td_error_bound.py",
    "tests/experiments/test_verdicts.py",
)


def pytest_configure(config):
    cache = Path(config.rootpath) / ".pytest_cache" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW) and not item.nodeid.startswith(FAST):
            item.add_marker(pytest.mark.slow)
