"""The project's text describes the software, not how it was made, and stays inside the repository.

Two checks, both plain file scanning:

- The front page, the docs pages, the changelog and every source file (src/, examples/,
  benchmarks/) carry no work-log narration: no "session", no "the issue" or "issue 4", no
  "goal not met", no machine-load figures ("load 3-9"), no commit hashes beside figures (in the
  Markdown pages), and no path outside the repository (`../shared/`, ARCHITECTURE.md, which does
  not ship).
- Every relative link of README.md and docs/ names a file that exists inside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAGES = ["README.md", "CHANGELOG.md", "docs/**/*.md"]
SOURCES = ["src/**/*.py", "examples/**/*.py", "benchmarks/**/*.py"]

# How a work log reads, and where a path leaves the repository. Each pattern is searched on every
# line of every scanned file.
NARRATION = {
    "session": re.compile(r"\bsessions?\b", re.IGNORECASE),
    "the issue": re.compile(r"\bthe issue\b", re.IGNORECASE),
    "issue number": re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    "goal not met": re.compile(r"\bgoals?\b[^.\n]{0,60}?\bnot (?:yet )?met\b", re.IGNORECASE),
    "machine load": re.compile(r"\bload(?: average)?:? ~?\d+(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?\b"),
    "outside the repository": re.compile(r"\.\./shared/|\bARCHITECTURE\.md\b"),
}
# A commit hash as a whole word: 7-12 lower-case hex digits with at least one digit and one letter.
# Searched in the Markdown pages only (source files hold hex constants and digests of their own).
COMMIT = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}\b")

# Technical uses of a flagged word, as exact phrases (case-insensitive); each is blanked out of a
# line before the patterns are searched. Keep this short: a new entry is a phrase, never a word.
ALLOWED = [
    "the test session",  # pytest's test session (src/tdgen/sweep/tasks.py)
]

# [text](target) and ![alt](target); targets with a scheme, or only an anchor, are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#)", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def files(patterns: list[str]) -> list[Path]:
    """The project's files matching the patterns, without build outputs (the built docs site
    copies its sources, and links there resolve against the site, not the repository)."""
    found = {p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(p for p in found if ".egg-info" not in p.parts and "_build" not in p.parts)


def offences(path: Path, *, commits: bool) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for phrase in ALLOWED:
            line = re.sub(re.escape(phrase), " " * len(phrase), line, flags=re.IGNORECASE)
        patterns = list(NARRATION.values()) + ([COMMIT] if commits else [])
        for pattern in patterns:
            found += [f"{rel}:{number}: {m.group(0)}" for m in pattern.finditer(line)]
    return found


def test_the_text_describes_the_software_not_how_it_was_made():
    found = [o for p in files(PAGES) for o in offences(p, commits=True)]
    found += [o for p in files(SOURCES) for o in offences(p, commits=False)]
    assert not found, "work-log narration or a path outside the repository:\n" + "\n".join(found)


def test_every_relative_link_of_the_pages_names_a_file_in_the_repository():
    pages = files(["README.md", "docs/**/*.md"])
    assert (ROOT / "README.md") in pages and len(pages) > 1
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        # Links in code are code, not links: blank them out, keeping every offset.
        text = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
        text = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), text)
        for match in LINK.finditer(text):  # link text may run over several lines
            target = match.group(1)
            if EXTERNAL.match(target):
                continue
            file = (page.parent / target.split("#", 1)[0]).resolve()
            if not ((file == ROOT or ROOT in file.parents) and file.exists()):
                number = text.count("\n", 0, match.start(1)) + 1
                broken.append(f"{page.relative_to(ROOT).as_posix()}:{number}: {target}")
    assert not broken, "links to files that are not in the repository:\n" + "\n".join(broken)
