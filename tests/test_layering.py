"""Layering: `tdgen.stats` sits below everything and imports nothing from tdgen; `experiments`
sits below `sweep` and never imports it (read from the source, so no import runs)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
EXPERIMENTS = sorted((SRC / "tdgen" / "experiments").rglob("*.py"))


def imported_modules(path: Path, module: str = "") -> list[str]:
    """Every module the file imports, anywhere in it, absolute: relative imports resolved against
    its ``module`` name (default: its place under src); ``from a import b`` gives both ``a`` and
    ``a.b``, since b may be a module."""
    name = module or ".".join(path.relative_to(SRC).with_suffix("").parts)
    package, out = name.split(".")[:-1], []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found = ".".join([*base, *([node.module] if node.module else [])])
            out += [found] + [f"{found}.{alias.name}" for alias in node.names]
    return out


def is_sweep(module: str) -> bool:
    return module == "tdgen.sweep" or module.startswith("tdgen.sweep.")


def test_the_import_reader_sees_every_form(tmp_path):
    forms = ["import tdgen.sweep.aggregate", "from tdgen.sweep import aggregate",
             "from tdgen import sweep", "from tdgen.sweep.aggregate import mean",
             "from .. import sweep", "from ..sweep.aggregate import mean",
             "import tdgen.sweep as s", "from tdgen import plots, sweep"]  # fmt: skip
    for form in forms:
        path = tmp_path / "m.py"
        path.write_text(f"def f():\n    {form}\n")  # inside a function, too
        assert any(is_sweep(m) for m in imported_modules(path, "tdgen.experiments.m")), form
    path.write_text("from tdgen import stats\nimport tdgen.sweeping\nfrom . import verdicts\n")
    found = imported_modules(path, "tdgen.experiments.m")
    assert "tdgen.experiments.verdicts" in found and not any(is_sweep(m) for m in found)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiments_never_import_sweep(path):
    found = [m for m in imported_modules(path) if is_sweep(m)]
    assert not found, f"{path.relative_to(SRC)} imports {found}: sweep sits above experiments"


def test_stats_imports_nothing_from_tdgen():
    found = [m for m in imported_modules(SRC / "tdgen" / "stats.py")
             if m == "tdgen" or m.startswith("tdgen.") or not m]  # fmt: skip
    assert not found, f"tdgen/stats.py imports {found}"


def test_importing_the_verdicts_loads_no_sweep_module():
    code = ("import sys, tdgen.experiments.verdicts; "
            "print(sorted(m for m in sys.modules if m.startswith('tdgen')))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    assert "tdgen.stats" in loaded and "tdgen.sweep" not in loaded
