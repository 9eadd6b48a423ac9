"""Every public function of the instrument (tdgen.interference and its torch twins) has a docstring
that says what it returns and names the array shapes it takes or gives, for the API reference."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
RETURNS = re.compile(r"->|\breturns?\b", re.IGNORECASE)
SHAPE = re.compile(r"\[[^\]]*\]")  # e.g. [k, m], [n, ..., units], [m, A]

# Public classes: the methods whose docstrings document arrays are checked, not the class.
METHODS = {
    "tdgen.interference.Probe": ("__call__", "matrices"),
    "tdgen.interference.Reduction": ("values", "difference"),
    "tdgen.interference.torch.Probe": ("__call__", "update_matrix"),
}

# Names whose arguments and results are not arrays: exempt from the shape check only (they still
# need a docstring that says what they return).
NO_SHAPES = {
    # strings in (center, target, random), a metric-key string out
    "tdgen.interference.update_rank_key",
}


def offenders(module_name: str) -> list[str]:
    """'file:line name: what is missing' for every public callable of the module that fails."""
    module = importlib.import_module(module_name)
    checked = []
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module_name}.{name}"
        if inspect.isclass(obj):
            if qualified not in METHODS:
                checked.append((qualified, obj, "a public class: list its methods in METHODS"))
                continue
            checked += [(f"{qualified}.{m}", getattr(obj, m), None) for m in METHODS[qualified]]
        elif callable(obj):  # constants (MEASURES, CENTERS, REDUCTIONS) are not checked
            checked.append((qualified, obj, None))
    out = []
    for qualified, obj, problem in checked:
        doc = inspect.getdoc(obj) or ""
        missing = [problem] if problem else []
        if not doc:
            missing.append("no docstring")
        if not RETURNS.search(doc):
            missing.append("does not say what it returns ('Returns ...' or '-> ...')")
        if not SHAPE.search(doc) and qualified not in NO_SHAPES:
            missing.append("names no shape ('[k, m]', '[n, ..., units]', ...)")
        if missing:
            out.append(f"{location(obj)} {qualified}: {'; '.join(missing)}")
    return out


def location(obj) -> str:
    path = Path(inspect.getsourcefile(obj))
    line = inspect.getsourcelines(obj)[1]
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"


def check(module_name: str) -> None:
    public = {f"{module_name}.{name}" for name in importlib.import_module(module_name).__all__}
    ours = {name for name in NO_SHAPES | set(METHODS) if name.rsplit(".", 1)[0] == module_name}
    assert ours <= public, f"allowlisted but not public (stale entries): {sorted(ours - public)}"
    bad = offenders(module_name)
    assert not bad, "public functions whose docstrings lack a return or a shape:\n" + "\n".join(bad)


def test_jax_instrument_docstrings_say_what_they_return_and_the_shapes():
    check("tdgen.interference")


def test_torch_instrument_docstrings_say_what_they_return_and_the_shapes():
    pytest.importorskip("torch")
    check("tdgen.interference.torch")
