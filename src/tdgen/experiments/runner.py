"""Run experiments by name and write `result.json` per experiment (the contract in ARCHITECTURE.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tdgen.experiments import get_experiment
from tdgen.experiments.base import to_jsonable


def run_experiment(name: str, scale: str, seed: int, out: Path) -> dict[str, Any]:
    """Run one experiment, write `out/name/result.json` and its figures, and return the result."""
    experiment = get_experiment(name)
    config = experiment.config(scale)
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


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
