"""The experiment pages are generated from a reproduction's result.json and figures."""

import dataclasses
import importlib
import inspect
import json

import pytest

from tdgen.experiments import REGISTRY, get_experiment
from tdgen.experiments.base import Claim, to_jsonable
from tdgen.experiments.pages import main, write_agent_results, write_pages
from tdgen.experiments.verdicts import Check

NAME = "fig3_value_update_rank"


def _result(tmp_path):
    check = Check(estimate=5.5, low=4.1, high=6.9, rule=">", threshold=2.0, n=4,
                  method="Student t")  # fmt: skip
    near = Check(estimate=0.5, low=-0.5, high=1.5, rule="|x|<=", threshold=2.0, n=4,
                 method="Student t")  # fmt: skip
    claim = Claim.measured("dense_rank_rises", "The rank rises.",
                           {"dqn/breakout": check, "dqn/zero": near})  # fmt: skip
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
    assert r"| dqn/zero | 0.5 [-0.5, 1.5] \|x\| <= 2 (Student t over 4 seeds) | held |" in text
    assert "452 s on Test CPU, 2 cores" in text
    assert f"![curves]({NAME}/curves.png)" in text
    assert "| **frames** | `100000` | `7000000` |" in text  # quick differs from paper: bold
    assert "| agents |" in text  # the same at both scales: plain
    first_line = inspect.getdoc(importlib.import_module(REGISTRY[NAME])).splitlines()[0]
    assert f"## What it checks\n\n{first_line}" in text  # the module's own account
    table = (pages / "summary.md").read_text()
    assert f"| [{NAME}](./{NAME}.md) | Figure 3 | ranks | 452 s | 1 held |" in table
    assert f"```{{toctree}}\n:hidden:\n\nexperiments/{NAME}\n```" in table


def test_agent_results_tabulate_the_final_returns_over_seeds(tmp_path):
    results = _result(tmp_path)
    for seed, final in ((0, 3.0), (1, 5.0)):
        run = results / NAME / "runs" / f"dqn_minatar-breakout_dense_s{seed}"
        run.mkdir(parents=True)
        config = {"env": "minatar/breakout", "reward": "dense", "frames": 1000, "seed": seed}
        (run / "config.json").write_text(json.dumps({"kind": "dqn", "config": config}))
        rows = [{"step": 500, "charts/episodic_return": 1.0, "charts/SPS": 900.0},
                {"step": 1000, "charts/episodic_return": final, "charts/SPS": 1100.0}]  # fmt: skip
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    zero = results / NAME / "runs" / "dqn_minatar-breakout_zero_s0"  # the control: left out
    zero.mkdir()
    (zero / "config.json").write_text(json.dumps({"kind": "dqn", "config": {"reward": "zero"}}))
    written = write_agent_results(results, tmp_path / "agents")
    table = (tmp_path / "agents" / "dqn.md").read_text()
    row = (
        f"| `minatar/breakout` | [{NAME}](../../experiments/{NAME}.md) | 1,000 | 2 | 4.00 ± 1.41 |"
    )
    assert row in table and "Test CPU (2 cores)" in table
    assert "trains no ppo run" in (tmp_path / "agents" / "ppo.md").read_text()
    assert len(written) == 5


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    results = _result(tmp_path)
    (results / NAME / "curves.png").unlink()  # a result without its figure
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text("")
    for args in ([str(tmp_path / "nowhere"), str(docs)], [str(results), str(docs)],
                 [str(results), str(tmp_path)]):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in docs.iterdir()) == ["conf.py"]
