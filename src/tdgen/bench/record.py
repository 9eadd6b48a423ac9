"""The benchmark record: one JSON file per benchmark and machine, and its Markdown tables.

A benchmark builds a `Record` when it starts (the machine, its load average, the versions, the
date and the command line are taken then), adds its tables and goals as it measures, and
`Record.write(results)` writes ``results/<benchmark>/<machine slug>.json``: the newest result of
each benchmark on each machine, older ones in version control. `latest` reads them back and
`markdown_table` renders a table, which is how `benchmarks/render.py` writes docs/benchmarks.md.
Nothing here imports JAX until a record is made, and torch only when it is already installed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA = 1


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, or None where the system has none."""
    try:
        return [round(x, 3) for x in os.getloadavg()]
    except OSError:
        return None


def accelerator() -> tuple[str | None, list[str]]:
    """(the kind of JAX's first non-CPU device or None, every JAX device as a string)."""
    import jax

    devices = jax.devices()
    kinds = [d.device_kind for d in devices if d.platform != "cpu"]
    return (kinds[0] if kinds else None), [str(d) for d in devices]


def machine() -> dict[str, Any]:
    """What a figure was measured on: CPU, cores, platform, accelerator, and a slug naming it."""
    kind, devices = accelerator()
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "accelerator": kind, "jax_devices": devices}  # fmt: skip
    info["slug"] = slug(info)
    return info


def slug(info: dict[str, Any]) -> str:
    """A file name for the machine: its accelerator, else its CPU model and core count."""
    name = info.get("accelerator") or f"{info.get('cpu') or 'cpu'} {info.get('cores') or 0}cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit(where: Path | None = None) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether tracked files differ from it) of the checkout holding ``where``
    (default: tdgen's source); (None, None) outside a checkout or without git."""
    where = where or Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()  # fmt: skip

    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def versions() -> dict[str, Any]:
    """Python, jax, jaxlib, torch (only if installed) and tdgen, with tdgen's git commit."""
    from tdgen import __version__

    out = {"python": platform.python_version(), "jax": _installed("jax"),
           "jaxlib": _installed("jaxlib")}  # fmt: skip
    if _installed("torch") is not None:
        out["torch"] = _installed("torch")
    commit, dirty = git_commit()
    return {**out, "tdgen": __version__, "commit": commit, "dirty": dirty}


def column(name: str, unit: str | None = None) -> dict[str, str | None]:
    """A table column: its name and unit (None for names, counts and ratios)."""
    return {"name": name, "unit": unit}


@dataclass
class Table:
    """Rows of figures under named columns with units; ``title`` says what a row is."""

    name: str
    title: str
    columns: list[dict[str, str | None]]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        """Append one row; it must have a cell for every column."""
        if len(cells) != len(self.columns):
            raise ValueError(
                f"table {self.name}: {len(cells)} cells for {len(self.columns)} columns"
            )
        self.rows.append([_plain(c) for c in cells])


def _plain(value: Any) -> Any:
    """A JSON-ready cell: numpy scalars as Python numbers, tuples as lists."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return list(value) if isinstance(value, tuple) else value


class Record:
    """One run of ``benchmark``: the machine and versions at start, then its tables and goals."""

    def __init__(self, benchmark: str, argv: list[str] | None = None):
        self.benchmark = benchmark
        self.data: dict[str, Any] = {
            "schema": SCHEMA, "benchmark": benchmark,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": shlex.join(argv if argv is not None else [Path(sys.executable).name, *sys.argv]),
            "machine": machine(), "load_average": {"start": load_average(), "end": None},
            "versions": versions(), "goals": [], "tables": [],
        }  # fmt: skip
        self.tables: list[Table] = []

    def table(self, name: str, title: str, columns: list[dict[str, str | None]]) -> Table:
        """A new table of this record (filled with `Table.add`)."""
        self.tables.append(Table(name, title, columns))
        return self.tables[-1]

    def goal(self, name: str, value: float, limit: float, what: str = "") -> bool:
        """Record goal ``name``: ``value`` at most ``limit``; returns whether it holds."""
        met = bool(value <= limit)
        self.data["goals"].append({"name": name, "what": what, "value": _plain(value),
                                   "at_most": limit, "met": met})  # fmt: skip
        return met

    def finish(self) -> dict[str, Any]:
        """The record as a dict, with the load average at the end taken now."""
        self.data["load_average"]["end"] = load_average()
        self.data["tables"] = [vars(t).copy() for t in self.tables]
        return self.data

    def write(self, results: Path) -> Path:
        """Write ``results/<benchmark>/<machine slug>.json`` (replacing the machine's last one)."""
        path = Path(results) / self.benchmark / f"{self.data['machine']['slug']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.tmp")  # a reader never sees half a record
        staged.write_text(json.dumps(self.finish(), indent=1) + "\n")
        os.replace(staged, path)
        print(f"wrote {path}", flush=True)
        return path


def read(path: Path) -> dict[str, Any]:
    """A record written by `Record.write`; an InputError names a file that is not one."""
    from tdgen.errors import InputError, read_json

    data = read_json(Path(path), f"a benchmark record (schema {SCHEMA})")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "tables" not in data:
        raise InputError(f"{path} is not a benchmark record (schema {SCHEMA})")
    return data


def latest(results: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record under ``results``: {benchmark: {machine slug: record}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(Path(results).glob("*/*.json")):
        data = read(path)
        out.setdefault(data["benchmark"], {})[data["machine"]["slug"]] = data
    return out


def cell(value: Any) -> str:
    """A figure as the page shows it: three significant digits, thousands separated."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value).replace("|", "\\|")


def markdown_table(table: dict[str, Any]) -> str:
    """A table of a record as Markdown, each column's unit beside its name."""
    names = [c["name"] + (f" ({c['unit']})" if c.get("unit") else "") for c in table["columns"]]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table["rows"]]
    return "\n".join(lines)
