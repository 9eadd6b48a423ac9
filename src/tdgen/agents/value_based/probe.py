"""The value-based agents' probe (Section 5.1, App. B.1): `tdgen.agents.probes` on replay
transitions, with the agent's own per-transition loss and its current target network.

The random baseline is a freshly initialised network with a fresh optimiser state on the same
transitions, with its own outputs as targets. Reductions: max over actions (DQN), expectation
over atoms then max (C51), mean over quantiles then max (QR-DQN), from the `Algorithm`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from tdgen.agents.probes import VALUE, Draw, ProbeResult, ProbeTarget, ProbeView, make_probe
from tdgen.agents.value_based import replay as replay_lib
from tdgen.agents.value_based.agent import Agent, TrainState


def probe_target(agent: Agent) -> ProbeTarget:
    """The value network through the algorithm's reduction, trained by its TD loss on one
    transition (never the interventions' loss terms) with the agent's optimiser (wrapped by its
    optimiser interventions). It reads the network at its effective parameters
    (`Agent.effective_params`, which `make_value_probe` gives it), whose outputs are
    `Applied.apply`'s: plasticity injection's Eq. 1 folded into the affine heads, so a step
    moves the combined head by the new head's step (optimiser wrappers that read the parameters,
    weight decay and TRAC, see the combined head)."""
    algorithm = agent.algorithm

    def loss_fn(params, t):
        outputs = agent.apply(params, t["obs"][None])[0]
        return algorithm.transition_loss(
            outputs, t["action"], t["reward"], t["discount"], t["target_outputs"]
        )

    apply_fn = agent.apply
    if algorithm.probe_outputs is not None:

        def apply_fn(params, obs):
            return algorithm.probe_outputs(agent.apply(params, obs))

    return ProbeTarget(apply_fn, loss_fn, agent.optimizer, reduce=algorithm.probe_reduce,
                       support=algorithm.probe_support, model=agent.network,
                       model_input=lambda obs: obs.astype(agent.env.observation_dtype))  # fmt: skip


def make_draw(agent: Agent) -> Callable[[jax.Array, replay_lib.Replay, jax.Array], Draw]:
    """`draw(target_params, replay, key)`: k distinct stored transitions and a fresh network."""
    config = agent.config

    @jax.jit
    def draw(target_params, replay: replay_lib.Replay, key: jax.Array) -> Draw:
        key_sample, key_init = jax.random.split(key)
        batch, indices = replay_lib.sample_distinct(replay, key_sample, config.probe_k)
        fresh = agent.init_params(key_init)
        discount = config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        common = {"obs": batch["obs"], "action": batch["action"], "reward": batch["reward"],
                  "discount": discount}  # fmt: skip
        trained = {**common, "target_outputs": agent.apply(target_params, batch["next_obs"])}
        random = {**common, "target_outputs": agent.apply(fresh, batch["next_obs"])}
        return Draw(trained, random, fresh, agent.optimizer.init(fresh), indices)

    return draw


def make_value_probe(agent: Agent) -> Callable[..., ProbeResult | None]:
    """`probe(state) -> ProbeResult`, or None while the replay holds fewer than k transitions.

    ``probe(state, replay=..., view=...)`` probes another replay (the Atari host loop's gathered
    transitions) or parameters held elsewhere; by default both come from the gymnax state.
    """
    config = agent.config
    probe = make_probe({VALUE: probe_target(agent)}, make_draw(agent),
                       center=config.probe_center, draws=config.probe_draws,
                       measures=config.probe_measures)  # fmt: skip

    def run(state: TrainState, replay=None, view: ProbeView | None = None) -> ProbeResult | None:
        replay = state.replay if replay is None else replay
        if int(replay.filled) * replay.num_envs < config.probe_k:
            return None
        if view is None:
            params = agent.effective_params(state.params, state.memory)
            view = ProbeView(params, state.opt_state, state.key, int(state.frames))
        return probe(view, state.target_params, replay)

    return run


__all__ = ["make_draw", "make_value_probe", "probe_target"]
