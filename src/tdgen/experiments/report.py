"""Gather experiment results into `report.md` and `report.html`: figures inline, a table of claims."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tdgen.errors import InputError, read_json, require_fields
from tdgen.experiments.base import HELD, INCONCLUSIVE, NOT_HELD, VERDICTS
from tdgen.experiments.verdicts import Check, deciding


def load_results(out: Path) -> list[dict[str, Any]]:
    """Every `out/*/result.json`, registered experiments first in registry order, then by name."""
    from tdgen.experiments import experiment_names

    order = {name: i for i, name in enumerate(experiment_names())}
    results = [read_result(p) for p in sorted(Path(out).glob("*/result.json"))]
    return sorted(results, key=lambda r: (order.get(r["experiment"], len(order)), r["experiment"]))


def read_result(path: Path) -> dict[str, Any]:
    """An experiment's result.json, checked for the fields the report reads (InputError naming
    the file otherwise). A result written before verdicts had intervals (no `verdict` per claim)
    reads as `held` / `did not hold` from its `holds` (`read_claim`)."""
    what = "an experiment result (tdgen reproduce writes it)"
    result = read_json(path, what)
    require_fields(result, path, what, experiment=str, claims=list, figures=list)
    for claim in result["claims"]:
        require_fields(claim, path, f"{what}: each claim has an id and holds", id=str, holds=bool)
        read_claim(claim, path)
    return result


def read_claim(claim: dict[str, Any], path: Path | str = "result.json") -> dict[str, Any]:
    """``claim`` with its `verdict` (from `holds` when it was written before verdicts had
    intervals) and its `checks` as `verdicts.Check`s; an InputError naming ``path`` otherwise."""
    verdict = claim.setdefault("verdict", HELD if claim["holds"] else NOT_HELD)
    if verdict not in VERDICTS or (verdict == HELD) != claim["holds"]:
        raise InputError(f"{path}: claim {claim['id']} has verdict {verdict!r} and holds "
                         f"{claim['holds']} (expected one of {', '.join(VERDICTS)}, held iff "
                         "holds): rerun tdgen reproduce for it")  # fmt: skip
    try:
        claim["checks"] = {name: t if isinstance(t, Check) else Check.read(t)
                          for name, t in claim.get("checks", {}).items()}  # fmt: skip
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(f"{path}: claim {claim['id']} has unreadable checks ({error}): "
                         "rerun tdgen reproduce for it") from None  # fmt: skip
    return claim


SMOKE = "smoke: not a test of the claim"


def _verdict(claim: dict[str, Any], scale: str = "quick") -> str:
    """A claim's verdict; at smoke scale the rule still runs, on a run too short to check it."""
    return f"{SMOKE} (rule: {claim['verdict']})" if scale == "smoke" else claim["verdict"]


def _scale(result: dict[str, Any]) -> str:
    """The scale, with the preset fields changed by `tdgen reproduce --set` beside it."""
    changed = result.get("overrides") or {}
    return result["scale"] + "".join(f", {k}={json.dumps(v)}" for k, v in changed.items())


def _interval(claim: dict[str, Any]) -> str:
    """The deciding check's estimate and 95% interval (`verdicts.deciding`); exact claims: "exact"."""
    if not claim["checks"]:
        return "exact"
    name, check = deciding(claim["checks"])
    return f"{name}: {check.text()}" if len(claim["checks"]) > 1 else check.text()


def _css(claim: dict[str, Any]) -> str:
    return {HELD: "ok", NOT_HELD: "no"}.get(claim["verdict"], "maybe")


def _summary(results: list[dict[str, Any]]) -> str:
    claims = [(r, c) for r in results for c in r["claims"]]
    tested = [c for r, c in claims if r["scale"] != "smoke"]
    counts = {v: sum(c["verdict"] == v for c in tested) for v in VERDICTS}
    line = (f"{len(results)} experiments, {counts[HELD]} of {len(tested)} claims held, "
            f"{counts[NOT_HELD]} did not hold, {counts[INCONCLUSIVE]} inconclusive")  # fmt: skip
    smoke = len(claims) - len(tested)
    return line + (f"; {smoke} claims at smoke scale ({SMOKE})." if smoke else ".")


def _checks_text(claim: dict[str, Any]) -> list[str]:
    return [f"{name}: {t.text()} -> {t.verdict}" for name, t in claim["checks"].items()]


def _evidence_text(evidence: dict[str, Any], limit: int = 300) -> str:
    text = json.dumps(evidence, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_claims(results: list[dict[str, Any]]) -> None:
    for r in results:
        for c in r["claims"]:
            read_claim(c, f"{r['experiment']}/result.json")


def render_markdown(results: list[dict[str, Any]]) -> str:
    _read_claims(results)
    claims = [(r, c) for r in results for c in r["claims"]]
    lines = [
        "# tdgen reproduction report",
        "",
        "Lyle, Rowland, Dabney, Kwiatkowska, Gal. *Learning Dynamics and Generalization in "
        "Reinforcement Learning*, ICML 2022.",
        "",
        _summary(results),
        "",
        "Measured claims give the estimate (mean over seeds), its 95% t interval with the seed "
        "as the unit (the method and the number of seeds beside it; fewer than 2: no interval, "
        "inconclusive), and the rule's threshold; a claim over several checks shows the one "
        "that decides it. held: the interval clears the threshold; did not hold: it lies on the "
        "wrong side; inconclusive: it straddles it.",
        "",
        "| experiment | paper | scale | seconds | claim | estimate [95% interval] | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r, c in claims:
        lines.append(
            f"| {r['experiment']} | {r['paper_ref']} | {_scale(r)} | {r['seconds']:.1f} "
            f"| {c['id']} | {_interval(c)} | **{_verdict(c, r['scale'])}** |"
        )
    for r in results:
        lines += [
            "",
            f"## {r['experiment']}",
            "",
            f"*{r['paper_ref']}* ({_scale(r)} scale, seed "
            f"{r['seed']}, {r['seconds']:.1f} s). {r.get('description', '')}",
            "",
        ]
        note = r.get("summary", {}).get("note")
        if note:
            lines += [f"Note: {note}", ""]
        for c in r["claims"]:
            lines.append(f"- **{_verdict(c, r['scale'])}**: {c['statement']}  ")
            lines += [f"  - {text}" for text in _checks_text(c)]
            lines.append(f"  evidence: `{_evidence_text(c['evidence'])}`")
        lines.append("")
        lines += [f"![{fig}]({r['experiment']}/{fig})" for fig in r["figures"]]
    return "\n".join(lines) + "\n"


def render_html(results: list[dict[str, Any]]) -> str:
    esc = html.escape
    _read_claims(results)
    claims = [(r, c) for r in results for c in r["claims"]]
    rows = "\n".join(
        f"<tr><td>{esc(r['experiment'])}</td><td>{esc(r['paper_ref'])}</td><td>{esc(_scale(r))}</td>"
        f"<td>{r['seconds']:.1f}</td><td>{esc(c['id'])}</td><td>{esc(_interval(c))}</td>"
        f"<td class='{_css(c)}'>{esc(_verdict(c, r['scale']))}</td></tr>"
        for r, c in claims
    )
    sections = []
    for r in results:
        items = "\n".join(
            f"<li><b class='{_css(c)}'>{esc(_verdict(c, r['scale']))}</b>: {esc(c['statement'])}"
            + "".join(f"<br>{esc(text)}" for text in _checks_text(c))
            + f"<br><code>{esc(_evidence_text(c['evidence']))}</code></li>"
            for c in r["claims"]
        )
        figures = "\n".join(
            f"<img src='{esc(r['experiment'])}/{esc(fig)}' alt='{esc(fig)}'>"
            for fig in r["figures"]
        )
        note = r.get("summary", {}).get("note")
        note_html = f"<p>Note: {esc(note)}</p>" if note else ""
        sections.append(
            f"<h2>{esc(r['experiment'])}</h2><p><i>{esc(r['paper_ref'])}</i> ({esc(_scale(r))} scale, "
            f"seed {r['seed']}, {r['seconds']:.1f} s). {esc(r.get('description', ''))}</p>"
            f"{note_html}<ul>{items}</ul>{figures}"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tdgen reproduction report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
.ok {{ color: #006400; }} .no {{ color: #b00020; }} .maybe {{ color: #8a5a00; }} img {{ max-width: 100%; display: block; margin: 1em 0; }}
code {{ font-size: 85%; }}
</style></head><body>
<h1>tdgen reproduction report</h1>
<p>Lyle, Rowland, Dabney, Kwiatkowska, Gal. <i>Learning Dynamics and Generalization in Reinforcement
Learning</i>, ICML 2022.</p>
<p>{esc(_summary(results))}</p>
<table><tr><th>experiment</th><th>paper</th><th>scale</th><th>seconds</th><th>claim</th>
<th>estimate [95% interval]</th><th>verdict</th></tr>
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
