"""Interference probes inside training: update matrix and update rank (Section 5.1, App. B.1).

A probe samples k distinct transitions from the replay buffer and computes the update matrix
A[i, j] = v(params_i, x_j) - v(params, x_j) with the agent's current parameters and optimiser
state (params_i: one optimiser step on transition i alone, with the agent's own per-transition
loss and its current target network), and the same for a freshly initialised network with a
fresh optimiser state on the same transitions ("random parameters", its own outputs as targets).
Every random draw derives from the training state's key and frame counter, never host state, so
a resumed run probes exactly the transitions an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.agents import replay as replay_lib
from tdgen.agents.value_based import Agent, TrainState
from tdgen.interference import make_update_matrix, update_rank
from tdgen.runs.rundir import write_npz_atomic

_PROBE_STREAM = 0x50524F42  # fold_in tag separating probe draws from the training stream


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Update ranks (mean over draws) and the matrices [draws, k, k] of one probe."""

    frames: int
    update_rank: float
    update_rank_random: float
    matrices: np.ndarray
    matrices_random: np.ndarray
    indices: np.ndarray

    def metrics(self) -> dict[str, float]:
        return {
            "interference/update_rank": self.update_rank,
            "interference/update_rank_random": self.update_rank_random,
        }

    def save(self, directory: Path) -> Path:
        """probes/step_<frames>.npz with the matrices, replay indices and ranks."""
        return write_npz_atomic(
            Path(directory) / f"step_{self.frames:012d}.npz",
            update_matrix=self.matrices,
            update_matrix_random=self.matrices_random,
            replay_indices=self.indices,
            update_rank=self.update_rank,
            update_rank_random=self.update_rank_random,
            frames=self.frames,
        )


def probe_key(state: TrainState) -> jax.Array:
    """The probe's key: a function of the state's key (itself a function of seed and frames)."""
    return jax.random.fold_in(state.key, _PROBE_STREAM)


def make_probe(agent: Agent, eps: float = 0.1) -> Callable[[TrainState], ProbeResult | None]:
    """`probe(state) -> ProbeResult`, or None while the buffer holds fewer than k transitions."""
    config, algorithm = agent.config, agent.algorithm
    k = config.probe_k

    def loss_fn(params, t):
        outputs = agent.apply(params, t["obs"][None])[0]
        return algorithm.transition_loss(
            outputs, t["action"], t["reward"], t["discount"], t["target_outputs"]
        )

    matrix = make_update_matrix(
        agent.apply, loss_fn, agent.optimizer, reduce=algorithm.probe_reduce,
        support=algorithm.probe_support, center=config.probe_center, method="exact",
    )  # fmt: skip

    @jax.jit
    def draw(state: TrainState, key: jax.Array):
        key_sample, key_init = jax.random.split(key)
        batch, indices = replay_lib.sample_distinct(state.replay, key_sample, k)
        fresh = agent.init_params(key_init)
        discount = config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        common = {"obs": batch["obs"], "action": batch["action"], "reward": batch["reward"],
                  "discount": discount}  # fmt: skip
        trained = {**common, "target_outputs": agent.apply(state.target_params, batch["next_obs"])}
        random = {**common, "target_outputs": agent.apply(fresh, batch["next_obs"])}
        return trained, random, fresh, agent.optimizer.init(fresh), indices

    def probe(state: TrainState) -> ProbeResult | None:
        if int(state.replay.filled) * config.num_envs < k:
            return None
        keys = jax.random.split(probe_key(state), config.probe_draws)
        mats, mats_random, ranks, ranks_random, indices = [], [], [], [], []
        for key in keys:
            trained, random, fresh, fresh_opt, idx = draw(state, key)
            a = matrix(state.params, state.opt_state, trained)
            a_random = matrix(fresh, fresh_opt, random)
            mats.append(np.asarray(a))
            mats_random.append(np.asarray(a_random))
            ranks.append(int(update_rank(a, eps)))
            ranks_random.append(int(update_rank(a_random, eps)))
            indices.append(np.asarray(idx))
        return ProbeResult(
            frames=int(state.frames),
            update_rank=float(np.mean(ranks)),
            update_rank_random=float(np.mean(ranks_random)),
            matrices=np.stack(mats),
            matrices_random=np.stack(mats_random),
            indices=np.stack(indices),
        )

    return probe
