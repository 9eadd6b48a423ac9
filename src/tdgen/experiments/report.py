"""Gather experiment results into `report.md` and `report.html`: figures inline, a table of claims."""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
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


def decided_by(claim: dict[str, Any]) -> str:
    """What decided the claim's verdict: its one check's estimate, interval, method and n; for a
    claim over several checks, how many held (the count its rule reads), and the check that
    decided it only where that check agrees with the verdict (`verdicts.deciding`): a claim held
    in 8 of 12 cells does not show one of the cells that did not hold. Exact claims: "exact"."""
    checks = claim["checks"]
    if not checks:
        return "exact"
    if len(checks) == 1:
        return next(iter(checks.values())).text()
    counts = Counter(check.verdict for check in checks.values())
    text = ", ".join([f"{counts[HELD]}/{len(checks)} checks held"]
                     + [f"{counts[v]} {v}" for v in (NOT_HELD, INCONCLUSIVE) if counts[v]])  # fmt: skip
    name, check = deciding(checks)
    if check.verdict == claim["verdict"]:
        label = {HELD: "closest to its threshold", NOT_HELD: "one that did not hold"}.get(
            check.verdict, "one inconclusive"
        )
        text += f"; {label}: {name}: {check.text()}"
    return text


def _counted_checks(results: list[dict[str, Any]]) -> tuple[int, int]:
    """(claims, checks) at a tested scale (not smoke)."""
    claims = [c for r in results if r["scale"] != "smoke" for c in r["claims"]]
    return len(claims), sum(len(c["checks"]) for c in claims)


def paper_seeds(experiment: str) -> int | None:
    """The fewest seeds any part of ``experiment``'s paper preset runs (its ``num_seeds``, or its
    sub-configs'); None for an experiment this tdgen does not know or one without seeds."""
    from tdgen.experiments import experiment_names, get_experiment

    if experiment not in experiment_names():
        return None
    config = get_experiment(experiment).config("paper")
    found = [config.num_seeds] if hasattr(config, "num_seeds") else []
    found += [getattr(config, f.name).num_seeds for f in dataclasses.fields(config)
              if hasattr(getattr(config, f.name), "num_seeds")]  # fmt: skip
    return min(found) if found else None


def _verdict_cell(claim: dict[str, Any], result: dict[str, Any]) -> str:
    """The verdict; an inconclusive one at quick scale names the paper preset's seeds."""
    verdict = _verdict(claim, result["scale"])
    if claim["verdict"] == INCONCLUSIVE and result["scale"] == "quick":
        seeds = paper_seeds(result["experiment"])
        verdict += f" (paper preset: {seeds} seeds)" if seeds else ""
    return verdict


def seeds_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown: per check of every claim at a tested scale, the seeds at which its interval, at
    the spread it observed, would be narrower than the distance between its estimate and the
    rule's threshold (`verdicts.Check.seeds_to_decide`); "-": no spread observed (n < 2)."""
    lines = ["| experiment | claim | check | verdict | n | estimate - threshold | "
             "seeds to decide |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        if r["scale"] == "smoke":
            continue
        for c in r["claims"]:
            for name, check in c["checks"].items():
                need = check.seeds_to_decide()
                lines.append(
                    f"| {r['experiment']} | {c['id']} | {name} | {check.verdict} | "
                    f"{check.n} {check.unit} | {check.estimate - check.threshold:+.3g} | "
                    f"{'-' if need is None else need} |"
                )
    return lines


def method_text(results: list[dict[str, Any]]) -> str:
    """The report's preamble: how intervals are made, the coverage they were tested to give, and
    how many verdicts chance alone is expected to get wrong."""
    claims, checks = _counted_checks(results)
    return (
        "Each check gives the estimate (the mean over seeds), its 95% t interval with the seed as "
        "the unit, and the rule's threshold; beside it, the method (Student t: one group of seeds; "
        "Welch t: two independent groups; pooled t: a mean over games), n and what n counts. "
        "Probes, windows and episodes are averaged within a seed first; fewer than 2 units give no "
        "interval (inconclusive). Simulated with normal seed effects at 2 to 10 seeds, these "
        "intervals cover the truth 92.4% to 97.7% of the time (Student t 94.8-95.0%; a t "
        "interval on per-seed rank correlations 92.4-94.6%; `tdgen.stats`); with skewed seed "
        "effects less (lognormal: 82-90%). held: the interval clears the threshold; did not hold: "
        "it lies on the other side; inconclusive: it straddles it. A check is called wrongly only "
        "when its interval misses the truth on the far side of its threshold, at most about 2.5% "
        f"of checks at 95% coverage: among the {checks} checks of these {claims} claims, about "
        f"{0.025 * checks:.1f} wrong calls are expected by chance alone. A claim over several "
        "checks shows the count its rule reads."
    )


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
    lines = [
        "# tdgen reproduction report",
        "",
        "Lyle, Rowland, Dabney, Kwiatkowska, Gal. *Learning Dynamics and Generalization in "
        "Reinforcement Learning*, ICML 2022.",
        "",
        _summary(results),
        "",
        method_text(results),
        "",
        "| claim | decided by | verdict |",
        "|---|---|---|",
    ]
    for r in results:
        lines.append(f"| **{r['experiment']}**: {r['paper_ref']} ({_scale(r)}, "
                     f"{r['seconds']:.1f} s) | | |")  # fmt: skip
        lines += [f"| {c['id']} | {decided_by(c)} | **{_verdict_cell(c, r)}** |"
                  for c in r["claims"]]  # fmt: skip
    lines += [
        "",
        "## Seeds each check needs",
        "",
        "At the seed-to-seed spread each check observed, the seeds per group at which its "
        "interval's half-width would be smaller than the distance between its estimate and the "
        "threshold: a planning figure, not a guarantee (at that count about half of reruns "
        "decide). Checks that already decide show how many seeds would have sufficed.",
        "",
        *seeds_table(results),
    ]
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
    rows = []
    for r in results:
        rows.append(f"<tr class='group'><th colspan='3'>{esc(r['experiment'])}: "
                    f"<i>{esc(r['paper_ref'])}</i> ({esc(_scale(r))}, {r['seconds']:.1f} s)"
                    "</th></tr>")  # fmt: skip
        rows += [f"<tr><td>{esc(c['id'])}</td><td>{esc(decided_by(c))}</td>"
                 f"<td class='{_css(c)}'>{esc(_verdict_cell(c, r))}</td></tr>"
                 for c in r["claims"]]  # fmt: skip
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
    table_rows = "\n".join(rows)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tdgen reproduction report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }}
tr.group th {{ background: #f0f0f0; font-weight: normal; }}
col.claim {{ width: 27%; }} col.verdict {{ width: 13%; }}
.ok {{ color: #006400; }} .no {{ color: #b00020; }} .maybe {{ color: #8a5a00; }} img {{ max-width: 100%; display: block; margin: 1em 0; }}
code {{ font-size: 85%; }}
</style></head><body>
<h1>tdgen reproduction report</h1>
<p>Lyle, Rowland, Dabney, Kwiatkowska, Gal. <i>Learning Dynamics and Generalization in Reinforcement
Learning</i>, ICML 2022.</p>
<p>{esc(_summary(results))}</p>
<p>{esc(method_text(results).replace("`", ""))}</p>
<table><colgroup><col class="claim"><col><col class="verdict"></colgroup>
<tr><th>claim</th><th>decided by</th><th>verdict</th></tr>
{table_rows}
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
