"""DAAC (Raileanu & Fergus 2021): decoupled advantage actor-critic.

Two networks with their own encoders and Adam optimisers. The policy network has a policy head
and an advantage head A(s, a) on (features, one-hot action); it trains on PPO's clipped
surrogate, the entropy bonus and ``adv_loss_coef`` times the squared error of A(s, a) against the
(normalised) GAE advantages, for ``epochs`` passes every iteration. The value network trains on
the (clipped) value loss alone, ``value_epochs`` passes every ``value_freq`` iterations. The value
network therefore sees TD-style (GAE) targets only: the paper's H2 expects its update rank to be
the highest (Section 5.2, Figure 4).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.actor_critic import plasticity
from tdgen.agents.actor_critic.config import DAACConfig
from tdgen.agents.actor_critic.ppo import make_adam, minibatch_epochs, network_kwargs
from tdgen.agents.interventions import parse_interventions
from tdgen.agents.interventions.applied import Applied, network_options
from tdgen.agents.probes import ProbeTarget, per_sample
from tdgen.losses.policy import categorical_entropy, clipped_surrogate, clipped_value_loss, log_prob
from tdgen.nets import make_network


def advantage_loss(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """E[(A(s, a) - target)^2], DAAC's advantage regression (without its coefficient)."""
    return jnp.mean(jnp.square(predicted - target))


def value_update_due(iteration: jax.Array, value_freq: int) -> jax.Array:
    """Whether the value network trains at ``iteration`` (counted from 0): every value_freq-th."""
    return iteration % value_freq == 0


NETWORKS = {"policy": "actor", "value": "critic"}  # params key -> logged name (as the probes')


@dataclasses.dataclass(frozen=True)
class DAAC:
    """Policy network (policy + advantage heads) and value network, params {"policy", "value"};
    the config's interventions apply to both, each network with its own `Applied` (its own Adam,
    memory and update count), memory {"policy", "value"}, events logged as
    ``interventions/actor/...`` and ``interventions/critic/...`` (the probes' names)."""

    config: DAACConfig
    policy_network: Any
    value_network: Any
    applied: dict[str, Applied]  # one per network: the interventions on it and its (wrapped) Adam
    kind: str = "daac"
    loss_names: tuple[str, ...] = ("loss", "policy_loss", "advantage_loss", "value_loss",
                                   "entropy", "approx_kl", "clipfrac")  # fmt: skip

    @classmethod
    def build(cls, config: DAACConfig, observation_shape, num_actions: int) -> DAAC:
        interventions = parse_interventions(config.interventions, lr=config.lr)
        kwargs = {**network_kwargs(config, observation_shape), **network_options(interventions)}
        policy = make_network(config.encoder, "policy+advantage", num_actions, **kwargs)
        value = make_network(config.encoder, "value", num_actions, **kwargs)
        applied = {
            name: plasticity.bind(interventions, network, observation_shape, make_adam(config))
            for name, network in (("policy", policy), ("value", value))
        }
        return cls(config, policy, value, applied)

    @property
    def optimizer(self) -> dict[str, optax.GradientTransformation]:
        """Each network's Adam, wrapped by the optimiser interventions."""
        return {name: applied.optimizer for name, applied in self.applied.items()}

    def init(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any, Any]:
        key_policy, key_value = jax.random.split(key)
        params = {
            "policy": self.policy_network.init(key_policy, dummy_obs),
            "value": self.value_network.init(key_value, dummy_obs),
        }
        keys = {"policy": key_policy, "value": key_value}
        both = {n: plasticity.init(self.applied[n], keys[n], p) for n, p in params.items()}
        params = {n: p for n, (p, _) in both.items()}
        memory = {n: m for n, (_, m) in both.items()}
        return params, {n: self.optimizer[n].init(p) for n, p in params.items()}, memory

    def fresh(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        """Fresh (effective) params and optimiser states: the probes' random baseline."""
        return self.init(key, dummy_obs)[:2]

    def zero_logs(self, params, opt_state, memory, obs: jax.Array) -> dict[str, jax.Array]:
        return {
            k: v
            for n, applied in self.applied.items()
            for k, v in plasticity.zero_logs(
                applied, params[n], opt_state[n], memory[n], obs, NETWORKS[n]
            ).items()
        }

    def effective_params(self, params, memory):
        return {n: plasticity.effective_params(a, params[n], memory[n])
                for n, a in self.applied.items()}  # fmt: skip

    def policy_value(self, params, obs: jax.Array, memory=None) -> tuple[jax.Array, jax.Array]:
        """(policy logits [n, A] of the policy network, values [n] of the value network);
        ``memory`` None: ``params`` are effective."""
        memory = {"policy": None, "value": None} if memory is None else memory
        out = plasticity.forward(self.applied["policy"], params["policy"], memory["policy"], obs)
        value = plasticity.forward(self.applied["value"], params["value"], memory["value"], obs)
        return out["policy"], value

    def policy_loss(self, policy_params, batch, memory=None):
        """Surrogate - ent_coef * entropy + adv_loss_coef * advantage regression."""
        c = self.config
        out = plasticity.forward(self.applied["policy"], policy_params, memory, batch["obs"],
                                 batch["action"])  # fmt: skip
        logits = out["policy"]
        surrogate, stats = clipped_surrogate(
            log_prob(logits, batch["action"]), batch["logprob"], batch["advantage"], c.clip_coef
        )
        adv_loss = advantage_loss(out["advantage"], batch["advantage"])
        entropy = jnp.mean(categorical_entropy(logits))
        loss = surrogate - c.ent_coef * entropy + c.adv_loss_coef * adv_loss
        return loss, {"policy_loss": surrogate, "advantage_loss": adv_loss, "entropy": entropy,
                      **stats}  # fmt: skip

    def value_loss(self, value_params, batch, memory=None) -> jax.Array:
        c = self.config
        value = plasticity.forward(self.applied["value"], value_params, memory, batch["obs"])
        return clipped_value_loss(value, batch["value"], batch["return"], c.clip_coef, c.clip_value)

    def update(self, params, opt_state, memory, data, key, iteration):
        """Policy epochs every iteration; value epochs when `value_update_due(iteration)`.
        Returns (params, opt_state, memory, stats, events' logs)."""
        c = self.config
        key_policy, key_value = jax.random.split(key)
        policy_loss = plasticity.with_loss_terms(
            self.applied["policy"], lambda p, m, b: self.policy_loss(p, b, m)
        )
        policy, policy_opt, policy_memory, stats, policy_logs = minibatch_epochs(
            policy_loss, self.applied["policy"], params["policy"], opt_state["policy"],
            memory["policy"], data, key_policy, c.epochs, c.num_minibatches,
            plasticity.updates_before(iteration, c.epochs * c.num_minibatches),
        )  # fmt: skip
        value_loss = plasticity.with_loss_terms(
            self.applied["value"], lambda p, m, b: (self.value_loss(p, b, m), {})
        )

        def train_value(operand):
            value_params, value_opt, value_memory = operand
            value_params, value_opt, value_memory, value_stats, logs = minibatch_epochs(
                value_loss, self.applied["value"], value_params, value_opt, value_memory, data,
                key_value, c.value_epochs, c.num_minibatches,
                plasticity.updates_before(iteration, c.value_epochs * c.num_minibatches,
                                          c.value_freq),
            )  # fmt: skip
            return value_params, value_opt, value_memory, value_stats["loss"], logs

        def skip(operand):
            params, opt, mem = operand
            zeros = plasticity.zero_logs(self.applied["value"], params, opt, mem, data["obs"][:1])
            return (*operand, jnp.float32(jnp.nan), zeros)

        value, value_opt, value_memory, value_loss, value_logs = jax.lax.cond(
            value_update_due(iteration, c.value_freq), train_value, skip,
            (params["value"], opt_state["value"], memory["value"]),
        )  # fmt: skip
        stats = {**stats, "value_loss": value_loss}
        logs = {**plasticity.prefixed(policy_logs, NETWORKS["policy"]),
                **plasticity.prefixed(value_logs, NETWORKS["value"])}  # fmt: skip
        return ({"policy": policy, "value": value}, {"policy": policy_opt, "value": value_opt},
                {"policy": policy_memory, "value": value_memory}, stats, logs)  # fmt: skip

    def probe_targets(self) -> dict[str, ProbeTarget]:
        """Actor: the policy network and its whole loss (advantage head included), read through
        the action probabilities; critic: the value network and the value loss, read through V.
        Each with its network's own (wrapped) Adam, at the effective parameters
        (`effective_params`); the losses are the agent's own, without the interventions' terms."""
        optimizer = self.optimizer
        return {
            "actor": ProbeTarget(
                apply_fn=lambda p, x: self.policy_network.apply(p, x)["policy"],
                loss_fn=per_sample(lambda p, t: self.policy_loss(p, t)[0]),
                optimizer=optimizer["policy"], reduce="policy",
                select=lambda p, o: (p["policy"], o["policy"]), model=self.policy_network,
            ),
            "critic": ProbeTarget(
                apply_fn=self.value_network.apply, loss_fn=per_sample(self.value_loss),
                optimizer=optimizer["value"], reduce="none",
                select=lambda p, o: (p["value"], o["value"]), model=self.value_network,
            ),
        }  # fmt: skip


__all__ = ["DAAC", "NETWORKS", "advantage_loss", "value_update_due"]
