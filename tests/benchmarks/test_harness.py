"""The benchmark record (`tdgen.bench.record`) and the page benchmarks/render.py writes from it."""

import importlib.util
import json
from pathlib import Path

import pytest

from tdgen.bench.record import Record, column, latest, markdown_table, read

ROOT = Path(__file__).parents[2]


def _render():
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record() -> Record:
    record = Record("agents", argv=["python", "benchmarks/self/agents.py", "--quick"])
    rates = record.table("rates", "rates after compilation",
                         [column("measurement"), column("rate", "frames/s")])  # fmt: skip
    rates.add("env only", 526_670.4)
    rates.add("DQN", 1_200.25)
    record.goal("share", 0.5, 2.0, "probe share")
    return record


def test_a_record_names_the_machine_the_versions_and_the_command():
    data = _record().finish()
    machine = data["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["jax_devices"]
    assert "accelerator" in machine and machine["slug"]
    assert {"python", "jax", "jaxlib", "tdgen", "commit"} <= set(data["versions"])
    assert data["load_average"]["start"] is not None and data["load_average"]["end"] is not None
    assert data["command"] == "python benchmarks/self/agents.py --quick" and data["date"]
    assert data["goals"] == [{"name": "share", "what": "probe share", "value": 0.5,
                              "at_most": 2.0, "met": True}]  # fmt: skip


def test_a_record_round_trips_through_its_json_file(tmp_path):
    record = _record()
    path = record.write(tmp_path)
    assert path == tmp_path / "agents" / f"{record.data['machine']['slug']}.json"
    assert read(path) == json.loads(json.dumps(record.data))
    assert latest(tmp_path) == {"agents": {record.data["machine"]["slug"]: read(path)}}
    with pytest.raises(ValueError):
        record.tables[0].add("a row", 1.0, "one cell too many")
    (tmp_path / "agents" / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a benchmark record"):
        latest(tmp_path)


def test_the_renderer_writes_a_table_from_a_record(tmp_path):
    _record().write(tmp_path)
    page = _render().render(tmp_path)
    assert (
        "| measurement | rate (frames/s) |\n|---|---|\n| env only | 526,670 |\n| DQN | 1,200 |"
        in page
    )
    assert "| probe share | 0.5 | 2 | yes |" in page
    assert "`python benchmarks/self/agents.py --quick`" in page
    assert "No result is recorded yet: `python benchmarks/self/seeds.py --quick`" in page
    table = {"columns": [column("x", "s")], "rows": [[0.000123], [None], [True]]}
    assert markdown_table(table) == "| x (s) |\n|---|\n| 0.000123 |\n| - |\n| yes |"


def test_the_benchmarks_page_is_what_the_recorded_results_give():
    page = _render().render(ROOT / "benchmarks" / "results")
    assert (ROOT / "docs" / "benchmarks.md").read_text() == page, "run `make bench-docs`"
