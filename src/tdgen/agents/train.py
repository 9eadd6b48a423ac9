"""Pure train functions: `Train(init, segment)`, and a group of seeds as one vmapped program.

Every gymnax-stepped agent exposes ``make_train(config) -> Train``: ``init(key) -> state`` and
``segment(state) -> (state, extras)``, both pure and jittable (PureJaxRL's `make_train`, split at
the host events so logging, probes and checkpoints happen between segments). ``extras`` is what
the host needs after a segment besides the state: the last rollout for actor-critic agents (their
probes read it), None for value-based agents.

A group of N seeds is the same two functions over a leading seed axis, compiled once: under
`jax.vmap` (vectorised lanes; a batched reduction, such as a bias gradient summed over the batch,
may round differently from the solo run's, and RL amplifies the last bit: measured in
docs/design-notes.md) or under `jax.lax.map` (lanes one after another inside the
program: bit for bit the solo run, measured and tested in tests/agents/test_groups.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.runs import RunDir, complete_checkpoints, find_checkpoint, load_run_checkpoint

LANES = ("auto", "vmap", "map")
SEED_AXIS = "seeds"  # the vmapped axis of a seed group (`Train.jit_group`)
DEFAULT_LANES = "auto"


def resolve_lanes(lanes: str) -> str:
    """ "auto": "map" on the CPU (measured faster there than "vmap" for the MinAtar CNN agents, and
    bit for bit the solo runs: benchmarks/self/seeds.py), "vmap" on an accelerator (where vectorised
    lanes run in parallel)."""
    if lanes not in LANES:
        raise InputError(f"lanes must be one of {', '.join(LANES)}, got {lanes!r}")
    if lanes == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return lanes


@dataclasses.dataclass(frozen=True)
class Train:
    """init(key) -> state; segment(state) -> (state, extras): one agent's training, pure."""

    init: Callable[[jax.Array], Any]
    segment: Callable[[Any], tuple[Any, Any]]

    def jit(self) -> tuple[Callable, Callable]:
        """(init, segment) compiled for one seed; the segment donates the old state."""
        return jax.jit(self.init), jax.jit(self.segment, donate_argnums=0)

    def jit_group(self, lanes: str = DEFAULT_LANES) -> tuple[Callable, Callable]:
        """(init, segment) compiled once for a group: states stacked on a leading seed axis.

        ``lanes``: "vmap" vectorises the seeds (one batched program: parallel lanes on an
        accelerator, but XLA may order a batched reduction differently, so a seed's numbers match
        its solo run only to the last bits, and RL amplifies those); "map" runs the seeds one
        after another inside the one program (`jax.lax.map`: one compile, and bit for bit a
        seed's solo run); "auto": `resolve_lanes`.
        """
        lanes = resolve_lanes(lanes)
        if lanes == "vmap":
            segment = jax.vmap(self.segment, axis_name=SEED_AXIS)
            return jax.jit(jax.vmap(self.init)), jax.jit(segment, donate_argnums=0)
        if lanes == "map":
            return (
                jax.jit(lambda keys: jax.lax.map(self.init, keys)),
                jax.jit(lambda state: jax.lax.map(self.segment, state), donate_argnums=0),
            )
        raise AssertionError(lanes)


def same_in_every_seed(predicate: jax.Array) -> jax.Array:
    """``predicate``, which every seed of a group computes alike (a schedule of the update count),
    as one unbatched value inside a vmapped group (a max over `SEED_AXIS`), so that a
    ``lax.cond`` on it stays a branch: on a batched predicate vmap turns the cond into a select
    that computes both branches on every step (a periodic event would run on every update).
    Outside a vmapped group (one seed, or lanes="map") it is ``predicate`` itself."""
    try:
        return jax.lax.pmax(predicate.astype(jnp.int32), SEED_AXIS) > 0
    except NameError:  # no vmapped seed axis is bound here
        return predicate


def start_state(
    agent: Any,
    run: RunDir,
    frames: int | None,
    position: str = "frames",
    target: Callable[[], Any] | None = None,
) -> tuple[Any, int]:
    """The state a (re)start of ``run`` begins from and its step: the checkpoint of ``frames``
    (None: the newest complete one; 0 or none: ``agent.init()``, the start). ``position``: the
    state's step counter (distillation counts updates); ``target``: `load_run_state`'s."""
    if frames is None:
        steps = complete_checkpoints(run.checkpoints)
        frames = steps[-1] if steps else 0
    if frames == 0:
        return agent.init(), 0
    path = find_checkpoint(run.checkpoints, frames)
    frames, state = load_run_state(agent, run, path, position, target)
    return state, frames


def load_run_state(
    agent: Any,
    run: RunDir,
    path: Path,
    position: str = "frames",
    target: Callable[[], Any] | None = None,
) -> tuple[int, Any]:
    """`(step, state)` of the checkpoint at ``path`` of a gymnax run (any family whose agent has
    ``init()``), checked against its name and kind; ``target()`` gives the state to load into
    when ``agent.init()`` would cost more than shapes (a student whose teacher collects on the
    host: `Distiller.template`)."""
    template = (target or agent.init)()
    return load_run_checkpoint(path, template, kind=run.kind, position=position)


def group_start(
    agent: Any, init: Callable, runs: Sequence[RunDir], frames: int, position: str = "frames"
) -> Any:
    """The group state of ``runs`` at ``frames``: ``init`` (the vmapped init) of their seeds'
    keys at 0, else their checkpoints of ``frames`` stacked."""
    if frames == 0:
        return init(seed_keys([RunDir.open(r.path).config["seed"] for r in runs]))
    return stack_states([start_state(agent, r, frames, position)[0] for r in runs])


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """PRNG keys [N, 2] of the seeds: key i is exactly `jax.random.PRNGKey(seeds[i])`."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def stack_states(states: Sequence[Any]) -> Any:
    """One group state from per-seed states (each with the same structure and shapes)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


__all__ = [
    "DEFAULT_LANES",
    "LANES",
    "Train",
    "resolve_lanes",
    "group_start",
    "load_run_state",
    "seed_keys",
    "stack_states",
    "start_state",
]
