"""benchmarks/gpu_check.py --dry-run: each case trains, is stopped by SIGTERM, and is measured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tdgen.sweep.launch import default_cache_dir

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.timeout(600)
def test_dry_run_measures_a_teacher_and_its_student(request):
    # The children compile through the test session's XLA cache (tests/conftest.py): a rerun loads.
    cache = default_cache_dir()
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--cases", "fig5-teacher", "fig5-student",
         "--seconds", "6", "--log-frames", "256", "--timeout", "400"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| fig5-")]
    assert len(rows) == 4, done.stdout  # each case as it finishes, then the table
    for row in rows[-2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        rate = float(cells[2].lstrip("~").split()[0].replace(",", ""))
        assert rate > 0 and float(cells[-1].replace(",", "")) > 0, row  # rate, projected hours
    assert "frames/s" in rows[-2] and "updates/s" in rows[-1]
