"""`tdgen gpu-check` and `tdgen preset-memory`: the package's two machine checks as commands."""

from __future__ import annotations

import os
from pathlib import Path

from tdgen.arguments import require
from tdgen.errors import ReportedFailure, unknown_name


def gpu_check(
    cases: tuple[str, ...] = (),
    seconds: float = 40.0,
    log_frames: int = 5_000,
    timeout: float = 240.0,
    dry_run: bool = False,
    results: Path | None = None,
) -> None:
    """Train each paper program for about a minute on the default device and project its runs.

    Each case trains its paper preset's first run in its own process until SIGTERM after
    `--seconds`, and prints frames/s (updates/s for students), one probe's seconds, the device's
    and the host's peak memory, and the projected hours of the experiment's runs of that kind.

    Args:
        cases: Cases to run (default: every one: fig3-dqn fig3-c51 fig4-ppo fig4-daac
            fig5-teacher fig5-student fig6-student).
        seconds: Training per case before SIGTERM.
        log_frames: Frames between metric lines (value-based cases).
        timeout: Seconds per case at most.
        dry_run: The smoke presets on the CPU (what the test runs); never recorded.
        results: Write the table as a benchmark record under this folder
            (RESULTS/gpu_check/MACHINE.json).
    """
    from tdgen.bench.gpu_check import CASES, check

    for name in cases:
        if name not in CASES:
            raise unknown_name("case", name, tuple(CASES))
    require(seconds > 0, "--seconds", "seconds > 0", seconds)
    require(log_frames > 0, "--log-frames", "frames > 0", log_frames)
    require(timeout > 0, "--timeout", "seconds > 0", timeout)
    if dry_run:
        os.environ["JAX_PLATFORMS"] = "cpu"
    done = check(list(cases or CASES), seconds, log_frames, timeout, dry_run, results)
    failed = [r["case"] for r in done if "error" in r]
    if failed:
        raise ReportedFailure(f"gpu check: {', '.join(failed)} failed (errors in the table)")


def preset_memory(results: Path | None = None) -> None:
    """Estimate each paper preset's device and host memory from its compiled step, without running it.

    Args:
        results: Also write the table as a benchmark record under this folder
            (RESULTS/preset_memory/MACHINE.json).
    """
    from tdgen.bench.preset_memory import main

    main(results)
