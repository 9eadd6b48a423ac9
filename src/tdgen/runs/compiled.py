"""Keep a long process (a whole `tdgen reproduce`, a sweep worker) clear of Linux's mapping limit.

XLA:CPU keeps every compiled program's machine code in memory mappings of its own, and JAX keeps
every program it compiled while the function that owns it lives. A process that trains hundreds
of runs (Figure 6's smoke preset alone trains 116) gathers ~1,500-3,000 mappings per run and reaches
``vm.max_map_count`` (65,530 by default) long before it runs out of memory: the next compilation
then aborts the process with ``LLVM compilation error: Cannot allocate memory``. Measured here:
the smoke reproduction died in Figure 6 at 9.6 GB RSS of 24 GiB.

`release_if_crowded` drops JAX's in-memory caches of compiled programs (and the update-matrix
memo) once the process holds more than half the limit; the next run compiles again, from JAX's
persistent compilation cache where it is on. Below the threshold nothing changes, so short
processes (tests, a single run) keep their caches.
"""

from __future__ import annotations

import gc
from pathlib import Path

import jax

from tdgen.interference.update_matrix import cached_update_matrix

MAPS = Path("/proc/self/maps")
LIMIT = Path("/proc/sys/vm/max_map_count")
DEFAULT_LIMIT = 65_530
SHARE = 0.5  # release once this share of the limit is in use


def mapping_count() -> int | None:
    """Memory mappings this process holds (None where the OS does not say: not Linux)."""
    try:
        with MAPS.open("rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def mapping_limit() -> int:
    """The kernel's per-process mapping limit (``vm.max_map_count``)."""
    try:
        return int(LIMIT.read_text().strip())
    except (OSError, ValueError):
        return DEFAULT_LIMIT


def release_compiled() -> None:
    """Drop every compiled program JAX and tdgen cache in memory (they recompile when needed)."""
    cached_update_matrix.cache_clear()
    jax.clear_caches()
    gc.collect()  # closures in reference cycles hold programs too


def release_if_crowded(share: float = SHARE) -> bool:
    """`release_compiled` when more than ``share`` of the mapping limit is in use; True if it did."""
    count = mapping_count()
    if count is None or count <= share * mapping_limit():
        return False
    release_compiled()
    return True
