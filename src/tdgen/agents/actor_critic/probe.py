"""The actor-critic probes (Section 5.2, Figure 4): `tdgen.agents.probes` on rollout samples.

A probe draws k distinct samples from the latest rollout; each of the algorithm's targets
(`PPO.probe_targets`, `DAAC.probe_targets`) gives a k x k update matrix: row i is the change at
every drawn observation after one optimiser step, from the agent's current optimiser state, on
sample i's loss alone. The actor's entries are norms of the change in action probabilities (never
negative); the critic's are signed changes of V. Compare actor with actor and critic with critic:
the two matrices measure different quantities.

The per-sample losses use the rollout's (normalised) advantages and returns, with log-probabilities
and values recomputed under the parameters being probed, so every ratio starts at 1, as at the
first minibatch of an update. The random baseline repeats this for freshly initialised networks
with fresh optimiser states on the same samples.

With plasticity interventions the probes read each network at its effective parameters (the
plain network computing `Applied.apply`'s outputs: plasticity injection folded into the heads),
step it with the agent's wrapped optimiser and state, and leave the interventions' loss terms out
(InFeR's ``infer`` collection rides along untouched: the networks do not read it).
"""

from __future__ import annotations

import jax

from tdgen.agents.actor_critic.agent import ACState, ActorCriticAgent, Rollout, flat_batch
from tdgen.agents.probes import Draw, ProbeResult, ProbeView, make_probe
from tdgen.losses.policy import log_prob

TARGETS = ("actor", "critic")


def make_actor_critic_probe(agent: ActorCriticAgent):
    """`probe(state, rollout) -> ProbeResult` on the rollout the state was updated on."""
    config, algorithm = agent.config, agent.algorithm
    k = config.probe_k

    @jax.jit
    def draw(params, rollout: Rollout, key: jax.Array) -> Draw:
        key_sample, key_init = jax.random.split(key)
        data = flat_batch(rollout)
        n = data["obs"].shape[0]
        indices = jax.random.choice(key_sample, n, (k,), replace=False)
        sample = jax.tree.map(lambda x: x[indices], data)
        fresh, fresh_opt = algorithm.fresh(key_init, agent.dummy_obs())

        def under(p):
            logits, value = algorithm.policy_value(p, sample["obs"])
            return {**sample, "logprob": log_prob(logits, sample["action"]), "value": value}

        return Draw(under(params), under(fresh), fresh, fresh_opt, indices)

    probe = make_probe(algorithm.probe_targets(), draw, center=config.probe_center,
                       draws=config.probe_draws, measures=config.probe_measures)  # fmt: skip

    def run(state: ACState, rollout: Rollout) -> ProbeResult:
        params = algorithm.effective_params(state.params, state.memory)
        view = ProbeView(params, state.opt_state, state.key, int(state.frames))
        return probe(view, params, rollout)

    return run


__all__ = ["TARGETS", "make_actor_critic_probe"]
