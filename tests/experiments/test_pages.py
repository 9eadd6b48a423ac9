"""The experiment pages are generated from a reproduction's result.json and figures."""

import dataclasses
import importlib
import inspect
import json

from tdgen.experiments import REGISTRY, get_experiment
from tdgen.experiments.base import Claim, to_jsonable
from tdgen.experiments.pages import write_pages
from tdgen.experiments.verdicts import Check

NAME = "fig3_value_update_rank"


def _result(tmp_path):
    check = Check(estimate=5.5, low=4.1, high=6.9, rule=">", threshold=2.0, n=4,
                  method="Student t")  # fmt: skip
    claim = Claim.measured("dense_rank_rises", "The rank rises.", {"dqn/breakout": check})
    config = dataclasses.asdict(get_experiment(NAME).config("quick"))
    folder = tmp_path / "results" / NAME
    folder.mkdir(parents=True)
    (folder / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = {"experiment": NAME, "paper_ref": "Figure 3", "description": "ranks", "scale": "quick",
              "seed": 0, "seconds": 452.0, "config": to_jsonable(config),
              "claims": [to_jsonable(claim)], "figures": ["curves.png"],
              "machine": {"cpu": "Test CPU", "cores": 2, "accelerator": None}}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(result))
    return tmp_path / "results"


def test_a_page_carries_the_verdicts_intervals_settings_and_figures(tmp_path):
    pages = tmp_path / "pages"
    (written,) = write_pages(_result(tmp_path), pages)
    text = written.read_text()
    assert written.name == f"{NAME}.md" and (pages / NAME / "curves.png").exists()
    assert "### `dense_rank_rises`: held" in text
    assert "5.5 [4.1, 6.9] > 2 (Student t over 4 seeds)" in text
    assert "452 s on Test CPU, 2 cores" in text
    assert f"![curves]({NAME}/curves.png)" in text
    assert "| **frames** | `100000` | `7000000` |" in text  # quick differs from paper: bold
    assert "| agents |" in text  # the same at both scales: plain
    first_line = inspect.getdoc(importlib.import_module(REGISTRY[NAME])).splitlines()[0]
    assert f"## What it checks\n\n{first_line}" in text  # the module's own account
    table = (pages / "summary.md").read_text()
    assert f"| [{NAME}]({NAME}.md) | Figure 3 | ranks | 452 s | 1 held |" in table
