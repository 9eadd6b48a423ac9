"""One interference probe for every family: update matrices and update ranks (Section 5.1, B.1).

A probe draws k distinct samples (replay transitions, rollout samples, distillation-buffer
transitions) and computes, for each of the family's targets, the k x k update matrix
A[i, j] = v(params_i, x_j) - v(params, x_j) with the current parameters and optimiser state
(params_i: one optimiser step on sample i's loss alone), and the same for a freshly initialised
network with a fresh optimiser state on the same samples ("random parameters"). Every draw
derives from the state's key (`tdgen.streams.PROBE`), never host state, so a resumed run probes
exactly what an uninterrupted one would.

A family contributes only its targets (`ProbeTarget`: which network, which per-sample loss,
which reduction) and its draw; everything else, including the result and its file, is here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from tdgen import streams
from tdgen.interference import make_update_matrix, update_rank
from tdgen.runs.rundir import write_npz_atomic

VALUE = ""  # the target name of a value-based agent's single network (metrics without a prefix)


@dataclasses.dataclass(frozen=True)
class ProbeTarget:
    """What one update matrix differentiates: a network's outputs and the loss that trains it.

    loss_fn(sub_params, sample) is the loss on one sample (no batch axis); apply_fn(sub_params,
    obs [m, ...]) the outputs the matrix reads, reduced by ``reduce`` (tdgen.interference: "max",
    "expectation" with ``support``, "policy", "none", ...); select(params, opt_state) picks the
    parameters and optimiser state the step acts on (all of them unless told).
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    loss_fn: Callable[[Any, dict[str, jax.Array]], jax.Array]
    optimizer: optax.GradientTransformation
    reduce: str
    support: tuple[float, ...] | None = None
    select: Callable[[Any, Any], tuple[Any, Any]] = lambda params, opt_state: (params, opt_state)


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
    distillation)."""

    frames: int
    ranks: dict[str, float]
    ranks_random: dict[str, float]
    matrices: dict[str, np.ndarray]
    matrices_random: dict[str, np.ndarray]
    indices: np.ndarray

    @property
    def update_rank(self) -> float:
        """The value network's rank (value-based agents and value students)."""
        return self.ranks[VALUE]

    @property
    def update_rank_random(self) -> float:
        return self.ranks_random[VALUE]

    def metrics(self) -> dict[str, float]:
        """interference/[<target>_]update_rank[_random] for every target."""
        values = {}
        for name in self.ranks:
            prefix = f"interference/{name}_" if name else "interference/"
            values[f"{prefix}update_rank"] = self.ranks[name]
            values[f"{prefix}update_rank_random"] = self.ranks_random[name]
        return values

    def save(self, directory: Path) -> Path:
        """probes/step_<frames>.npz: [<target>_]update_matrix[_random], [<target>_]update_rank
        [_random], sample_indices, frames; one format for every family."""
        arrays: dict[str, Any] = {"frames": self.frames, "sample_indices": self.indices}
        for name in self.ranks:
            prefix = f"{name}_" if name else ""
            arrays[f"{prefix}update_matrix"] = self.matrices[name]
            arrays[f"{prefix}update_matrix_random"] = self.matrices_random[name]
            arrays[f"{prefix}update_rank"] = self.ranks[name]
            arrays[f"{prefix}update_rank_random"] = self.ranks_random[name]
        return write_npz_atomic(Path(directory) / f"step_{self.frames:012d}.npz", **arrays)


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
) -> Callable[[ProbeView, Any, Any], ProbeResult]:
    """`probe(view, state, data) -> ProbeResult`: ``draws`` independent draws of
    ``draw(state, data, key)`` (jitted by the caller), each probed through every target.

    The matrices are exact (one real optimiser step per sample, `method="exact"`) and the rank
    counts singular values above ``eps`` times the largest (Eq. 18's srank-style threshold).
    """
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
        indices = []
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

        def mean_rank(ms):
            return float(np.mean([int(update_rank(m, eps)) for m in ms]))

        return ProbeResult(
            frames=int(view.position),
            ranks={n: mean_rank(m) for n, m in mats.items()},
            ranks_random={n: mean_rank(m) for n, m in mats_random.items()},
            matrices={n: np.stack(m) for n, m in mats.items()},
            matrices_random={n: np.stack(m) for n, m in mats_random.items()},
            indices=np.stack(indices),
        )

    return probe


__all__ = [
    "VALUE", "Draw", "ProbeResult", "ProbeTarget", "ProbeView", "make_probe", "per_sample",
    "probe_key",
]  # fmt: skip
