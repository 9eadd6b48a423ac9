"""The `tdgen` command: `tdgen --help` lists the commands, `tdgen COMMAND --help` their options.

Bad input (an InputError: a file, an option, a config field) prints one line `tdgen: error: ...`
naming it and exits 2; a fault of the environment (disk full, permission denied, out of memory)
prints one line naming the fault and exits 1; SIGTERM during training checkpoints and exits 143
(docs/errors.md). Anything else is a bug: its traceback, a line asking for a
report, exit 1. TDGEN_DEBUG=1 re-raises every error for its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro
from rich.console import Console

from tdgen.arguments import ArgumentParser, parse, require, table
from tdgen.errors import InputError, Interrupted, ReportedFailure, make_dir

console = Console(stderr=True)


def list_experiments() -> None:
    """Name every experiment with its paper reference."""
    from tdgen.experiments import experiment_names, get_experiment

    rows = [("experiment", "paper", "what it shows")]
    rows += [(n, get_experiment(n).paper_ref, get_experiment(n).description)
             for n in experiment_names()]  # fmt: skip
    print(table(rows))


def reproduce(
    names: Annotated[tuple[str, ...], tyro.conf.Positional] = (),
    scale: Literal["smoke", "quick", "paper"] = "quick",
    out: Path = Path("results"),
    seed: int = 0,
    backend: Literal["inline", "local", "ray", "slurm"] = "inline",
    workers: int | None = None,
    no_jax_cache: bool = False,
    keep_replay: bool = False,
    overrides: Annotated[tuple[str, ...], tyro.conf.arg(name="set", metavar="FIELD=VALUE")] = (),
) -> None:
    """Run experiments by name (all when none is named), then write out/report.md and report.html.

    Args:
        names: Experiments to run (see `tdgen list`); when empty, every experiment but the
            opt-in ones beyond the paper (`tdgen.experiments.OPT_IN`), which run when named.
        scale: `quick` fits a 2-core CPU in minutes; `paper` uses the paper's sizes; `smoke` runs
            the paper's code paths (games, networks, envpool, replay) with schedules cut to a
            few iterations (its verdicts are not tests of the claims).
        out: Output folder: one sub-folder per experiment plus the report.
        seed: Seed of every random choice, so one seed gives one result.
        backend: inline runs here; local, ray or slurm hand the experiments (and the training
            runs of Figures 3 and 4) to a sweep backend (tdgen.sweep).
        workers: Local backend: processes in the pool.
        no_jax_cache: Compile every program anew instead of loading programs compiled before
            (default: JAX's persistent compilation cache in $TDGEN_JAX_CACHE or
            ~/.cache/tdgen/jax, shared with `tdgen sweep`; the same numbers either way).
        keep_replay: Every training run keeps its final replay buffer once finished (stored
            compressed); by default only the runs whose replay an experiment reads keep it
            (Figure 8's, distillation teachers').
        overrides: Change fields of the preset, e.g. `--set frames=555000 num_seeds=5` (values
            as JSON, else text; `teacher.frames=...` for a nested config); every named
            experiment must have the fields. The report shows them beside the scale.
    """
    from tdgen.experiments import default_experiment_names, get_experiment
    from tdgen.experiments.report import SMOKE, load_results, write_report
    from tdgen.experiments.runner import run_experiment

    require(workers is None or workers >= 1, "--workers", "a pool size >= 1", workers)
    require(seed >= 0, "--seed", "a seed >= 0", seed)
    names = names or tuple(default_experiment_names())
    for name in names:
        get_experiment(name)  # fail on a typo before any work is done
    configs = {}
    if overrides:
        from tdgen.experiments.runner import preset_with

        require(backend == "inline", "--backend", "inline with --set", backend)
        for name in names:
            try:
                configs[name] = preset_with(name, scale, overrides)
            except InputError as error:
                raise InputError(f"--set: {error}") from None
    load_results(out)  # and on a damaged result.json the report would read at the end
    if keep_replay:
        from tdgen.runs.rundir import keep_every_replay

        keep_every_replay()
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
            result = run_experiment(name, scale, seed, out, *configs.get(name, ()))
        held = sum(c["verdict"] == "held" for c in result["claims"])
        tested = "" if scale != "smoke" else f" ({SMOKE})"
        console.print(
            f"[{i}/{len(names)}] {name}: {held}/{len(result['claims'])} claims held{tested} "
            f"({result['seconds']:.1f} s)"
        )
        colours = {"held": "green", "did not hold": "red", "inconclusive": "yellow"}
        for claim in result["claims"]:
            verdict = claim["verdict"]
            console.print(f"    [{colours[verdict]}]{verdict}[/]  {claim['id']}")
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
        num_states: States the policy visits from fresh environments (held out from every
            buffer), for robustness and interpolation.
        scales: Noise standard deviations, in the network's input units.
        weights: Mixing weights of the interpolation.
        eval_envs: Environments per return evaluation.
        eval_steps: Steps per evaluation environment.
        epsilon: Exploration of greedy policies (Section 6.1: 0.01).
    """
    from tdgen.policies import evaluate_run

    require(frames >= 0, "--frames", "a frame count >= 0 (0: the newest checkpoint)", frames)
    for option, value in (("--num-states", num_states), ("--eval-envs", eval_envs),
                          ("--eval-steps", eval_steps)):  # fmt: skip
        require(value >= 1, option, "a count >= 1", value)
    require(0.0 <= epsilon <= 1.0, "--epsilon", "a probability in [0, 1]", epsilon)
    require(all(s >= 0 for s in scales), "--scales", "standard deviations >= 0", scales)
    require(all(0 <= w <= 1 for w in weights), "--weights", "weights in [0, 1]", weights)
    path = evaluate_run(run, out, frames, seed=seed, num_states=num_states, scales=scales,
                        weights=weights, eval_envs=eval_envs, eval_steps=eval_steps,
                        epsilon=epsilon)  # fmt: skip
    console.print(f"wrote {path}")


def distill(args: list[str]) -> None:
    """`tdgen distill --teacher RUN --objective OBJ [config flags] [--out DIR]`."""
    from tdgen.distill import DistillConfig
    from tdgen.distill import distill as distill_run

    pre = ArgumentParser(prog="tdgen distill", add_help=False)
    pre.add_argument("--out", type=Path, default=None)
    pre.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction)
    known, rest = pre.parse_known_args(args)
    config = parse(
        DistillConfig, rest, prog="tdgen distill --teacher RUN --objective OBJ [--out DIR]",
        name="tdgen distill",
        description="Distil a trained run into a freshly initialised student (Section 6).",
    )  # fmt: skip
    if not config.teacher:
        raise InputError("tdgen distill needs --teacher RUN_DIR (a dqn, c51, ppo or daac run)")
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
    from tdgen.agents import AGENTS, get_agent, train_seeds
    from tdgen.agents import train as train_run
    from tdgen.agents.train import DEFAULT_LANES, LANES

    if not args or args[0] in ("-h", "--help"):
        rows = [("  agent", "family", "presets (default: minatar)")]
        rows += [(f"  {name}", spec.family.name, ", ".join(spec.presets))
                 for name, spec in AGENTS.items()]  # fmt: skip
        print(
            "usage: tdgen train AGENT --env ENV --preset PRESET [--seeds S ... [--lanes "
            "auto|vmap|map]] [--out DIR] [flags]\n\n"
            "Train an agent into a run directory (runs/AGENT-ENV-seedS by default).\n\n"
            f"agents:\n{table(rows)}\n\n`tdgen train AGENT --help` lists its flags."
        )
        if not args:
            sys.exit(2)
        return
    agent, rest = args[0], args[1:]
    spec = get_agent(agent)
    pre = ArgumentParser(prog=f"tdgen train {agent}", add_help=False)
    pre.add_argument("--preset", default="minatar", choices=spec.presets)
    pre.add_argument("--env", default="minatar/breakout")
    pre.add_argument("--seeds", type=int, nargs="+", default=None)
    pre.add_argument("--lanes", default=DEFAULT_LANES, choices=LANES)
    pre.add_argument("--out", type=Path, default=None)
    pre.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction)
    known, rest = pre.parse_known_args(rest)
    default = spec.config_cls.preset(known.preset, env=known.env)
    config = parse(
        spec.config_cls,
        rest,
        default=default,
        name=f"tdgen train {agent}",
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
    require(0.0 < eps <= 1.0, "--eps", "a fraction in (0, 1]", eps)
    require(lr > 0, "--lr", "a learning rate > 0", lr)
    require(checkpoint is None or checkpoint >= 0, "--checkpoint", "a frame count >= 0", checkpoint)
    if not source.exists():
        raise InputError(f"{source} does not exist (expected a run directory or a params .msgpack)")
    from tdgen.interference import plot_singular_values, plot_update_matrix, update_rank

    if source.is_dir():
        from tdgen.agents import probe_checkpoint
        from tdgen.agents.probes import VALUE

        result = probe_checkpoint(source, checkpoint)
        out = make_dir(out or source / "rank", "the folder of the heatmaps")
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
        raise InputError(f"{source} is not a run directory; with a params file, give a batch .npz")
    from tdgen.interference.command import rank_main

    rank_main(source, batch, out_dir=out or Path("."), optimizer=optimizer, lr=lr, reduce=reduce,
              center=center, method=method, eps=eps)  # fmt: skip


COMMANDS = {
    "list": "name every experiment with its paper reference",
    "reproduce": "run experiments by name; write result.json, figures and report.md",
    "train": "train an agent into a run directory (`tdgen train --help`: agents, presets)",
    "distill": "distil a trained run into a freshly initialised student (Section 6)",
    "resume": "continue a run or seed group from its latest complete checkpoint",
    "evaluate": "returns, generalisation gap, robustness and interpolation of a run",
    "rank": "update rank and update-matrix heatmaps of a checkpoint or saved files",
    "sweep": "run a grid of training runs or experiments (local, ray or slurm)",
    "report": "aggregate runs across seeds and tasks: IQM with bootstrap CIs",
    "gpu-check": "train each paper program for a minute on this device; project its runs",
    "preset-memory": "each paper preset's device and host memory, from its compiled step",
}


def usage() -> str:
    """`tdgen --help`: one line per command."""
    return (
        "usage: tdgen COMMAND [ARGS...]    (tdgen COMMAND --help: its options)\n\n"
        "Learning dynamics and generalisation in RL (Lyle et al., ICML 2022).\n\n"
        "commands:\n" + table([("  " + name, line) for name, line in COMMANDS.items()]) + "\n\n"
        "options:\n"
        + table(
            [("  -h, --help", "show this message"), ("  --version", "print tdgen's version")]
        )  # fmt: skip
    )


def version() -> str:
    """The installed distribution's version (the package metadata); tdgen.__version__ when
    tdgen runs from a source tree that is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("tdgen")
    except PackageNotFoundError:
        from tdgen import __version__

        return __version__


def _command(name: str):
    if name in ("sweep", "report"):
        from tdgen.sweep.command import report_main, sweep_main  # the sweep package on demand

        return {"sweep": sweep_main, "report": report_main}[name]
    if name in ("gpu-check", "preset-memory"):
        from tdgen.bench.command import gpu_check, preset_memory

        return {"gpu-check": gpu_check, "preset-memory": preset_memory}[name]
    return {"list": list_experiments, "reproduce": reproduce, "resume": resume, "rank": rank,
            "evaluate": evaluate}[name]  # fmt: skip


def _resume_target(paths: list[Path]) -> Path:
    from tdgen.agents.launch import is_group

    parent = paths[0].parent
    return parent if len(paths) > 1 or is_group(parent) else paths[0]


def run(args: list[str]) -> None:
    """Dispatch ``args`` (without the program name) to a command."""
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        if not args:
            sys.exit(2)
        return
    if args[0] == "--version":
        print(f"tdgen {version()}")
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        import difflib

        near = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f": did you mean {near[0]!r}?" if near else ""
        raise InputError(f"unknown command {name!r}{hint} (commands: {', '.join(COMMANDS)})")
    if name in ("train", "distill"):
        {"train": train, "distill": distill}[name](rest)
        return
    parse(_command(name), rest, prog=f"tdgen {name}")


def main(args: list[str] | None = None) -> None:
    """Entry point of the `tdgen` console script.

    Exit status: 2 for bad input (an InputError: an option, a config field, a file tdgen reads, a
    missing optional package), one line `tdgen: error: ...` naming it; 1 for a fault of the
    environment (disk full, quota, permission denied, read-only file system, I/O error, out of
    memory), one line naming the fault, with what is left to resume from after a failed
    checkpoint; 1 for a sweep whose runs failed (one line; tracebacks in its logs); 143 after
    SIGTERM stopped training (checkpointed); 130 on Ctrl-C. Anything else is a bug in tdgen: its
    traceback, then a line asking for a report, exit 1. TDGEN_DEBUG=1 re-raises everything.
    """
    args = sys.argv[1:] if args is None else list(args)
    try:
        run(args)
    except Interrupted as error:
        _fail(f"{error}: `tdgen resume {_resume_target(error.paths)}` continues", 143)
    except KeyboardInterrupt:
        _fail("interrupted (Ctrl-C)", 130)
    except BrokenPipeError:  # `tdgen list | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except InputError as error:  # MissingExtraError, CheckpointError, config validation, ...
        _fail(f"error: {error}", 2)
    except ReportedFailure as error:  # a sweep's failed runs: their tracebacks are in its logs
        _fail(f"error: {error}", 1)
    except Exception as error:  # noqa: BLE001  (sorted here: the environment's fault or a bug)
        fault = environment_fault(error)
        if fault is None:
            _bug()
        _fail(f"{fault}: {error}" if str(error) else fault, 1)


# The errors of the environment (not of tdgen, not of the input): one line naming the fault.
FAULTS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
    errno.ENOMEM: "out of memory",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files",
}


def environment_fault(error: BaseException | None) -> str | None:
    """The fault of the environment ``error`` reports ("disk full", "out of memory", ...), looking
    through the errors it was raised from; None when it is none of them (a bug in tdgen)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError):
            return "out of memory"
        if isinstance(error, OSError) and error.errno in FAULTS:
            return FAULTS[error.errno]
        if type(error).__module__.startswith("jax") and "RESOURCE_EXHAUSTED" in str(error)[:200]:
            return "out of accelerator memory"  # XLA's allocation failure on a GPU or TPU
        error = error.__cause__
    return None


def issue_tracker() -> str:
    """Where to report a bug: the Project-URL of the installed metadata labelled Issues, Bug or
    Tracker (else Source, Repository or Homepage); "the tdgen issue tracker" when none is."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("tdgen").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    labelled = [(label.strip().lower(), url.strip())
                for label, _, url in (u.partition(",") for u in urls) if url.strip()]  # fmt: skip
    for words in (("issue", "bug", "tracker"), ("source", "repository", "home")):
        for label, url in labelled:
            if any(word in label for word in words):
                return url
    return "the tdgen issue tracker"


def _bug() -> None:
    """A bug in tdgen: the traceback of the exception being handled, a line asking for a
    report, exit 1 (TDGEN_DEBUG=1: re-raise it)."""
    if os.environ.get("TDGEN_DEBUG"):
        raise
    import traceback

    sys.stdout.flush()
    traceback.print_exc(file=sys.stderr)
    print(f"tdgen: internal error (a bug in tdgen): please report it with the traceback above "
          f"at {issue_tracker()}", file=sys.stderr, flush=True)  # fmt: skip
    sys.exit(1)


def _fail(message: str, status: int) -> None:
    if os.environ.get("TDGEN_DEBUG"):
        raise
    console.print(f"tdgen: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
