"""The `tdgen` command.

tdgen list                                   name every experiment
tdgen reproduce [NAME...] [--scale quick|paper] [--out DIR] [--seed N]
tdgen train dqn|c51|qrdqn --env minatar/breakout --preset minatar [--seeds 0 1 2 3] [--out DIR]
tdgen train ppo|daac --env procgen/bigfish --preset procgen [--num-levels 10 ...] [--out DIR]
tdgen distill --teacher RUN --objective bc [--steps N ...] [--out DIR]   distil a trained run
tdgen evaluate RUN [--out DIR]               returns, generalisation gap, robustness, interpolation
tdgen resume RUN_DIR                         continue a run from its latest complete checkpoint
tdgen sweep [SPEC.toml] [--agent ... --env ... --seeds ...] [--backend local|ray|slurm]
tdgen report RUN_DIRS... --out DIR           IQM, stratified bootstrap CIs, performance profiles
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
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
    backend: Literal["inline", "local", "ray", "slurm"] = "inline",
    workers: int | None = None,
    no_jax_cache: bool = False,
) -> None:
    """Run experiments by name (all when none is named), then write out/report.md and report.html.

    Args:
        names: Experiments to run (see `tdgen list`); every experiment when empty.
        scale: `quick` fits a 2-core CPU in minutes; `paper` uses the paper's sizes.
        out: Output folder: one sub-folder per experiment plus the report.
        seed: Seed of every random choice, so one seed gives one result.
        backend: inline runs here; local, ray or slurm hand the experiments (and the training
            runs of Figures 3 and 4) to a sweep backend (tdgen.sweep).
        workers: Local backend: processes in the pool.
        no_jax_cache: Compile every program anew instead of loading programs compiled before
            (default: JAX's persistent compilation cache in $TDGEN_JAX_CACHE or
            ~/.cache/tdgen/jax, shared with `tdgen sweep`; the same numbers either way).
    """
    from tdgen.experiments import experiment_names, get_experiment
    from tdgen.experiments.report import write_report
    from tdgen.experiments.runner import run_experiment

    names = names or tuple(experiment_names())
    for name in names:
        get_experiment(name)  # fail on a typo before any work is done
    if backend != "inline":
        from tdgen.sweep.command import reproduce_main

        report = reproduce_main(names, scale, out, seed, backend, workers)
        console.print(f"report: {report}")
        return
    if not no_jax_cache:
        from tdgen.sweep.launch import default_cache_dir
        from tdgen.sweep.tasks import set_compilation_cache

        set_compilation_cache(default_cache_dir())
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


def resume(run: Annotated[Path, tyro.conf.Positional], progress: bool = True) -> None:
    """Continue a training run from its latest complete checkpoint.

    Args:
        run: The run directory written by `tdgen train`.
        progress: Show a progress bar.
    """
    from tdgen.agents.launch import is_group
    from tdgen.runs import RunDir

    if not is_group(run) and RunDir.open(run).kind == "distill":
        from tdgen.distill import resume_distill

        path = resume_distill(run, progress=progress)
    else:
        from tdgen.agents import resume as resume_run

        path = resume_run(run, progress=progress)
    console.print(f"run: {path}" if isinstance(path, Path) else f"group: {run}")


def evaluate(
    run: Annotated[Path, tyro.conf.Positional],
    out: Path | None = None,
    frames: int = 0,
    seed: int = 0,
    num_states: int = 2_000,
    scales: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5),
    weights: tuple[float, ...] = (0.25, 0.5, 0.75),
    eval_envs: int = 16,
    eval_steps: int = 1_000,
    epsilon: float = 0.01,
) -> None:
    """Evaluate a trained agent or distilled student (Section 6): returns on training and held-out
    levels and the generalisation gap (Eq. 6), robustness to Gaussian input noise, consistency
    under interpolation of observations. Writes evaluation.json, robustness.png, interpolation.png.

    Args:
        run: An agent run (dqn, c51, ppo, daac on MinAtar; ppo, daac on ProcGen) or a distillation
            run (students of those teachers).
        out: Output directory (default: RUN/evaluation).
        frames: The checkpoint to evaluate (its frame or update count; 0: the newest).
        seed: Seed of the evaluation episodes, state draws and noise.
        num_states: Buffer states for robustness and interpolation.
        scales: Noise standard deviations, in the network's input units.
        weights: Mixing weights of the interpolation.
        eval_envs: Environments per return evaluation.
        eval_steps: Steps per evaluation environment.
        epsilon: Exploration of greedy policies (Section 6.1: 0.01).
    """
    from tdgen.policies import evaluate_run

    path = evaluate_run(run, out, frames, seed=seed, num_states=num_states, scales=scales,
                        weights=weights, eval_envs=eval_envs, eval_steps=eval_steps,
                        epsilon=epsilon)  # fmt: skip
    console.print(f"wrote {path}")


def distill(args: list[str]) -> None:
    """`tdgen distill --teacher RUN --objective OBJ [config flags] [--out DIR]`."""
    import argparse

    from tdgen.distill import DistillConfig
    from tdgen.distill import distill as distill_run

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--out", type=Path, default=None)
    pre.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction)
    known, rest = pre.parse_known_args(args)
    config = tyro.cli(
        DistillConfig, args=rest, prog="tdgen distill --teacher RUN --objective OBJ [--out DIR]",
        description="Distil a trained run into a freshly initialised student (Section 6).",
    )  # fmt: skip
    if not config.teacher:
        raise ValueError("tdgen distill needs --teacher RUN_DIR (a dqn, c51, ppo or daac run)")
    teacher = Path(config.teacher)
    out = known.out or teacher.parent / f"{teacher.name}-{config.objective}-seed{config.seed}"
    path = distill_run(config, out, progress=known.progress)
    console.print(f"run: {path}")


def train(args: list[str]) -> None:
    """`tdgen train AGENT --env ENV --preset PRESET [--seeds S ...] [config flags] [--out DIR]`.

    The preset and environment are read first because the preset picks the network for the
    environment; every other config field is then a flag whose default comes from that preset.
    ``--seeds 0 1 2 3`` trains one run per seed as one program (a seed group); ``--lanes`` vmap
    vectorises the seeds, map runs them one after another in the program (bit for bit their solo
    runs), auto (default) takes map on the CPU and vmap on an accelerator.
    """
    import argparse

    from tdgen.agents import AGENTS, get_agent, train_seeds
    from tdgen.agents import train as train_run
    from tdgen.agents.train import DEFAULT_LANES, LANES

    if not args or args[0] in ("-h", "--help"):
        lines = [f"  {name:6s} {spec.family.name:13s} presets: {', '.join(spec.presets)}"
                 for name, spec in AGENTS.items()]  # fmt: skip
        print(
            "usage: tdgen train AGENT --env ENV --preset PRESET [--seeds S ... [--lanes auto|vmap|map]] "
            "[flags]\n\n"
            "agents:\n" + "\n".join(lines) + "\n\n`tdgen train AGENT --help` lists its flags."
        )
        if not args:
            raise ValueError(f"tdgen train needs an agent, one of {', '.join(AGENTS)}")
        return
    agent, rest = args[0], args[1:]
    spec = get_agent(agent)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="minatar", choices=spec.presets)
    pre.add_argument("--env", default="minatar/breakout")
    pre.add_argument("--seeds", type=int, nargs="+", default=None)
    pre.add_argument("--lanes", default=DEFAULT_LANES, choices=LANES)
    pre.add_argument("--out", type=Path, default=None)
    pre.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction)
    known, rest = pre.parse_known_args(rest)
    default = spec.config_cls.preset(known.preset, env=known.env)
    config = tyro.cli(
        spec.config_cls,
        default=default,
        args=rest,
        prog=f"tdgen train {agent} --env {known.env} --preset {known.preset} [--seeds S ...] "
        "[--out DIR]",
        description=f"Train {agent.upper()}; defaults come from the {known.preset!r} preset.",
    )
    name = f"{agent}-{config.env.replace('/', '-')}"
    if known.seeds:
        out = known.out or Path("runs") / f"{name}-seeds{'_'.join(map(str, known.seeds))}"
        paths = train_seeds(agent, config, known.seeds, out, progress=known.progress,
                            lanes=known.lanes)  # fmt: skip
        console.print(f"group: {out} ({len(paths)} runs: {', '.join(p.name for p in paths)})")
        return
    out = known.out or Path("runs") / f"{name}-seed{config.seed}"
    path = train_run(agent, config, out, progress=known.progress)
    console.print(f"run: {path}")


def rank(
    source: Annotated[Path, tyro.conf.Positional],
    batch: Annotated[Path | None, tyro.conf.Positional] = None,
    checkpoint: int | None = None,
    out: Path | None = None,
    reduce: str = "max",
    center: Literal["none", "drift"] = "none",
    method: Literal["exact", "linearized"] = "exact",
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam",
    lr: float = 1e-4,
    eps: float = 0.1,
) -> None:
    """Update rank and update-matrix heatmaps, from a run's checkpoint or from saved files.

    `tdgen rank runs/NAME [--checkpoint FRAMES]` recomputes the probe of a training run from a
    checkpoint (the newest by default). `tdgen rank PARAMS.msgpack BATCH.npz` measures a saved MLP
    on a saved batch (file formats: `tdgen.interference.command`).

    Args:
        source: A run directory, or a params file (.msgpack).
        batch: With a params file: the batch of transitions (.npz).
        checkpoint: With a run: the frame of the checkpoint to probe (default: the newest).
        out: Where heatmaps go (default: RUN/rank or the current folder).
        reduce: With files: output reduction (max, mean, action, index, none, ...).
        center: With files: "drift" removes the optimiser's zero-gradient step (momentum).
        method: With files: "exact" (the definition) or "linearized" (first order in the step).
        optimizer: With files: the optimiser taking the single-transition steps.
        lr: With files: its learning rate.
        eps: Singular values above eps times the largest count towards the rank.
    """
    from tdgen.interference import plot_singular_values, plot_update_matrix, update_rank

    if source.is_dir():
        from tdgen.agents import probe_checkpoint
        from tdgen.agents.probes import VALUE

        result = probe_checkpoint(source, checkpoint)
        out = out or source / "rank"
        out.mkdir(parents=True, exist_ok=True)
        for label, matrices in (
            ("trained", result.matrices[VALUE]),
            ("random", result.matrices_random[VALUE]),
        ):
            A = np.asarray(matrices[0])
            console.print(f"{label} parameters: update rank {update_rank(A, eps=eps)} (k={len(A)})")
            title = f"{label} parameters, frame {result.frames}"
            plot_update_matrix(A, title=title).savefig(out / f"update_matrix_{label}.png")
            plot_singular_values(A, eps=eps).savefig(out / f"singular_values_{label}.png")
        result.save(out)
        console.print(f"wrote {out}")
        return
    if batch is None:
        raise ValueError(f"{source} is not a run directory; with a params file, give a batch .npz")
    from tdgen.interference.command import rank_main

    rank_main(source, batch, out_dir=out or Path("."), optimizer=optimizer, lr=lr, reduce=reduce,
              center=center, method=method, eps=eps)  # fmt: skip


def _sweep_commands() -> dict:
    from tdgen.sweep.command import report_main, sweep_main

    return {"sweep": sweep_main, "report": report_main}


COMMANDS = {
    "list": list_experiments,
    "reproduce": reproduce,
    "resume": resume,
    "rank": rank,
    "evaluate": evaluate,
}


def main(args: list[str] | None = None) -> None:
    """Entry point of the `tdgen` console script.

    Bad input prints one line and exits with status 2; set TDGEN_DEBUG=1 for the traceback.
    """
    args = sys.argv[1:] if args is None else list(args)
    try:
        if args and args[0] == "train":
            train(args[1:])
            return
        if args and args[0] == "distill":
            distill(args[1:])
            return
        commands = dict(COMMANDS)
        if args and args[0] in ("sweep", "report", "--help", "-h"):
            commands.update(_sweep_commands())  # imports the sweep package only when asked
        tyro.extras.subcommand_cli_from_dict(
            commands,
            prog="tdgen",
            args=args,
            description=__doc__ + "\nRun `tdgen train dqn --help` for the training flags.",
        )
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("TDGEN_DEBUG"):
            raise
        console.print(f"tdgen: error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
