"""PPO (Schulman et al. 2017) with one encoder shared by actor and critic.

The losses are `tdgen.losses.policy`'s (clipped surrogate, clipped value loss, entropy, GAE);
`PPO` holds the network and optimiser and contributes the minibatch update and the probe targets
to the shared loop in `tdgen.agents.actor_critic.agent`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.actor_critic.config import PPOConfig
from tdgen.agents.probes import ProbeTarget, per_sample
from tdgen.losses.policy import (
    categorical_entropy,
    clipped_surrogate,
    clipped_value_loss,
    log_prob,
)
from tdgen.nets import make_network


def make_adam(config: PPOConfig) -> optax.GradientTransformation:
    """Adam after global gradient-norm clipping (none when max_grad_norm is 0)."""
    adam = optax.adam(config.lr, eps=config.eps)
    if config.max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)
    return adam


def network_kwargs(config: PPOConfig, observation_shape: tuple[int, ...]) -> dict[str, Any]:
    """Encoder arguments: hidden width, and conv lowering or the MLP's observation rank."""
    if config.encoder == "mlp":
        return {"hidden_sizes": (config.hidden_size, config.hidden_size),
                "obs_ndim": len(observation_shape)}  # fmt: skip
    return {"hidden_size": config.hidden_size, "conv_impl": config.conv_impl}


def minibatch_epochs(
    loss_fn: Callable[[Any, dict[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]],
    optimizer: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    data: dict[str, jax.Array],
    key: jax.Array,
    epochs: int,
    num_minibatches: int,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """``epochs`` shuffled passes of minibatch gradient steps over ``data`` (leading axis: samples).

    Returns the new params and optimiser state and the mean of the loss and its statistics.
    """
    n = jax.tree.leaves(data)[0].shape[0]
    size = n // num_minibatches

    def step(carry, minibatch):
        params, opt_state = carry
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, minibatch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, **stats}

    def epoch(carry, key):
        order = jax.random.permutation(key, n)
        batches = jax.tree.map(
            lambda x: x[order].reshape((num_minibatches, size) + x.shape[1:]), data
        )
        return jax.lax.scan(step, carry, batches)

    (params, opt_state), stats = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, epochs)
    )
    return params, opt_state, jax.tree.map(jnp.mean, stats)


@dataclasses.dataclass(frozen=True)
class PPO:
    """PPO with a shared encoder: one network (policy and value heads), one Adam, one joint loss
    L = surrogate - ent_coef * entropy + vf_coef * value loss."""

    config: PPOConfig
    network: Any
    optimizer: optax.GradientTransformation
    kind: str = "ppo"
    loss_names: tuple[str, ...] = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                                   "clipfrac")  # fmt: skip

    @classmethod
    def build(cls, config: PPOConfig, observation_shape, num_actions: int) -> PPO:
        kwargs = network_kwargs(config, observation_shape)
        network = make_network(config.encoder, "policy+value", num_actions, **kwargs)
        return cls(config, network, make_adam(config))

    def init(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        params = self.network.init(key, dummy_obs)
        return params, self.optimizer.init(params)

    def policy_value(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(policy logits [n, A], values [n])."""
        out = self.network.apply(params, obs)
        return out["policy"], out["value"]

    def actor_loss(self, params, batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Clipped surrogate minus the entropy bonus (the actor's part of the joint loss)."""
        logits = self.network.apply(params, batch["obs"])["policy"]
        surrogate, stats = clipped_surrogate(
            log_prob(logits, batch["action"]), batch["logprob"], batch["advantage"],
            self.config.clip_coef,
        )  # fmt: skip
        entropy = jnp.mean(categorical_entropy(logits))
        return surrogate - self.config.ent_coef * entropy, {"entropy": entropy, **stats}

    def critic_loss(self, params, batch) -> jax.Array:
        value = self.network.apply(params, batch["obs"])["value"]
        c = self.config
        return clipped_value_loss(value, batch["value"], batch["return"], c.clip_coef, c.clip_value)

    def loss(self, params, batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        c = self.config
        out = self.network.apply(params, batch["obs"])
        logits, value = out["policy"], out["value"]
        surrogate, stats = clipped_surrogate(
            log_prob(logits, batch["action"]), batch["logprob"], batch["advantage"], c.clip_coef
        )
        value_loss = clipped_value_loss(value, batch["value"], batch["return"], c.clip_coef,
                                        c.clip_value)  # fmt: skip
        entropy = jnp.mean(categorical_entropy(logits))
        loss = surrogate - c.ent_coef * entropy + c.vf_coef * value_loss
        return loss, {"policy_loss": surrogate, "value_loss": value_loss, "entropy": entropy,
                      **stats}  # fmt: skip

    def update(self, params, opt_state, data, key, iteration) -> tuple[Any, Any, dict]:
        """``epochs`` passes of the joint loss over the rollout ``data`` (flat [n, ...])."""
        del iteration
        c = self.config
        return minibatch_epochs(self.loss, self.optimizer, params, opt_state, data, key,
                                c.epochs, c.num_minibatches)  # fmt: skip

    def fresh(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        """Freshly initialised params and optimiser state: the probes' random baseline."""
        return self.init(key, dummy_obs)

    def probe_targets(self) -> dict[str, ProbeTarget]:
        """Actor: the actor loss, read through the action probabilities; critic: the value loss,
        read through V. Both steps move the whole network, shared encoder included, with the
        agent's own optimiser and state, so each matrix shows how the encoder's share of that
        loss's step spreads to other states (the other head's gradient is zero)."""

        def whole(params, opt_state):
            return params, opt_state

        return {
            "actor": ProbeTarget(
                apply_fn=lambda p, x: self.network.apply(p, x)["policy"],
                loss_fn=per_sample(lambda p, t: self.actor_loss(p, t)[0]),
                optimizer=self.optimizer, reduce="policy", select=whole, model=self.network,
            ),
            "critic": ProbeTarget(
                apply_fn=lambda p, x: self.network.apply(p, x)["value"],
                loss_fn=per_sample(self.critic_loss), optimizer=self.optimizer, reduce="none",
                select=whole, model=self.network,
            ),
        }  # fmt: skip


__all__ = ["PPO", "make_adam", "minibatch_epochs", "network_kwargs"]
