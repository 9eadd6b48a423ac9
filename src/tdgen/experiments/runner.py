"""Run experiments by name and write `result.json` per experiment (the contract in ARCHITECTURE.md)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from tdgen.experiments import get_experiment
from tdgen.experiments.base import to_jsonable
from tdgen.runs.rundir import write_json_atomic


def run_experiment(
    name: str, scale: str, seed: int, out: Path, config: Any = None
) -> dict[str, Any]:
    """Run one experiment, write `out/name/result.json` and its figures, and return the result.

    ``config``: the experiment's config to run (default: its preset of ``scale``; a config
    changed from a preset is still reported under that scale's name)."""
    experiment = get_experiment(name)
    config = experiment.config(scale) if config is None else config
    out_dir = Path(out) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcome = experiment.run(config, seed, out_dir)
    result = {
        "experiment": name,
        "paper_ref": experiment.paper_ref,
        "description": experiment.description,
        "scale": scale,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
        "config": to_jsonable(dataclasses.asdict(config)),
        "claims": [to_jsonable(claim) for claim in outcome.claims],
        "figures": list(outcome.figures),
        "summary": to_jsonable(outcome.summary),
    }
    write_json_atomic(out_dir / "result.json", result)
    return result
