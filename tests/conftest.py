"""Test-session settings: a persistent XLA compilation cache.

Most of a small training test is compilation, and a resumed run compiles the same functions again:
the on-disk cache (keyed by the program, the compile options and the jax version) turns the second
compilation into a load. It lives in .pytest_cache/, so repeated local runs reuse it too.
"""

from pathlib import Path

import jax


def pytest_configure(config):
    cache = Path(config.rootpath) / ".pytest_cache" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
