"""Sphinx configuration of tdgen's documentation site (`make docs`): MyST Markdown pages, the
book theme, and an API reference generated from the docstrings, which fails the build when a
public name has none. Nothing is fetched at build or view time."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import tdgen

project = "tdgen"
author = "the tdgen authors"
copyright = "2026, the tdgen authors"  # noqa: A001 (Sphinx's name)
release = version = tdgen.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "agents/results/*", "experiments/summary.md",
                    "interventions/catalogue.md"]  # included pages
myst_heading_anchors = 3  # links to a section: page.md#a-section-title
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["myst.header"]  # pages that start below level 1 (the generated glossary)

html_theme = "sphinx_book_theme"
html_title = f"tdgen {release}"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_static_path: list[str] = []
html_last_updated_fmt = None

autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# torch and stable-baselines3 are extras (in the Python 3.11 lock only): mock them elsewhere
autodoc_mock_imports = [m for m in ("torch", "stable_baselines3") if not importlib.util.find_spec(m)]

# The packages whose __all__ is tdgen's public API: each has a page under api/, and every name in
# its __all__ must have a docstring (checked below, so an undocumented public name fails -W).
API = (
    "tdgen", "tdgen.interference", "tdgen.interference.torch", "tdgen.agents", "tdgen.envs",
    "tdgen.nets", "tdgen.losses", "tdgen.runs", "tdgen.distill", "tdgen.evaluate",
    "tdgen.experiments", "tdgen.sweep",
)  # fmt: skip


def undocumented() -> list[str]:
    """Public names (in an API package's __all__) that are functions or classes without a
    docstring of their own."""
    missing = []
    for name in API:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if not (obj.__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    return missing


def check_api(app) -> None:
    from sphinx.errors import ExtensionError

    missing = undocumented()
    if missing:
        raise ExtensionError(f"public names without a docstring: {', '.join(missing)}")


def plain_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """tdgen's docstrings are plain text (formulas such as |{sigma : sigma > eps}|, shapes
    [k, m], indented continuations), not reStructuredText: escape the characters RST would read
    as markup, and set indented lines apart as quoted blocks, so they render as written."""
    out: list[str] = []
    previous = 0
    for line in lines:
        text = line.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
        if text.strip():
            indent = len(text) - len(text.lstrip())
            if out and out[-1].strip() and indent != previous:
                out.append("")  # a change of indentation starts a new block
            previous = indent
        out.append(text)
    lines[:] = out


def setup(app):
    app.connect("builder-inited", check_api)
    app.connect("autodoc-process-docstring", plain_docstring)
