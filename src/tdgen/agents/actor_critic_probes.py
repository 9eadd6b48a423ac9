"""Update-rank probes of actor and critic inside actor-critic training (Section 5.2, Figure 4).

A probe draws k distinct samples from the latest rollout and computes, for each probe target of
the algorithm (`PPO.probe_targets`, `DAAC.probe_targets`), the k x k update matrix: row i is the
change at every drawn observation after one optimiser step, from the agent's current optimiser
state, on sample i's loss alone. The actor's entries are norms of the change in action
probabilities (never negative); the critic's are signed changes of V. Compare actor with actor
and critic with critic: the two matrices measure different quantities.

The per-sample losses use the rollout's (normalised) advantages and returns, with log-probabilities
and values recomputed under the parameters being probed, so every ratio starts at 1, as at the
first minibatch of an update. The random baseline repeats this for freshly initialised networks
with fresh optimiser states on the same samples. Every draw derives from the training state's key,
so a resumed run probes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from tdgen.agents.actor_critic import ACState, ActorCriticAgent, Rollout, flat_batch
from tdgen.agents.ppo import log_prob
from tdgen.interference import make_update_matrix, update_rank
from tdgen.runs.rundir import write_npz_atomic

_PROBE_STREAM = 0x50524F42  # fold_in tag separating probe draws from the training stream
TARGETS = ("actor", "critic")


@dataclasses.dataclass(frozen=True)
class ActorCriticProbeResult:
    """Per target ("actor", "critic"): mean update rank over draws, for the trained and for the
    random-parameters networks, and the matrices [draws, k, k]."""

    frames: int
    ranks: dict[str, float]
    ranks_random: dict[str, float]
    matrices: dict[str, np.ndarray]
    matrices_random: dict[str, np.ndarray]
    indices: np.ndarray

    def metrics(self) -> dict[str, float]:
        values = {}
        for name in self.ranks:
            values[f"interference/{name}_update_rank"] = self.ranks[name]
            values[f"interference/{name}_update_rank_random"] = self.ranks_random[name]
        return values

    def save(self, directory: Path) -> Path:
        """probes/step_<frames>.npz: <target>_update_matrix[_random], ranks, sample indices."""
        arrays = {"frames": self.frames, "rollout_indices": self.indices}
        for name in self.ranks:
            arrays[f"{name}_update_matrix"] = self.matrices[name]
            arrays[f"{name}_update_matrix_random"] = self.matrices_random[name]
            arrays[f"{name}_update_rank"] = self.ranks[name]
            arrays[f"{name}_update_rank_random"] = self.ranks_random[name]
        return write_npz_atomic(Path(directory) / f"step_{self.frames:012d}.npz", **arrays)


def probe_key(state: ACState) -> jax.Array:
    return jax.random.fold_in(state.key, _PROBE_STREAM)


def make_actor_critic_probe(agent: ActorCriticAgent, eps: float = 0.1):
    """`probe(state, rollout) -> ActorCriticProbeResult` on the rollout the state was updated on."""
    config, algorithm = agent.config, agent.algorithm
    k = config.probe_k
    targets = algorithm.probe_targets()

    def single(loss_fn):
        def per_sample(params, sample):
            return loss_fn(params, jax.tree.map(lambda x: x[None], sample))

        return per_sample

    matrices = {
        name: make_update_matrix(
            target.apply_fn,
            single(target.loss_fn),
            target.optimizer,
            reduce=target.reduce,
            center=config.probe_center,
            method="exact",
        )  # fmt: skip
        for name, target in targets.items()
    }

    @jax.jit
    def draw(params, rollout: Rollout, key: jax.Array):
        key_sample, key_init = jax.random.split(key)
        data = flat_batch(rollout)
        n = data["obs"].shape[0]
        indices = jax.random.choice(key_sample, n, (k,), replace=False)
        sample = jax.tree.map(lambda x: x[indices], data)
        fresh, fresh_opt = algorithm.fresh(key_init, agent.dummy_obs())

        def under(p):
            logits, value = algorithm.policy_value(p, sample["obs"])
            return {**sample, "logprob": log_prob(logits, sample["action"]), "value": value}

        return under(params), under(fresh), fresh, fresh_opt, indices

    def probe(state: ACState, rollout: Rollout) -> ActorCriticProbeResult:
        keys = jax.random.split(probe_key(state), config.probe_draws)
        mats = {name: [] for name in targets}
        mats_random = {name: [] for name in targets}
        ranks = {name: [] for name in targets}
        ranks_random = {name: [] for name in targets}
        indices = []
        for key in keys:
            trained, random, fresh, fresh_opt, idx = draw(state.params, rollout, key)
            indices.append(np.asarray(idx))
            for name, target in targets.items():
                params, opt_state = target.select(state.params, state.opt_state)
                params_random, opt_random = target.select(fresh, fresh_opt)
                a = np.asarray(matrices[name](params, opt_state, trained))
                a_random = np.asarray(matrices[name](params_random, opt_random, random))
                mats[name].append(a)
                mats_random[name].append(a_random)
                ranks[name].append(int(update_rank(a, eps)))
                ranks_random[name].append(int(update_rank(a_random, eps)))
        return ActorCriticProbeResult(
            frames=int(state.frames),
            ranks={n: float(np.mean(r)) for n, r in ranks.items()},
            ranks_random={n: float(np.mean(r)) for n, r in ranks_random.items()},
            matrices={n: np.stack(m) for n, m in mats.items()},
            matrices_random={n: np.stack(m) for n, m in mats_random.items()},
            indices=np.stack(indices),
        )

    return probe


__all__ = ["TARGETS", "ActorCriticProbeResult", "make_actor_critic_probe", "probe_key"]
