"""Sweeps over agents, environments, presets, seeds and overrides, and reports across them.

This package sits above `agents` and `experiments` in the layering (tests/test_layering.py): a sweep
launches agent runs or whole experiments, so it imports both, and only `cli` imports it.

- `grid`: TOML specs and flags expanded into run points with stable names.
- `tasks`: one run as a worker runs it (train, resume or skip; errors caught and logged).
- `launch`: plan (finished / incomplete / new; mismatched directories refused), `sweep.json`,
  hand the tasks to a backend.
- `backends`: `local` (in-process or a spawned process pool), `ray`, `slurm` (submitit).
- `reproduce`: `tdgen reproduce` through a backend.
- `aggregate`, `collect`, `report`, `figures`: rliable's statistics (IQM, stratified bootstrap
  intervals, performance profiles, probability of improvement) over run directories.
- `wandb_hook`: optional Weights & Biases logging, off by default.
- `command`: `sweep_main`, `report_main`, `reproduce_main` for the `tdgen` command.

Heavy imports (JAX, the agents, Ray, submitit, wandb) happen inside functions, so importing the
package is cheap.
"""

from tdgen.sweep.backends import LocalBackend, RayBackend, SlurmBackend, make_backend
from tdgen.sweep.grid import Grid, Point, expand, load_spec
from tdgen.sweep.launch import SweepError, run_sweep
from tdgen.sweep.tasks import Task, TaskResult, run_task

__all__ = [
    "Grid",
    "LocalBackend",
    "Point",
    "RayBackend",
    "SlurmBackend",
    "SweepError",
    "Task",
    "TaskResult",
    "expand",
    "load_spec",
    "make_backend",
    "run_sweep",
    "run_task",
]
