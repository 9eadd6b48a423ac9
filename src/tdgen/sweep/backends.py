"""Where a sweep's tasks run: `local` (this process or a process pool), `ray` or `slurm` (submitit).

Every backend runs `tdgen.sweep.tasks.run_group` on each group of `seed_groups` (runs that
differ only by seed train as one vmapped program; every other task alone) and returns the `TaskResult`s in
task order, calling ``on_result`` as each one ends. Runs are resumable run directories, so a
backend needs no state of its own: relaunching a sweep after a crash, a preemption or a Slurm
timeout skips finished runs and resumes the others from their newest complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tdgen._extras import require
from tdgen.errors import InputError
from tdgen.sweep.tasks import Task, TaskResult, run_group, seed_groups

OnResult = Callable[[TaskResult], None]


@dataclasses.dataclass(frozen=True)
class LocalBackend:
    """Tasks on this machine. ``workers`` = 1 runs them one after another in this process (the
    measured default on 2 cores: see docs/benchmarks.md, sweep benchmark); more runs a pool of that many
    spawned processes, each with ``threads`` XLA CPU threads when given."""

    workers: int = 1
    threads: int | None = None

    def run(self, tasks: Sequence[Task], on_result: OnResult | None = None) -> list[TaskResult]:
        results: dict[str, TaskResult] = {}
        groups = seed_groups(tasks)
        if self.workers <= 1 or len(groups) <= 1:
            for group in groups:
                for result in run_group(group):
                    results[result.name] = result
                    if on_result:
                        on_result(result)
            return [results[t.name] for t in tasks]
        context = multiprocessing.get_context("spawn")  # never fork a process that holds XLA
        with ProcessPoolExecutor(
            min(self.workers, len(groups)), mp_context=context,
            initializer=_init_local_worker, initargs=(self.threads,),
        ) as pool:  # fmt: skip
            futures = {pool.submit(run_group, group): group for group in groups}
            for future in as_completed(futures):
                try:
                    done = future.result()
                except Exception as error:  # the worker process itself died (OOM, signal)
                    done = [TaskResult(t.name, "failed", 0.0, f"worker died: {error}")
                            for t in futures[future]]  # fmt: skip
                for result in done:
                    results[result.name] = result
                    if on_result:
                        on_result(result)
        return [results[t.name] for t in tasks]


def _init_local_worker(threads: int | None) -> None:
    if threads:
        xla_flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{xla_flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
        ).strip()


@dataclasses.dataclass(frozen=True)
class RayBackend:
    """Ray tasks with resource requests: ``address`` None starts a local Ray instance (``num_cpus``
    cores), "auto" or "ray://host:10001" joins a running cluster. Nodes need tdgen installed and
    the sweep's out dir on a shared filesystem. A task whose worker dies is retried
    ``max_retries`` times by Ray, and resumes from its newest checkpoint."""

    address: str | None = None
    num_cpus: int | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    memory_gb_per_run: float | None = None
    max_retries: int = 2

    def run(self, tasks: Sequence[Task], on_result: OnResult | None = None) -> list[TaskResult]:
        ray = require("ray", "sweep", "the ray backend")
        started = not ray.is_initialized()
        if started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                options["num_cpus"] = self.num_cpus or os.cpu_count()
            ray.init(address=self.address, **options)
        try:
            resources: dict[str, Any] = {"num_cpus": self.cpus_per_run,
                                         "num_gpus": self.gpus_per_run,
                                         "max_retries": self.max_retries}  # fmt: skip
            if self.memory_gb_per_run:
                resources["memory"] = int(self.memory_gb_per_run * 2**30)
            remote = ray.remote(**resources)(run_group)
            pending = {remote.remote(group): group for group in seed_groups(tasks)}
            results: dict[str, TaskResult] = {}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                group = pending.pop(ready[0])
                try:
                    done = ray.get(ready[0])
                except Exception as error:  # retries exhausted: the worker kept dying
                    message = f"ray: {error}".splitlines()[0]
                    done = [TaskResult(t.name, "failed", 0.0, message) for t in group]
                for result in done:
                    results[result.name] = result
                    if on_result:
                        on_result(result)
            return [results[t.name] for t in tasks]
        finally:
            if started:
                ray.shutdown()


@dataclasses.dataclass(frozen=True)
class SlurmBackend:
    """A Slurm job array through submitit (``cluster="local"`` runs the same jobs as local
    subprocesses, ``"debug"`` in this process: both for testing). Jobs are requeued on preemption
    and timeout (submitit's checkpointing) and resume from their newest run checkpoint. With
    ``wait`` False the jobs are submitted and `run` returns at once (results: `submitted`)."""

    folder: Path
    cluster: str | None = None
    partition: str | None = None
    time_min: int = 24 * 60
    cpus_per_run: int = 2
    gpus_per_run: int = 0
    mem_gb: float | None = None
    array_parallelism: int = 64
    wait: bool = True
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def executor(self):
        submitit = require("submitit", "sweep", "the slurm backend")
        executor = submitit.AutoExecutor(folder=Path(self.folder), cluster=self.cluster)
        parameters: dict[str, Any] = {"timeout_min": self.time_min,
                                      "cpus_per_task": self.cpus_per_run,
                                      "slurm_array_parallelism": self.array_parallelism,
                                      "name": "tdgen-sweep", **self.extra}  # fmt: skip
        if self.gpus_per_run:
            parameters["gpus_per_node"] = self.gpus_per_run
        if self.mem_gb:
            parameters["mem_gb"] = self.mem_gb
        if self.partition:
            parameters["slurm_partition"] = self.partition
        executor.update_parameters(**parameters)
        return executor

    def run(self, tasks: Sequence[Task], on_result: OnResult | None = None) -> list[TaskResult]:
        if not tasks:
            return []
        executor = self.executor()
        groups = seed_groups(tasks)
        jobs = executor.map_array(CheckpointableGroup(), groups)
        if not self.wait:
            return [TaskResult(t.name, "submitted", 0.0, f"job {j.job_id}")
                    for g, j in zip(groups, jobs, strict=True) for t in g]  # fmt: skip
        results: dict[str, TaskResult] = {}
        for group, job in zip(groups, jobs, strict=True):
            try:
                done = job.result()
            except Exception as error:  # the job failed outside run_group (killed, node lost)
                first = str(error).strip().splitlines()
                message = f"job {job.job_id}: {first[-1] if first else error}"
                done = [TaskResult(t.name, "failed", 0.0, message) for t in group]
            for result in done:
                results[result.name] = result
                if on_result:
                    on_result(result)
        return [results[t.name] for t in tasks]


class CheckpointableGroup:
    """`run_group` as a submitit Checkpointable: on preemption or timeout the same group is
    resubmitted, and `ensure_runs` resumes it from its runs' newest common checkpoint."""

    def __call__(self, group: list[Task]) -> list[TaskResult]:
        return run_group(group)

    def checkpoint(self, group: list[Task]):
        helpers = require("submitit.helpers", "sweep", "the slurm backend")
        return helpers.DelayedSubmission(self, group)


BACKENDS = ("local", "ray", "slurm")


def make_backend(name: str, out: Path, **options: Any):
    """The backend ``name`` with its options (unknown options for that backend are an error)."""
    classes = {"local": LocalBackend, "ray": RayBackend, "slurm": SlurmBackend}
    if name not in classes:
        raise InputError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    cls = classes[name]
    if name == "slurm":
        options.setdefault("folder", Path(out) / "submitit")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k, v in options.items() if k not in fields and v is not None)
    if unknown:
        raise InputError(f"options {unknown} do not apply to the {name} backend")
    return cls(**{k: v for k, v in options.items() if k in fields and v is not None})


__all__ = ["BACKENDS", "LocalBackend", "RayBackend", "SlurmBackend", "make_backend"]
