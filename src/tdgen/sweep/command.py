"""The functions behind `tdgen sweep` and `tdgen report` (typed for tyro; docstrings are --help)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro
from rich.console import Console

from tdgen.errors import InputError
from tdgen.sweep.backends import make_backend
from tdgen.sweep.grid import Grid, grids_from_dict, load_spec, parse_assignment
from tdgen.sweep.launch import Plan, check_results, default_cache_dir, run_sweep
from tdgen.sweep.tasks import TaskResult
from tdgen.sweep.wandb_hook import WandbHook

console = Console(stderr=True)


def default_workers() -> int:
    """Local pool size when --workers is not given: one process. On 2 cores a pool of 2 was no
    faster than one process running the runs in turn with a warm compilation cache
    (docs/benchmarks.md, benchmarks/self/sweep.py): XLA already uses every core for one run."""
    return 1


def grids_from_flags(
    spec: Path | None,
    agent: tuple[str, ...],
    env: tuple[str, ...],
    preset: tuple[str, ...],
    seeds: tuple[int, ...],
    frames: int | None,
    override: tuple[str, ...],
    experiment: tuple[str, ...],
    scale: str | None,
) -> list[Grid]:
    """The grids of a spec file with the flags applied on top (a given flag replaces the spec's
    value in every grid), or of the flags alone."""
    assigned = dict(parse_assignment(a) for a in override)
    if frames is not None:
        assigned["frames"] = frames
    fixed = {k: v for k, v in assigned.items() if not isinstance(v, list)}
    varied = {k: tuple(v) for k, v in assigned.items() if isinstance(v, list)}
    if spec is None:
        if not agent and not experiment:
            raise InputError("give a SPEC.toml, or --agent (with --env) or --experiment")
        data = {"agents": agent, "experiments": experiment, "envs": env, "presets": preset,
                "seeds": seeds or (0,), "scale": scale or "quick", "set": fixed,
                "vary": varied}  # fmt: skip
        return grids_from_dict({k: v for k, v in data.items() if v not in ((), {})})
    grids = load_spec(spec)
    if assigned and any(g.experiments for g in grids) and not agent:
        raise InputError("--override and --frames apply to agent runs, not to experiments")
    changes = {"agents": agent, "experiments": experiment, "envs": env, "presets": preset,
               "seeds": seeds}  # fmt: skip
    out = []
    for grid in grids:
        replaced = {k: v for k, v in changes.items() if v}
        if scale:
            replaced["scale"] = scale
        if "agents" in replaced:
            replaced["experiments"] = ()
        if "experiments" in replaced:
            replaced["agents"] = ()
        if grid.agents or replaced.get("agents"):
            set_ = {k: v for k, v in grid.set.items() if k not in varied} | fixed
            vary = {k: v for k, v in grid.vary.items() if k not in fixed} | varied
            replaced |= {"set": set_, "vary": vary}
        out.append(dataclasses.replace(grid, **replaced))
    return out


def sweep_main(
    spec: Annotated[Path | None, tyro.conf.Positional] = None,
    agent: tuple[str, ...] = (),
    env: tuple[str, ...] = (),
    preset: tuple[str, ...] = (),
    seeds: tuple[int, ...] = (),
    frames: int | None = None,
    override: tuple[str, ...] = (),
    experiment: tuple[str, ...] = (),
    scale: Literal["quick", "paper"] | None = None,
    backend: Literal["local", "ray", "slurm"] = "local",
    out: Path = Path("sweeps/sweep"),
    workers: int | None = None,
    ray_address: str | None = None,
    cpus_per_run: float | None = None,
    gpus_per_run: float | None = None,
    mem_gb: float | None = None,
    slurm_partition: str | None = None,
    slurm_time_min: int | None = None,
    slurm_cluster: str | None = None,
    slurm_wait: bool = True,
    jax_cache: Path | None = None,
    no_jax_cache: bool = False,
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    wandb_mode: Literal["online", "offline", "disabled"] | None = None,
    report: bool = True,
    dry_run: bool = False,
    keep_replay: bool = False,
) -> list[TaskResult]:
    """Run a grid of training runs or experiments: skip finished runs, resume the others.

    `tdgen sweep SPEC.toml` or `tdgen sweep --agent dqn --env minatar/breakout minatar/asterix
    --seeds 0 1 2 --frames 50000 --out sweeps/NAME`. Each grid point is a run directory
    `out/<agent>_<env>_<preset>_s<seed>[_<overrides hash>]` (experiments:
    `out/<scale>_s<seed>/<experiment>`); `out/sweep.json` records the grid. Relaunching the
    same command after a crash or preemption resumes unfinished runs from their newest
    checkpoint; a directory holding a different config is refused, never overwritten.

    Args:
        spec: A TOML sweep spec (keys: agents or experiments, envs, presets, seeds, scale, [set],
            [vary], [[grid]]); flags given with it replace its values.
        agent: Agents to run (dqn, c51, ppo, daac).
        env: Environments, e.g. minatar/breakout atari/Pong procgen/bigfish.
        preset: Agent presets; default per env: minatar, procgen (PPO/DAAC), tandem (DQN/C51 on Atari).
        seeds: Seeds, one run each (default 0).
        frames: Training frames of every run (default: the preset's).
        override: Config fields as FIELD=VALUE (TOML values); FIELD=[a, b] sweeps over the values.
        experiment: `tdgen reproduce` experiments to run instead of agents, one per seed.
        scale: Experiment scale, quick or paper (default quick).
        backend: local (this machine), ray (Ray tasks) or slurm (submitit job array).
        out: The sweep folder.
        workers: local: parallel processes (default 1: see docs/benchmarks.md, measured on 2 cores).
        ray_address: ray: a running cluster ("auto", "ray://host:10001"); default starts one here.
        cpus_per_run: ray, slurm: CPU cores requested per run.
        gpus_per_run: ray, slurm: GPUs requested per run (JAX picks the device).
        mem_gb: ray, slurm: memory requested per run in GiB (docs/memory-and-gpu.md lists each preset's need).
        slurm_partition: slurm: the partition.
        slurm_time_min: slurm: time limit per job in minutes; a job that hits it is requeued.
        slurm_cluster: slurm: submitit cluster override, "local" or "debug" to test without Slurm.
        slurm_wait: slurm: wait for the jobs (else submit, return; relaunch later to collect).
        jax_cache: Persistent XLA compilation cache (default $TDGEN_JAX_CACHE or ~/.cache/tdgen/jax).
        no_jax_cache: Do not set a persistent compilation cache.
        wandb_project: Also log every run to this Weights & Biases project (needs `wandb`).
        wandb_entity: W&B entity (team or user).
        wandb_mode: W&B mode; default W&B's own (WANDB_MODE).
        report: After the sweep, aggregate its agent runs into out/report/ (`tdgen report`).
        dry_run: Print the plan (new, incomplete, finished runs) and stop.
        keep_replay: Every run keeps its final replay buffer once finished (stored compressed);
            by default a finished run drops it unless an experiment reads it.
    """
    if keep_replay:
        from tdgen.runs.rundir import keep_every_replay

        keep_every_replay()
    grids = grids_from_flags(spec, agent, env, preset, seeds, frames, override, experiment, scale)
    options = {
        "local": {"workers": workers or default_workers()},
        "ray": {"address": ray_address, "cpus_per_run": cpus_per_run,
                "gpus_per_run": gpus_per_run, "memory_gb_per_run": mem_gb},
        "slurm": {"cluster": slurm_cluster, "partition": slurm_partition,
                  "time_min": slurm_time_min, "cpus_per_run": _int(cpus_per_run),
                  "gpus_per_run": _int(gpus_per_run), "mem_gb": mem_gb, "wait": slurm_wait},
    }[backend]  # fmt: skip
    given = {"workers": workers, "ray_address": ray_address, "slurm_partition": slurm_partition,
             "slurm_time_min": slurm_time_min, "slurm_cluster": slurm_cluster}  # fmt: skip
    stray = [k for k, v in given.items() if v is not None and k.split("_")[0] != backend
             and not (k == "workers" and backend == "local")]  # fmt: skip
    if stray:
        raise InputError(f"--{stray[0].replace('_', '-')} does not apply to --backend {backend}")
    chosen = make_backend(backend, out, **options)
    cache = None if no_jax_cache else (jax_cache or default_cache_dir())
    hook = None
    if wandb_project:
        hook = WandbHook(project=wandb_project, entity=wandb_entity, mode=wandb_mode,
                         dir=str(Path(out).resolve()))  # fmt: skip

    def on_plan(p: Plan) -> None:
        console.print(
            f"sweep {out}: {len(p.tasks)} runs: {p.count('new')} new, "
            f"{p.count('incomplete')} to resume, {p.count('finished')} finished ({backend} backend)"
        )
        if dry_run:
            for task in p.tasks:
                console.print(f"  {p.states[task.name]:10s} {task.name}")

    done = [0]

    def on_result(result: TaskResult) -> None:
        done[0] += 1
        colour = {"failed": "red", "skipped": "dim"}.get(result.status, "green")
        extra = f": {result.error}" if result.error else ""
        console.print(
            f"[{done[0]}] {result.name}: [{colour}]{result.status}[/] ({result.seconds:.1f} s){extra}"
        )

    results = run_sweep(grids, out, chosen, cache_dir=cache, wandb=hook, on_plan=on_plan,
                        on_result=on_result, dry_run=dry_run)  # fmt: skip
    if dry_run:
        return results
    if report and any(g.agents for g in grids) and results:
        from tdgen.sweep.report import write_sweep_report

        try:
            path = write_sweep_report([out], out / "report")
            console.print(f"report: {path} (and {path.with_suffix('.html')})")
        except InputError as error:  # nothing scorable yet, e.g. every run failed
            console.print(f"no report: {error}")
    check_results(results, out)
    return results


def _int(value: float | None) -> int | None:
    return None if value is None else max(1, round(value)) if value else 0


def report_main(
    run_dirs: Annotated[tuple[Path, ...], tyro.conf.Positional],
    out: Path = Path("report"),
    metric: str | None = None,
    last: int = 3,
    normalize: str = "observed",
    reps: int = 2_000,
    seed: int = 0,
    include_incomplete: bool = False,
    curves: tuple[str, ...] = ("interference/update_rank",),
) -> Path:
    """Aggregate runs across seeds and tasks: IQM, mean, median with stratified bootstrap CIs.

    `tdgen report sweeps/NAME [more run dirs or folders] --out DIR` finds every run directory at
    or below the paths, scores each run by the mean of the last `--last` values of a metric,
    groups runs by algorithm (agent plus any config field that differs, seed aside) and task
    (env), and writes DIR/report.md, report.html, aggregate.json and figures: aggregate
    intervals, performance profiles, metric curves over frames.

    Args:
        run_dirs: Run directories, or folders holding them (searched recursively).
        out: Output folder of the report.
        metric: Metric scored (default charts/test_return when logged, else charts/episodic_return).
        last: Scores are the mean of this many last logged values.
        normalize: none, observed (per env: min-max of all runs) or a TOML/JSON file env = [low, high].
        reps: Bootstrap resamples.
        seed: Seed of the bootstrap.
        include_incomplete: Score runs that did not reach their final frame too.
        curves: Metrics drawn over frames besides the scored one, when logged.
    """
    from tdgen.arguments import require
    from tdgen.sweep.report import write_sweep_report

    require(reps >= 1, "--reps", "a number of bootstrap resamples >= 1", reps)
    require(seed >= 0, "--seed", "a seed >= 0", seed)
    path = write_sweep_report(
        list(run_dirs), out, metric=metric, last=last, normalize=normalize, reps=reps, seed=seed,
        include_incomplete=include_incomplete, curve_metrics=curves,
    )  # fmt: skip
    console.print(f"report: {path} (and {path.with_suffix('.html')})")
    return path


def reproduce_main(
    names: tuple[str, ...],
    scale: Literal["quick", "paper"],
    out: Path,
    seed: int,
    backend: Literal["local", "ray", "slurm"],
    workers: int | None = None,
) -> Path:
    """`tdgen reproduce ... --backend B`: hand each experiment (and Figure 3/4's training runs) to a
    sweep backend with its default options (`tdgen.sweep.reproduce.reproduce_with_backend`)."""
    from tdgen.sweep.reproduce import reproduce_with_backend

    options = {"workers": workers or default_workers()} if backend == "local" else {}
    chosen = make_backend(backend, out, **options)

    def on_result(result: TaskResult) -> None:
        console.print(f"{result.name}: {result.status} ({result.seconds:.1f} s)")

    return reproduce_with_backend(
        names, scale, out, chosen, seed, cache_dir=default_cache_dir(), on_result=on_result
    )


__all__ = ["report_main", "reproduce_main", "sweep_main"]
