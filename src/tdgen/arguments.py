"""How the `tdgen` command reads its arguments: tyro and argparse with their usage errors as one
`InputError` line (not a box or usage text), option checks, and aligned text tables."""

from __future__ import annotations

import argparse
import sys

import tyro

from tdgen.errors import InputError


def require(holds: bool, option: str, expected: str, got) -> None:
    """An InputError naming ``option`` and what it expects unless ``holds``."""
    if not holds:
        raise InputError(f"{option} must be {expected}, got {got!r}")


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns two spaces apart (each as wide as its widest cell)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(row[i].ljust(w) for i, w in enumerate(widths)), row[-1]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def parse(target, args: list[str], prog: str, name: str | None = None, **kwargs):
    """`tyro.cli(target, args=args, prog=prog)`, its usage errors as one InputError line
    starting with ``name`` (default: ``prog``).

    tyro prints a usage error as a box on stderr and exits 2: stderr is held while it parses,
    and released when ``target`` (a command function) is called, so the command's own output
    and errors are untouched."""
    import functools
    import io

    real, held = sys.stderr, io.StringIO()
    if callable(target) and not isinstance(target, type):
        command = target

        @functools.wraps(command)
        def target(*a, **k):
            sys.stderr = real
            return command(*a, **k)

    sys.stderr = held
    try:
        return tyro.cli(target, args=args, prog=prog, **kwargs)
    except SystemExit as exit:
        if sys.stderr is held and exit.code:
            raise InputError(f"{name or prog}: {_box_text(held.getvalue())}") from None
        raise
    finally:
        sys.stderr = real


def _box_text(box: str) -> str:
    """The words of a tyro error box on one line: its body without the title, the rules, the
    colours and the help footer ("Argument helptext", "For full helptext")."""
    import re

    words = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", box).splitlines()[1:]:  # [0]: the title
        line = line.strip(" │")
        if line.startswith(("For full helptext", "Argument helptext")) or line.startswith("╰"):
            break
        if line and not set(line) <= set("-─"):
            words.append(line)
    return " ".join(words)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one InputError line (not usage text and exit)."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message}")
