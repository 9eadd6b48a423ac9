"""GPU check before a paper run: `tdgen gpu-check`, recording its result under benchmarks/results.

    python benchmarks/gpu_check.py [--seconds 40] [--cases fig3-dqn fig4-ppo ...] [--dry-run]

The same options as `tdgen gpu-check` (`tdgen.bench.gpu_check`); a run that is not a dry run
writes benchmarks/results/gpu_check/MACHINE.json unless ``--results`` names another folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tdgen.cli import main

RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--results" or a.startswith("--results=") for a in args):
        args += ["--results", str(RESULTS)]
    main(["gpu-check", *args])
