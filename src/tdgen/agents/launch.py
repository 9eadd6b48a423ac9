"""Run any agent by name: one run, or a group of seeds trained as one vmapped program.

`train(agent, config, out)` trains one run; `train_seeds(agent, config, seeds, out)` trains one
run per seed, each an ordinary run directory ``out/seed<S>`` (its own config, metrics, probes,
checkpoints), as one group; `resume(path)` continues a run or a group; `ensure_runs` is the
train-resume-or-reuse rule experiments and sweeps share (`tdgen.runs.reuse`), grouping the runs
that differ only by seed. The family of each agent (`tdgen.agents.registry`) does the rest.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdgen.agents.probes import ProbeResult
from tdgen.agents.registry import AgentSpec, get_agent
from tdgen.agents.train import DEFAULT_LANES, LANES, resolve_lanes
from tdgen.errors import InputError, read_json, require_fields
from tdgen.runs import RunDir, checkpoint_path, complete_checkpoints
from tdgen.runs.checkpoint import marker_path
from tdgen.runs.compiled import release_if_crowded
from tdgen.runs.reuse import config_differences, is_complete
from tdgen.runs.rundir import write_json_atomic

GROUP_FILE = "group.json"


def train(agent: str, config: Any, out: Path, progress: bool = True) -> Path:
    """Train ``agent`` with ``config`` into a new run directory ``out``; returns its path.

    Refuses an existing run (continue it with `resume`). A diverging run (non-finite loss) stops
    cleanly with `charts/diverged` = 1 in its last metrics line; it is a result, not an error.
    """
    spec = get_agent(agent)
    built = spec.build(config)  # unknown environments fail before anything is written
    run = RunDir.create(Path(out), agent, config.to_dict())
    return spec.family.train(built, run, progress)


def train_seeds(
    agent: str,
    config: Any,
    seeds: Sequence[int],
    out: Path,
    progress: bool = True,
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train one run per seed (``config`` with each seed) into ``out/seed<S>`` as one group.

    ``out/group.json`` names the runs and the group's ``lanes`` (vmap or map:
    `tdgen.agents.train.Train.jit_group`), so `tdgen resume out` continues the group as it ran;
    each run is also an ordinary run directory (`tdgen resume out/seed3` continues it alone).
    """
    if lanes not in LANES:
        raise InputError(f"--lanes must be one of {', '.join(LANES)}, got {lanes!r}")
    lanes = resolve_lanes(lanes)  # group.json records what ran, so a resume runs the same
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise InputError(f"--seeds must be distinct and non-empty, got {seeds}")
    out = Path(out)
    if (out / GROUP_FILE).exists() or (out / "config.json").exists():
        raise InputError(f"{out} already holds a run or group: continue it with "
                         f"`tdgen resume {out}` or choose another --out")  # fmt: skip
    spec = get_agent(agent)
    configs = [config.replace(seed=s) for s in seeds]
    spec.build(configs[0])  # bad settings fail before anything is written
    runs = [
        RunDir.create(out / f"seed{s}", agent, c.to_dict())
        for s, c in zip(seeds, configs, strict=True)
    ]
    write_json_atomic(out / GROUP_FILE, {"kind": "group", "agent": agent, "lanes": lanes,
                                         "runs": [r.path.name for r in runs]})  # fmt: skip
    return _train_together(spec, runs, [0] * len(runs), progress, lanes)


def is_group(path: Path) -> bool:
    return (Path(path) / GROUP_FILE).is_file()


def group_runs(path: Path) -> tuple[list[Path], str]:
    """The run directories of the group at ``path`` and its lanes (its group.json)."""
    file = Path(path) / GROUP_FILE
    what = 'a seed group: {"kind": "group", "runs": [NAMES], "lanes": "vmap" or "map"}'
    stored = read_json(file, what)
    require_fields(stored, file, what, runs=list)
    names, lanes = stored["runs"], stored.get("lanes", DEFAULT_LANES)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{file}: 'runs' must be a non-empty list of run names, got {names!r}")
    if lanes not in LANES:
        raise InputError(f"{file}: 'lanes' must be one of {', '.join(LANES)}, got {lanes!r}")
    return [Path(path) / name for name in names], lanes


def agent_of(run: RunDir):
    """The registry entry of the agent that trained ``run``; an unknown kind names its config."""
    try:
        return get_agent(run.kind)
    except InputError as error:
        raise InputError(f"{run.path / 'config.json'}: {error}") from None


def resume(path: Path, progress: bool = True) -> Path | list[Path]:
    """Continue the run (or the group) at ``path`` from its latest complete checkpoint.

    A group resumes together from the newest checkpoint every unfinished run has (a group killed
    while writing its checkpoints resumes from the previous one), so it continues bit for bit.
    A corrupt, foreign or mismatched checkpoint raises CheckpointError before anything changes.
    """
    if is_group(path):
        runs, lanes = group_runs(path)
        return resume_runs(runs, progress, lanes)
    run = RunDir.open(Path(path))
    spec = agent_of(run)
    config = run.load_config(spec.config_cls)
    try:
        agent = spec.build(config)
    except InputError as error:  # an environment this install does not know, ...
        raise InputError(f"{run.path / 'config.json'}: {error}") from None
    return spec.family.resume(agent, run, None, progress)


def resume_runs(
    run_dirs: Sequence[Path], progress: bool = True, lanes: str = DEFAULT_LANES
) -> list[Path]:
    """Continue the unfinished runs among ``run_dirs`` (same agent, configs differing only by
    seed), grouped by the checkpoint they restart from."""
    runs = [RunDir.open(Path(p)) for p in run_dirs]
    pending = []
    for run in runs:
        config = run.load_config(agent_of(run).config_cls)
        if not is_complete(run.path, config.length):
            pending.append(run)
    if pending:
        starts = _common_starts(pending)
        _train_together(get_agent(pending[0].kind), pending, starts, progress, lanes)
    return [r.path for r in runs]


def ensure_runs(
    agent: str | AgentSpec,
    configs: Sequence[Any],
    run_dirs: Sequence[Path],
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train, resume or reuse each run, without a progress bar.

    A directory holding a complete run of the same config is reused; an incomplete one resumes;
    an empty path gets a new run; one holding a different run is a ValueError and is left
    untouched (`tdgen.runs.reuse`). The runs to train that differ only by seed go together as one
    group per start frame.
    ``agent``: a registry name, or a spec of the same shape (distillation's, `tdgen.distill`).
    """
    spec = agent if isinstance(agent, AgentSpec) else get_agent(agent)
    agent = spec.name
    release_if_crowded()  # also where every run is reused (`tdgen.runs.compiled`)
    pending: list[RunDir] = []
    for config, run_dir in zip(configs, run_dirs, strict=True):
        diff = config_differences(run_dir, agent, config.to_dict())
        if diff:
            raise InputError(
                f"{run_dir} holds a different run (fields {diff} differ from a {agent} run's): "
                "delete it or choose another output directory"
            )
        if diff is None:
            spec.build(config)
            pending.append(RunDir.create(Path(run_dir), agent, config.to_dict()))
        elif not is_complete(run_dir, config.length):
            pending.append(RunDir.open(Path(run_dir)))
    if pending:
        _train_together(spec, pending, _common_starts(pending), False, lanes)
    return [Path(p) for p in run_dirs]


def ensure_run(agent: str, config: Any, run_dir: Path) -> Path:
    """`ensure_runs` for one run."""
    return ensure_runs(agent, [config], [run_dir])[0]


def probe_checkpoint(run_dir: Path, frames: int | None = None) -> ProbeResult:
    """Recompute the update-rank probe of a value-based MinAtar run from its checkpoint at
    ``frames`` (the newest when None): the transitions its own probe drew there."""
    run = RunDir.open(Path(run_dir))
    spec = agent_of(run)
    if spec.family.name != "value_based":
        raise InputError(
            f"recomputing a probe from a checkpoint is implemented for value-based runs; this is "
            f"a {run.kind!r} run, whose probes are saved in {run.probes}"
        )
    from tdgen.agents.value_based.launch import probe_checkpoint as probe_value

    agent = spec.build(run.load_config(spec.config_cls))
    return probe_value(agent, run, frames or 0)


def _common_starts(runs: Sequence[RunDir]) -> list[int]:
    """Each run's restart frame: the newest checkpoint all of them have where each has it (so a
    group killed mid-checkpoint restarts together), else that run's own newest."""
    done = [complete_checkpoints(r.checkpoints) for r in runs]
    latest = [d[-1] if d else 0 for d in done]
    common = min(latest)
    return [common if (common == 0 or common in d) else last
            for d, last in zip(done, latest, strict=True)]  # fmt: skip


def _train_together(
    spec: AgentSpec,
    runs: Sequence[RunDir],
    starts: Sequence[int],
    progress: bool,
    lanes: str = DEFAULT_LANES,
) -> list[Path]:
    """Train ``runs`` (fresh or restarting at ``starts``): one group per start frame and config
    (runs that differ only by seed) on gymnax, one at a time where a group cannot run (a single
    run, host-stepped environments)."""
    buckets: dict[tuple[int, str], list[RunDir]] = defaultdict(list)
    for run, start in zip(runs, starts, strict=True):
        buckets[start, _without_seed(run.config)].append(run)
    for (start, _), members in sorted(buckets.items(), key=lambda item: item[0]):
        configs = [r.load_config(spec.config_cls) for r in members]
        built = spec.build(configs[0])
        if len(members) == 1 or spec.family.is_host_stepped(built):
            for run, config in zip(members, configs, strict=True):
                one = spec.build(config)
                if start == 0 and not complete_checkpoints(run.checkpoints):
                    spec.family.train(one, run, progress)
                else:
                    spec.family.resume(one, run, start, progress)
                release_if_crowded()
            continue
        for run in members:  # a restart drops what the interrupted run wrote after it
            for step in complete_checkpoints(run.checkpoints):
                if step > start:
                    path = checkpoint_path(run.checkpoints, step)
                    marker_path(path).unlink(missing_ok=True)
                    path.unlink(missing_ok=True)
        spec.family.train_group(built, members, [start] * len(members), progress, lanes)
        release_if_crowded()
    return [r.path for r in runs]


def _without_seed(config: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True)


__all__ = ["ensure_run", "ensure_runs", "group_runs", "is_group", "probe_checkpoint", "resume",
           "resume_runs", "train", "train_seeds"]  # fmt: skip
