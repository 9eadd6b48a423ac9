"""The catalogue of interventions as Markdown, generated from the registry: each intervention's
kind, source, definition (its module's docstring) and settings with their defaults and meanings
(the fields' docstrings), so the documentation cannot drift from the code.

``python -m tdgen.agents.interventions.catalogue docs/interventions/catalogue.md`` writes it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import textwrap
from pathlib import Path

from tdgen.agents.interventions import INTERVENTIONS, Intervention


def field_docs(cls: type[Intervention]) -> dict[str, str]:
    """{field: the string literal written under it in the class body} (what tyro shows)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section(cls: type[Intervention]) -> list[str]:
    module = inspect.getmodule(cls)
    shared = sum(c.__module__ == cls.__module__ for c in INTERVENTIONS.values()) > 1
    definition = inspect.cleandoc((cls.__doc__ if shared else module.__doc__) or "")
    lines = [f"### `{cls.name}`", "", f"*{cls.kind}*; {cls.source}. Class `{cls.__name__}`.", ""]
    lines += [definition, ""]
    fields = dataclasses.fields(cls)
    if fields:
        docs = field_docs(cls)
        lines += ["| setting | default | meaning |", "|---|---|---|"]
        lines += [
            f"| `{f.name}` | `{f.default!r}` | {_cell(docs.get(f.name, ''))} |" for f in fields
        ]
    else:
        lines.append("No settings.")
    return [*lines, ""]


def catalogue_markdown() -> str:
    """The whole catalogue: a summary table, then one section per intervention."""
    lines = ["| intervention | kind | source |", "|---|---|---|"]
    lines += [
        f"| [`{name}`](#{name}) | {cls.kind} | {_cell(cls.source)} |"
        for name, cls in INTERVENTIONS.items()
    ]
    lines.append("")
    for cls in INTERVENTIONS.values():
        lines += _section(cls)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(catalogue_markdown())
