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

from tdgen.agents.actor_critic.config import DAACConfig
from tdgen.agents.actor_critic.ppo import make_adam, minibatch_epochs, network_kwargs
from tdgen.agents.probes import ProbeTarget, per_sample
from tdgen.losses.policy import categorical_entropy, clipped_surrogate, clipped_value_loss, log_prob
from tdgen.nets import make_network


def advantage_loss(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """E[(A(s, a) - target)^2], DAAC's advantage regression (without its coefficient)."""
    return jnp.mean(jnp.square(predicted - target))


def value_update_due(iteration: jax.Array, value_freq: int) -> jax.Array:
    """Whether the value network trains at ``iteration`` (counted from 0): every value_freq-th."""
    return iteration % value_freq == 0


@dataclasses.dataclass(frozen=True)
class DAAC:
    """Policy network (policy + advantage heads) and value network, params {"policy", "value"}."""

    config: DAACConfig
    policy_network: Any
    value_network: Any
    optimizer: optax.GradientTransformation  # one Adam per network (the same settings)
    kind: str = "daac"
    loss_names: tuple[str, ...] = ("loss", "policy_loss", "advantage_loss", "value_loss",
                                   "entropy", "approx_kl", "clipfrac")  # fmt: skip

    @classmethod
    def build(cls, config: DAACConfig, observation_shape, num_actions: int) -> DAAC:
        kwargs = network_kwargs(config, observation_shape)
        policy = make_network(config.encoder, "policy+advantage", num_actions, **kwargs)
        value = make_network(config.encoder, "value", num_actions, **kwargs)
        return cls(config, policy, value, make_adam(config))

    def init(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        key_policy, key_value = jax.random.split(key)
        params = {
            "policy": self.policy_network.init(key_policy, dummy_obs),
            "value": self.value_network.init(key_value, dummy_obs),
        }
        return params, {name: self.optimizer.init(p) for name, p in params.items()}

    def fresh(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        return self.init(key, dummy_obs)

    def policy_value(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(policy logits [n, A] of the policy network, values [n] of the value network)."""
        logits = self.policy_network.apply(params["policy"], obs)["policy"]
        return logits, self.value_network.apply(params["value"], obs)

    def policy_loss(self, policy_params, batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Surrogate - ent_coef * entropy + adv_loss_coef * advantage regression."""
        c = self.config
        out = self.policy_network.apply(policy_params, batch["obs"], batch["action"])
        logits = out["policy"]
        surrogate, stats = clipped_surrogate(
            log_prob(logits, batch["action"]), batch["logprob"], batch["advantage"], c.clip_coef
        )
        adv_loss = advantage_loss(out["advantage"], batch["advantage"])
        entropy = jnp.mean(categorical_entropy(logits))
        loss = surrogate - c.ent_coef * entropy + c.adv_loss_coef * adv_loss
        return loss, {"policy_loss": surrogate, "advantage_loss": adv_loss, "entropy": entropy,
                      **stats}  # fmt: skip

    def value_loss(self, value_params, batch) -> jax.Array:
        c = self.config
        value = self.value_network.apply(value_params, batch["obs"])
        return clipped_value_loss(value, batch["value"], batch["return"], c.clip_coef, c.clip_value)

    def update(self, params, opt_state, data, key, iteration) -> tuple[Any, Any, dict]:
        """Policy epochs every iteration; value epochs when `value_update_due(iteration)`."""
        c = self.config
        key_policy, key_value = jax.random.split(key)
        policy, policy_opt, stats = minibatch_epochs(
            self.policy_loss, self.optimizer, params["policy"], opt_state["policy"], data,
            key_policy, c.epochs, c.num_minibatches,
        )  # fmt: skip

        def train_value(operand):
            value_params, value_opt = operand
            value_params, value_opt, value_stats = minibatch_epochs(
                lambda p, b: (self.value_loss(p, b), {}), self.optimizer, value_params,
                value_opt, data, key_value, c.value_epochs, c.num_minibatches,
            )  # fmt: skip
            return value_params, value_opt, value_stats["loss"]

        def skip(operand):
            return (*operand, jnp.float32(jnp.nan))

        value, value_opt, value_loss = jax.lax.cond(
            value_update_due(iteration, c.value_freq), train_value, skip,
            (params["value"], opt_state["value"]),
        )  # fmt: skip
        stats = {**stats, "value_loss": value_loss}
        return ({"policy": policy, "value": value}, {"policy": policy_opt, "value": value_opt},
                stats)  # fmt: skip

    def probe_targets(self) -> dict[str, ProbeTarget]:
        """Actor: the policy network and its whole loss (advantage head included), read through
        the action probabilities; critic: the value network and the value loss, read through V."""
        return {
            "actor": ProbeTarget(
                apply_fn=lambda p, x: self.policy_network.apply(p, x)["policy"],
                loss_fn=per_sample(lambda p, t: self.policy_loss(p, t)[0]), optimizer=self.optimizer,
                reduce="policy", select=lambda p, o: (p["policy"], o["policy"]),
                model=self.policy_network,
            ),
            "critic": ProbeTarget(
                apply_fn=self.value_network.apply, loss_fn=per_sample(self.value_loss),
                optimizer=self.optimizer, reduce="none",
                select=lambda p, o: (p["value"], o["value"]), model=self.value_network,
            ),
        }  # fmt: skip


__all__ = ["DAAC", "advantage_loss", "value_update_due"]
