"""One interference probe for every family: update matrices and update ranks (Section 5.1, B.1).

A probe draws k distinct samples (replay transitions, rollout samples, distillation-buffer
transitions) and computes, for each of the family's targets, the k x k update matrix
A[i, j] = v(params_i, x_j) - v(params, x_j) with the current parameters and optimiser state
(params_i: one optimiser step on sample i's loss alone), and the same for a freshly initialised
network with a fresh optimiser state on the same samples ("random parameters"). Every draw
derives from the state's key (`tdgen.streams.PROBE`), never host state, so a resumed run probes
exactly what an uninterrupted one would.

A family contributes only its targets (`ProbeTarget`: which network, which per-sample loss,
which reduction, which Flax module) and its draw; everything else, including the result and its
file, is here. Beside the update rank every probe runs the learning-dynamics suite the run config
names (``probe_measures``, `tdgen.interference.Probe`) on each draw's k samples with the trained
parameters and optimiser state (the batch is also the reference batch of the unit measures and
of churn), averaged over draws, and logs its cost as ``perf/dynamics_seconds``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen import streams
from tdgen.interference import Probe, make_update_matrix, update_rank
from tdgen.interference.keys import update_rank_name
from tdgen.interference.table import UNIT_MEASURES
from tdgen.runs.config import probe_measures
from tdgen.runs.rundir import write_npz_atomic

VALUE = ""  # the target name of a value-based agent's single network (metrics without a prefix)


@dataclasses.dataclass(frozen=True)
class ProbeTarget:
    """What one update matrix differentiates: a network's outputs and the loss that trains it.

    loss_fn(sub_params, sample) is the loss on one sample (no batch axis); apply_fn(sub_params,
    obs [m, ...]) the outputs the matrix reads, reduced by ``reduce`` (tdgen.interference: "max",
    "expectation" with ``support``, "policy", "none", ...); select(params, opt_state) picks the
    parameters and optimiser state the step acts on (all of them unless told). model: the Flax
    module behind apply_fn (the selected parameters are its variables), whose hidden layers the
    unit measures read on model_input(obs); None leaves those measures out for this target.
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    loss_fn: Callable[[Any, dict[str, jax.Array]], jax.Array]
    optimizer: optax.GradientTransformation
    reduce: str
    support: tuple[float, ...] | None = None
    select: Callable[[Any, Any], tuple[Any, Any]] = lambda params, opt_state: (params, opt_state)
    model: Any = None
    model_input: Callable[[jax.Array], jax.Array] = lambda obs: obs


def per_sample(batch_loss: Callable[[Any, dict[str, jax.Array]], jax.Array]):
    """A loss on batches [n, ...] as the loss on one sample (a batch of 1), for `ProbeTarget`."""

    def loss(params, sample):
        return batch_loss(params, jax.tree.map(lambda x: x[None], sample))

    return loss


class Draw(NamedTuple):
    """One draw: the samples as the trained and the fresh network see them (targets, recomputed
    log-probabilities), the fresh network and optimiser state, and the samples' indices [k]."""

    trained: dict[str, jax.Array]
    random: dict[str, jax.Array]
    fresh_params: Any
    fresh_opt_state: Any
    indices: jax.Array


class ProbeView(NamedTuple):
    """What a probe reads of a training state: parameters, optimiser state, key, position."""

    params: Any
    opt_state: Any
    key: jax.Array
    position: int


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Per target: mean update rank over draws, trained and random parameters, the matrices
    [draws, k, k]; the sample indices [draws, k]; ``frames``: the position (updates for
    distillation); ``dynamics``: per target the suite's {name: mean over draws} (names as
    `tdgen.interference.Probe` gives them, "dynamics/..."), and its cost in seconds; ``center``:
    the matrices' centring, which names the ranks (`tdgen.interference.keys`)."""

    frames: int
    ranks: dict[str, float]
    ranks_random: dict[str, float]
    matrices: dict[str, np.ndarray]
    matrices_random: dict[str, np.ndarray]
    indices: np.ndarray
    dynamics: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    dynamics_seconds: float = 0.0
    center: str = "none"

    @property
    def update_rank(self) -> float:
        """The value network's rank (value-based agents and value students)."""
        return self.ranks[VALUE]

    @property
    def update_rank_random(self) -> float:
        return self.ranks_random[VALUE]

    def measures(self) -> dict[str, float]:
        """The suite's scalars: dynamics/<name> (value networks), dynamics/<target>/<name>."""
        return {
            dynamics_name(target, name): value
            for target, values in self.dynamics.items()
            for name, value in values.items()
        }

    def metrics(self) -> dict[str, float]:
        """interference/[<target>_]update_rank[_drift][_random] for every target, the suite's
        `measures()` and, when it ran, perf/dynamics_seconds."""
        values = {}
        for name in self.ranks:
            values[f"interference/{self._rank_name(name)}"] = self.ranks[name]
            values[f"interference/{self._rank_name(name, True)}"] = self.ranks_random[name]
        values.update(self.measures())
        if self.dynamics:
            values["perf/dynamics_seconds"] = self.dynamics_seconds
        return values

    def save(self, directory: Path) -> Path:
        """probes/step_<frames>.npz: [<target>_]update_matrix[_random], [<target>_]update_rank
        [_drift][_random], sample_indices, frames, center, and the suite's `measures()` under
        their metric names; one format for every family."""
        arrays: dict[str, Any] = {"frames": self.frames, "sample_indices": self.indices,
                                  "center": np.str_(self.center)}  # fmt: skip
        for name in self.ranks:
            prefix = f"{name}_" if name else ""
            arrays[f"{prefix}update_matrix"] = self.matrices[name]
            arrays[f"{prefix}update_matrix_random"] = self.matrices_random[name]
            arrays[self._rank_name(name)] = self.ranks[name]
            arrays[self._rank_name(name, True)] = self.ranks_random[name]
        arrays.update({name: np.float64(v) for name, v in self.measures().items()})
        return write_npz_atomic(Path(directory) / f"step_{self.frames:012d}.npz", **arrays)

    def _rank_name(self, target: str, random: bool = False) -> str:
        return update_rank_name(self.center, target, random)


def dynamics_name(target: str, name: str) -> str:
    """The suite's key ``name`` ("dynamics/dormant_0.025") for ``target``: "dynamics/actor/..."."""
    return name if target == VALUE else name.replace("dynamics/", f"dynamics/{target}/", 1)


def suite_probe(target: ProbeTarget, measures: tuple[str, ...]) -> Probe | None:
    """The `tdgen.interference.Probe` of ``measures`` for one target (None: nothing to run).

    It reads the target's outputs as values [m, A] (C51: the expected return, Eq. B.1's
    expectation reduction) or policy logits; a scalar head (a critic's V) has no churn, and a
    target without a Flax model no unit measures.
    """
    apply_fn = target.apply_fn
    if target.reduce == "expectation":
        support = jnp.asarray(target.support, jnp.float32)

        def apply_fn(params, obs):
            return jax.nn.softmax(target.apply_fn(params, obs), axis=-1) @ support

    chosen = [m for m in measures if not (m == "churn" and target.reduce == "none")]
    if target.model is None:
        chosen = [m for m in chosen if m not in UNIT_MEASURES]
    if not chosen:
        return None
    reduce = {"expectation": "max", "policy": "policy", "none": "none"}.get(target.reduce, "max")
    head = "policy" if target.reduce == "policy" else "value"
    return Probe(apply_fn, target.loss_fn, target.optimizer, model=target.model,
                 measures=tuple(chosen), head=head, reduce=reduce, center="none")  # fmt: skip


def probe_key(key: jax.Array) -> jax.Array:
    """The probe's key: a function of the state's key (itself a function of seed and position)."""
    return jax.random.fold_in(key, streams.PROBE)


def make_probe(
    targets: Mapping[str, ProbeTarget],
    draw: Callable[[Any, Any, jax.Array], Draw],
    *,
    center: str,
    draws: int,
    eps: float = 0.1,
    measures: str = "none",
) -> Callable[[ProbeView, Any, Any], ProbeResult]:
    """`probe(view, state, data) -> ProbeResult`: ``draws`` independent draws of
    ``draw(state, data, key)`` (jitted by the caller), each probed through every target.

    The matrices are exact (one real optimiser step per sample, `method="exact"`) and the rank
    counts singular values above ``eps`` times the largest (Eq. 18's srank-style threshold).
    ``measures``: a run config's ``probe_measures``, the suite run on the same draws.
    """
    suites = {name: suite_probe(t, probe_measures(measures)) for name, t in targets.items()}
    suites = {name: suite for name, suite in suites.items() if suite is not None}
    matrices = {
        name: make_update_matrix(
            t.apply_fn, t.loss_fn, t.optimizer, reduce=t.reduce, support=t.support,
            center=center, method="exact",
        )
        for name, t in targets.items()
    }  # fmt: skip

    def probe(view: ProbeView, state: Any, data: Any) -> ProbeResult:
        keys = jax.random.split(probe_key(view.key), draws)
        mats: dict[str, list] = {name: [] for name in targets}
        mats_random: dict[str, list] = {name: [] for name in targets}
        dynamics: dict[str, list] = {name: [] for name in suites}
        indices, seconds = [], 0.0
        for key in keys:
            d = draw(state, data, key)
            indices.append(np.asarray(d.indices))
            for name, target in targets.items():
                params, opt_state = target.select(view.params, view.opt_state)
                params_random, opt_random = target.select(d.fresh_params, d.fresh_opt_state)
                mats[name].append(np.asarray(matrices[name](params, opt_state, d.trained)))
                mats_random[name].append(
                    np.asarray(matrices[name](params_random, opt_random, d.random))
                )
            tick = time.perf_counter()
            for name, suite in suites.items():
                params, opt_state = targets[name].select(view.params, view.opt_state)
                reference = targets[name].model_input(d.trained["obs"])
                values = suite.jitted(params, opt_state, d.trained, reference)
                dynamics[name].append({n: float(v) for n, v in values.items()})
            seconds += time.perf_counter() - tick

        def mean_rank(ms):
            return float(np.mean([int(update_rank(m, eps)) for m in ms]))

        return ProbeResult(
            frames=int(view.position),
            ranks={n: mean_rank(m) for n, m in mats.items()},
            ranks_random={n: mean_rank(m) for n, m in mats_random.items()},
            matrices={n: np.stack(m) for n, m in mats.items()},
            matrices_random={n: np.stack(m) for n, m in mats_random.items()},
            indices=np.stack(indices),
            dynamics={n: {m: float(np.mean([v[m] for v in vs])) for m in vs[0]}
                      for n, vs in dynamics.items()},
            dynamics_seconds=seconds,
            center=center,
        )  # fmt: skip

    return probe


__all__ = [
    "VALUE", "Draw", "ProbeResult", "ProbeTarget", "ProbeView", "dynamics_name", "make_probe",
    "per_sample", "probe_key", "suite_probe",
]  # fmt: skip
