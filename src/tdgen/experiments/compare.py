"""Compare two reproductions: bitwise (same machine, same seed) or in distribution (intervals overlap).

`python -m tdgen.experiments.compare RESULTS_A RESULTS_B` reads every `NAME/result.json` both
folders hold and prints, per claim check, whether the two runs gave the same numbers bit for bit,
whether their 95% intervals overlap, and the two verdicts. Exit status 0 when every shared check
agrees in distribution (intervals overlap, and no verdict is `held` in one and `did not hold` in
the other), 1 otherwise.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from tdgen.errors import InputError
from tdgen.experiments.base import HELD, NOT_HELD
from tdgen.experiments.report import load_results


def _checks(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """(experiment, claim, check) -> `verdicts.Check`; an exact claim as check "exact"."""
    out = {}
    for r in results:
        for c in r["claims"]:
            for name, check in c["checks"].items() or [("exact", None)]:
                out[r["experiment"], c["id"], name] = check if check else c["verdict"]
    return out


def compare(a: Path, b: Path) -> tuple[list[str], bool]:
    """One line per check both reproductions hold, and whether they agree in distribution."""
    left, right = _checks(load_results(Path(a))), _checks(load_results(Path(b)))
    shared = [k for k in left if k in right]
    if not shared:
        raise InputError(f"{a} and {b} share no experiment result: run tdgen reproduce into both")
    lines, agree = [], True
    for key in shared:
        x, y = left[key], right[key]
        undefined = False
        if isinstance(x, str) or isinstance(y, str):  # exact claims: the verdicts alone
            same, overlap, vx, vy = x == y, x == y, str(x), str(y)
        else:
            pairs = zip((x.estimate, x.low, x.high), (y.estimate, y.low, y.high), strict=True)
            same = all(u == v or (math.isnan(u) and math.isnan(v)) for u, v in pairs)
            # An undefined interval (fewer than 2 seeds) has nothing to overlap: not a difference.
            undefined = not all(math.isfinite(v) for v in (x.low, x.high, y.low, y.high))
            overlap = undefined or (x.low <= y.high and y.low <= x.high)
            vx, vy = x.verdict, y.verdict
        flipped = {vx, vy} == {HELD, NOT_HELD}
        agree &= overlap and not flipped
        what = ("bitwise equal" if same else "no interval" if undefined
                else "intervals overlap" if overlap else "DIFFER")  # fmt: skip
        lines.append(f"{'/'.join(key)}: {what}; {vx} vs {vy}" + ("  (verdict flipped)" * flipped))
    return lines, agree


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tdgen.experiments.compare RESULTS_A RESULTS_B", file=sys.stderr)
        return 2
    try:
        lines, agree = compare(Path(argv[0]), Path(argv[1]))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print("agree in distribution" if agree else "do NOT agree in distribution")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
