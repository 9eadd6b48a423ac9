"""`tdgen report RUN_DIRS... --out DIR`: aggregate runs across seeds and tasks, honestly.

Writes ``DIR/aggregate.json`` (every number), ``DIR/report.md`` and ``DIR/report.html`` with the
figures of `tdgen.sweep.figures`: per algorithm the IQM, mean and median (and optimality gap of
normalised scores) with 95% stratified bootstrap intervals, performance profiles, probability of
improvement between algorithms, per-task scores of every seed, and metric curves over frames.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tdgen.errors import InputError, make_dir, read_json, read_toml
from tdgen.sweep import aggregate as agg
from tdgen.sweep.collect import ScoreTable, load_runs, score_table
from tdgen.sweep.figures import write_figures

# drawn besides the score metric when logged (the paper's rank, or the drift-centred one)
CURVE_METRICS = ("interference/update_rank", "interference/update_rank_drift")


def read_bounds(normalize: str, table: ScoreTable) -> dict[str, tuple[float, float]] | None:
    """Per-task (low, high) for ``normalize``: "none", "observed" (min and max of all runs on the
    task) or a TOML/JSON file mapping each env to [low, high] (e.g. random and human scores)."""
    if normalize == "none":
        return None
    if normalize == "observed":
        return agg.observed_bounds(table.scores)
    path = Path(normalize)
    if not path.is_file():
        raise InputError(
            f"--normalize takes none, observed or a TOML/JSON file of env = [low, high]; "
            f"{normalize!r} is none of them"
        )
    what = "a normalisation table: env = [low, high] per task, low < high"
    data = read_json(path, what) if path.suffix == ".json" else read_toml(path, what)
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a {type(data).__name__}, expected {what}")
    bounds = {}
    for env, pair in data.items():
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise InputError(f"{path}: {env} = {pair!r}, expected {what}") from None
        if not low < high:
            raise InputError(f"{path}: {env} = {pair!r}, expected {what}")
        bounds[env] = (low, high)
    missing = sorted(set(table.tasks) - set(bounds))
    if missing:
        raise InputError(f"{path} has no bounds for {', '.join(missing)} ({what})")
    return bounds


def _interval(point: Any, low: Any, high: Any) -> dict[str, Any]:
    return {"point": np.asarray(point).tolist(), "low": np.asarray(low).tolist(),
            "high": np.asarray(high).tolist()}  # fmt: skip


def summarise(
    table: ScoreTable,
    bounds: Mapping[str, tuple[float, float]] | None,
    *,
    reps: int = 2_000,
    seed: int = 0,
    taus: int = 101,
) -> dict[str, Any]:
    """Every statistic of the report as plain JSON values (intervals: 95% percentile)."""
    scores = agg.normalise(table.scores, bounds) if bounds else table.scores
    summary: dict[str, Any] = {
        "metric": table.metric, "last": table.last, "reps": reps, "seed": seed,
        "normalised": bounds is not None,
        "bounds": {k: list(v) for k, v in (bounds or {}).items()},
        "score_label": "normalised score" if bounds else "score",
        "algorithms": table.algorithms, "tasks": table.tasks,
        "excluded": [[str(p), why] for p, why in table.excluded],
        "per_task": {}, "aggregate": {}, "improvement": {},
    }  # fmt: skip
    for algorithm in table.algorithms:
        for task, raw in sorted(table.scores[algorithm].items()):
            summary["per_task"].setdefault(algorithm, {})[task] = {
                "seeds": [r.seed for r in table.runs[algorithm][task]],
                "scores": raw.tolist(),
                "runs": [str(r.path) for r in table.runs[algorithm][task]],
                "mean": float(np.mean(raw)),
                "std": float(np.std(raw, ddof=1)) if len(raw) > 1 else 0.0,
            }
    names = ["iqm", "mean", "median"] + (["optimality_gap"] if bounds else [])
    # Aggregates across tasks are computed on the tasks every algorithm ran, so they compare.
    tasks = table.common_tasks(table.algorithms)
    summary["aggregate_tasks"] = tasks
    if tasks:
        pooled = np.concatenate([scores[a][t] for a in table.algorithms for t in tasks])
        low, high = (0.0, 1.0) if bounds else (float(pooled.min()), float(pooled.max()))
        grid = np.linspace(min(low, pooled.min()), max(high, pooled.max()), taus)
        summary["profile"] = {"taus": grid.tolist(), "curves": {}}
        for algorithm in table.algorithms:
            per_task = [scores[algorithm][t] for t in tasks]
            summary["aggregate"][algorithm] = {
                name: _interval(*agg.stratified_bootstrap(agg.STATISTICS[name], per_task,
                                                          reps=reps, seed=seed))
                for name in names
            }  # fmt: skip
            profile = agg.stratified_bootstrap(
                lambda s: agg.performance_profile(s, grid), per_task, reps=reps, seed=seed
            )
            summary["profile"]["curves"][algorithm] = _interval(*profile)
        for x, y in itertools.permutations(table.algorithms, 2):
            estimate = agg.stratified_bootstrap(
                agg.probability_of_improvement, [scores[x][t] for t in tasks],
                [scores[y][t] for t in tasks], reps=reps, seed=seed,
            )  # fmt: skip
            summary["improvement"][f"{x} > {y}"] = _interval(*estimate)
    counts = {len(v) for per in table.scores.values() for v in per.values()}
    summary["unequal_seeds"] = len(counts) > 1
    return summary


def _fmt(interval: Mapping[str, Any]) -> str:
    return f"{interval['point']:.3g} [{interval['low']:.3g}, {interval['high']:.3g}]"


STATISTICS_NOTE = (
    "Statistics follow rliable (Agarwal et al. 2021, *Deep RL at the Edge of the Statistical "
    "Precipice*). A run's score is the mean of the last {last} logged values of `{metric}`. "
    "**IQM** is the mean of the middle 50% of all run scores pooled across tasks: robust to "
    "outlier runs, less noisy than the median. **Mean** and **median** are over tasks of each "
    "task's mean score. Intervals are 95% percentile intervals of a **stratified bootstrap** "
    "({reps} resamples, seed {seed}): the runs of each task are resampled with replacement, so "
    "they say how much the estimate would move with other seeds on the same tasks (not other "
    "tasks). The **performance profile** is the fraction of all runs scoring above each threshold. "
    "**P(X > Y)** is the probability that a run of X beats a run of Y on a task, averaged over "
    "tasks. These intervals are **descriptive**: their coverage is not tested, and a percentile "
    "bootstrap over few seeds covers less than it states (at 2 seeds a '95%' interval of a mean "
    "covers the truth about half the time). The claims of `tdgen reproduce` use t intervals "
    "whose coverage is tested (`tdgen.stats`)."
)


def render_markdown(summary: Mapping[str, Any], figures: Sequence[str]) -> str:
    lines = ["# tdgen sweep report", ""]
    n_runs = sum(len(t["scores"]) for per in summary["per_task"].values() for t in per.values())
    lines += [
        f"{n_runs} runs, {len(summary['algorithms'])} algorithms, {len(summary['tasks'])} tasks. "
        f"Score: mean of the last {summary['last']} values of `{summary['metric']}`"
        + ("; normalised per task to [low, high] = " + ", ".join(
            f"{t}: [{lo:.3g}, {hi:.3g}]" for t, (lo, hi) in summary["bounds"].items())
           if summary["normalised"] else "; raw (not normalised)") + ".",
        "",
        STATISTICS_NOTE.format(**summary),
        "",
    ]  # fmt: skip
    if summary["unequal_seeds"]:
        lines += ["**Note:** tasks hold different numbers of runs; pooled statistics (IQM, "
                  "profiles) weigh a task by its number of runs.", ""]  # fmt: skip
    if summary["aggregate"]:
        names = list(next(iter(summary["aggregate"].values())))
        lines += [f"## Aggregate over {len(summary['aggregate_tasks'])} tasks", "",
                  "| algorithm | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]  # fmt: skip
        for algorithm, s in summary["aggregate"].items():
            lines.append(f"| {algorithm} | " + " | ".join(_fmt(s[n]) for n in names) + " |")
        lines.append("")
    if summary["improvement"]:
        lines += ["## Probability of improvement", "", "| comparison | P(X > Y) [95% CI] |",
                  "|---|---|"]  # fmt: skip
        lines += [f"| {k} | {_fmt(v)} |" for k, v in summary["improvement"].items()]
        lines.append("")
    lines += ["## Per task", "", "| algorithm | task | runs | mean | std | scores (by seed) |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for algorithm, per in summary["per_task"].items():
        for task, t in per.items():
            scores = ", ".join(
                f"s{s}: {v:.3g}" for s, v in zip(t["seeds"], t["scores"], strict=True)
            )
            lines.append(f"| {algorithm} | {task} | {len(t['scores'])} | {t['mean']:.3g} | "
                         f"{t['std']:.3g} | {scores} |")  # fmt: skip
    lines.append("")
    if summary["excluded"]:
        lines += ["## Excluded runs", ""]
        lines += [f"- `{path}`: {why}" for path, why in summary["excluded"]]
        lines.append("")
    lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def render_html(markdown: str) -> str:
    """The markdown report as HTML: tables, headings, paragraphs, lists and images."""
    body, table, rows = [], False, []

    def inline(text: str) -> str:
        text = html.escape(text)
        for mark, tag in (("**", "b"), ("`", "code"), ("*", "i")):
            parts = text.split(mark)
            text = "".join(p if i % 2 == 0 else f"<{tag}>{p}</{tag}>" for i, p in enumerate(parts))
        return text

    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= {"-"}:
                rows.append(cells)
            table = True
            continue
        if table:
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                                  for r in rest) + "</table>")  # fmt: skip
            table, rows = False, []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1 : -1]
            body.append(f"<img src='{html.escape(src)}' alt='{html.escape(src)}'>")
        elif line.startswith("- "):
            body.append(f"<ul><li>{inline(line[2:])}</li></ul>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tdgen sweep report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; line-height: 1.4; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
img {{ max-width: 100%; display: block; margin: 1em 0; }} code {{ font-size: 85%; }}
ul {{ margin: 0; }}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""


def write_sweep_report(
    run_dirs: Sequence[Path],
    out: Path,
    *,
    metric: str | None = None,
    last: int = 3,
    normalize: str = "observed",
    reps: int = 2_000,
    seed: int = 0,
    include_incomplete: bool = False,
    curve_metrics: Sequence[str] = CURVE_METRICS,
) -> Path:
    """Aggregate the runs at or below ``run_dirs`` into ``out``; returns the path of report.md."""
    runs = load_runs(run_dirs)
    if not runs:
        raise InputError(
            f"no run directories (config.json + metrics.jsonl) under {list(map(str, run_dirs))}"
        )
    table = score_table(runs, metric, last, include_incomplete)
    if not table.scores:
        reasons = "; ".join(f"{p}: {why}" for p, why in table.excluded[:3])
        raise InputError(
            f"no run could be scored ({reasons}); try --include-incomplete or --metric"
        )
    summary = summarise(table, read_bounds(normalize, table), reps=reps, seed=seed)
    out = make_dir(out, "the folder of the report")
    wanted = [table.metric, *[m for m in curve_metrics if m != table.metric]]
    figures = write_figures(table, summary, out, wanted)
    summary["figures"] = figures
    (out / "aggregate.json").write_text(json.dumps(summary, indent=2))
    markdown = render_markdown(summary, figures)
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(render_html(markdown))
    return out / "report.md"


__all__ = ["read_bounds", "render_html", "render_markdown", "summarise", "write_sweep_report"]
