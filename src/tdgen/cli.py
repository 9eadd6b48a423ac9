"""The `tdgen` command: `tdgen list`, `tdgen reproduce [NAME...] [--scale quick|paper] [--out DIR]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro
from rich.console import Console

console = Console(stderr=True)


def list_experiments() -> None:
    """Name every experiment with its paper reference."""
    from tdgen.experiments import experiment_names, get_experiment

    for name in experiment_names():
        experiment = get_experiment(name)
        print(f"{name:34s} {experiment.paper_ref:28s} {experiment.description}")


def reproduce(
    names: Annotated[tuple[str, ...], tyro.conf.Positional] = (),
    scale: Literal["quick", "paper"] = "quick",
    out: Path = Path("results"),
    seed: int = 0,
) -> None:
    """Run experiments by name (all when none is named), then write out/report.md and report.html.

    Args:
        names: Experiments to run (see `tdgen list`); every experiment when empty.
        scale: `quick` fits a 2-core CPU in minutes; `paper` uses the paper's sizes.
        out: Output folder: one sub-folder per experiment plus the report.
        seed: Seed of every random choice, so one seed gives one result.
    """
    from tdgen.experiments import experiment_names, get_experiment
    from tdgen.experiments.report import write_report
    from tdgen.experiments.runner import run_experiment

    names = names or tuple(experiment_names())
    for name in names:
        get_experiment(name)  # fail on a typo before any work is done
    for i, name in enumerate(names, 1):
        with console.status(f"[{i}/{len(names)}] {name} ({scale})"):
            result = run_experiment(name, scale, seed, out)
        held = sum(c["holds"] for c in result["claims"])
        console.print(
            f"[{i}/{len(names)}] {name}: {held}/{len(result['claims'])} claims held "
            f"({result['seconds']:.1f} s)"
        )
        for claim in result["claims"]:
            mark = "[green]held[/]" if claim["holds"] else "[red]did not hold[/]"
            console.print(f"    {mark}  {claim['id']}")
    report = write_report(out)
    console.print(f"report: {report} (and {report.with_suffix('.html')})")


COMMANDS = {"list": list_experiments, "reproduce": reproduce}


def main(args: list[str] | None = None) -> None:
    """Entry point of the `tdgen` console script.

    Bad input prints one line and exits with status 2; set TDGEN_DEBUG=1 for the traceback.
    """
    try:
        tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="tdgen", args=args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("TDGEN_DEBUG"):
            raise
        console.print(f"tdgen: error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
