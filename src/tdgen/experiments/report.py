"""Gather experiment results into `report.md` and `report.html`: figures inline, a table of claims."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tdgen.errors import read_json, require_fields


def load_results(out: Path) -> list[dict[str, Any]]:
    """Every `out/*/result.json`, registered experiments first in registry order, then by name."""
    from tdgen.experiments import experiment_names

    order = {name: i for i, name in enumerate(experiment_names())}
    results = [read_result(p) for p in sorted(Path(out).glob("*/result.json"))]
    return sorted(results, key=lambda r: (order.get(r["experiment"], len(order)), r["experiment"]))


def read_result(path: Path) -> dict[str, Any]:
    """An experiment's result.json, checked for the fields the report reads (InputError naming
    the file otherwise)."""
    what = "an experiment result (tdgen reproduce writes it)"
    result = read_json(path, what)
    require_fields(result, path, what, experiment=str, claims=list, figures=list)
    for claim in result["claims"]:
        require_fields(claim, path, f"{what}: each claim has an id and holds", id=str, holds=bool)
    return result


SMOKE = "smoke: not a test of the claim"


def _verdict(holds: bool, scale: str = "quick") -> str:
    """A claim's verdict; at smoke scale the rule still runs, on a run too short to test it."""
    rule = "held" if holds else "did not hold"
    return f"{SMOKE} (rule: {rule})" if scale == "smoke" else rule


def _summary(results: list[dict[str, Any]]) -> str:
    claims = [(r, c) for r in results for c in r["claims"]]
    tested = [c for r, c in claims if r["scale"] != "smoke"]
    line = f"{len(results)} experiments, {sum(c['holds'] for c in tested)} of {len(tested)} claims held"
    smoke = len(claims) - len(tested)
    return line + (f"; {smoke} claims at smoke scale ({SMOKE})." if smoke else ".")


def _evidence_text(evidence: dict[str, Any], limit: int = 300) -> str:
    text = json.dumps(evidence, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_markdown(results: list[dict[str, Any]]) -> str:
    claims = [(r, c) for r in results for c in r["claims"]]
    lines = [
        "# tdgen reproduction report",
        "",
        "Lyle, Rowland, Dabney, Kwiatkowska, Gal. *Learning Dynamics and Generalization in "
        "Reinforcement Learning*, ICML 2022.",
        "",
        _summary(results),
        "",
        "| experiment | paper | scale | seconds | claim | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r, c in claims:
        lines.append(
            f"| {r['experiment']} | {r['paper_ref']} | {r['scale']} | {r['seconds']:.1f} "
            f"| {c['id']} | **{_verdict(c['holds'], r['scale'])}** |"
        )
    for r in results:
        lines += [
            "",
            f"## {r['experiment']}",
            "",
            f"*{r['paper_ref']}* ({r['scale']} scale, seed "
            f"{r['seed']}, {r['seconds']:.1f} s). {r.get('description', '')}",
            "",
        ]
        note = r.get("summary", {}).get("note")
        if note:
            lines += [f"Note: {note}", ""]
        for c in r["claims"]:
            lines.append(f"- **{_verdict(c['holds'], r['scale'])}**: {c['statement']}  ")
            lines.append(f"  evidence: `{_evidence_text(c['evidence'])}`")
        lines.append("")
        lines += [f"![{fig}]({r['experiment']}/{fig})" for fig in r["figures"]]
    return "\n".join(lines) + "\n"


def render_html(results: list[dict[str, Any]]) -> str:
    esc = html.escape
    claims = [(r, c) for r in results for c in r["claims"]]
    rows = "\n".join(
        f"<tr><td>{esc(r['experiment'])}</td><td>{esc(r['paper_ref'])}</td><td>{esc(r['scale'])}</td>"
        f"<td>{r['seconds']:.1f}</td><td>{esc(c['id'])}</td>"
        f"<td class='{'ok' if c['holds'] else 'no'}'>{_verdict(c['holds'], r['scale'])}</td></tr>"
        for r, c in claims
    )
    sections = []
    for r in results:
        items = "\n".join(
            f"<li><b class='{'ok' if c['holds'] else 'no'}'>{_verdict(c['holds'], r['scale'])}</b>: "
            f"{esc(c['statement'])}<br><code>{esc(_evidence_text(c['evidence']))}</code></li>"
            for c in r["claims"]
        )
        figures = "\n".join(
            f"<img src='{esc(r['experiment'])}/{esc(fig)}' alt='{esc(fig)}'>"
            for fig in r["figures"]
        )
        note = r.get("summary", {}).get("note")
        note_html = f"<p>Note: {esc(note)}</p>" if note else ""
        sections.append(
            f"<h2>{esc(r['experiment'])}</h2><p><i>{esc(r['paper_ref'])}</i> ({esc(r['scale'])} scale, "
            f"seed {r['seed']}, {r['seconds']:.1f} s). {esc(r.get('description', ''))}</p>"
            f"{note_html}<ul>{items}</ul>{figures}"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tdgen reproduction report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
.ok {{ color: #006400; }} .no {{ color: #b00020; }} img {{ max-width: 100%; display: block; margin: 1em 0; }}
code {{ font-size: 85%; }}
</style></head><body>
<h1>tdgen reproduction report</h1>
<p>Lyle, Rowland, Dabney, Kwiatkowska, Gal. <i>Learning Dynamics and Generalization in Reinforcement
Learning</i>, ICML 2022.</p>
<p>{esc(_summary(results))}</p>
<table><tr><th>experiment</th><th>paper</th><th>scale</th><th>seconds</th><th>claim</th><th>verdict</th></tr>
{rows}
</table>
{"".join(sections)}
</body></html>
"""


def write_report(out: Path) -> Path:
    """Write `out/report.md` and `out/report.html` from the results under `out`; return the md path."""
    out = Path(out)
    results = load_results(out)
    (out / "report.md").write_text(render_markdown(results))
    (out / "report.html").write_text(render_html(results))
    return out / "report.md"
