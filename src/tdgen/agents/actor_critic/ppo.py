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

from tdgen import streams
from tdgen.agents.actor_critic import plasticity
from tdgen.agents.actor_critic.config import PPOConfig
from tdgen.agents.interventions import parse_interventions
from tdgen.agents.interventions.applied import Applied, network_options
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
    loss_fn: Callable[[Any, Any, dict[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]],
    applied: Applied,
    params: Any,
    opt_state: Any,
    memory: Any,
    data: dict[str, jax.Array],
    key: jax.Array,
    epochs: int,
    num_minibatches: int,
    updates: jax.Array,
) -> tuple[Any, Any, Any, dict[str, jax.Array], dict[str, jax.Array]]:
    """``epochs`` shuffled passes of minibatch gradient steps over ``data`` (leading axis: samples)
    with ``applied.optimizer``; after each step, `Applied.after_update` on the minibatch's
    observations at the running count of gradient updates (``updates`` made before this call).

    loss_fn(params, memory, minibatch) -> (loss, stats). Returns the new params, optimiser state
    and memory, the mean of the loss and its statistics, and what the events logged (summed).
    """
    n = jax.tree.leaves(data)[0].shape[0]
    size = n // num_minibatches
    optimizer, hooks = applied.optimizer, bool(applied.interventions)
    event_key = jax.random.fold_in(key, streams.INTERVENTIONS)

    def step(carry, minibatch):
        params, opt_state, memory, logs, count = carry
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, memory, minibatch)
        steps, opt_state = optimizer.update(grads, opt_state, params)
        params, count = optax.apply_updates(params, steps), count + 1
        if hooks:
            params, opt_state, memory, fired = applied.after_update(
                params, opt_state, memory, jax.random.fold_in(event_key, count),
                minibatch["obs"], count,
            )  # fmt: skip
            logs = jax.tree.map(jnp.add, logs, fired)
        return (params, opt_state, memory, logs, count), {"loss": loss, **stats}

    def epoch(carry, key):
        order = jax.random.permutation(key, n)
        batches = jax.tree.map(
            lambda x: x[order].reshape((num_minibatches, size) + x.shape[1:]), data
        )
        return jax.lax.scan(step, carry, batches)

    logs = plasticity.zero_logs(applied, params, opt_state, memory, data["obs"][:1])
    carry = (params, opt_state, memory, logs, jnp.asarray(updates, jnp.int32))
    (params, opt_state, memory, logs, _), stats = jax.lax.scan(
        epoch, carry, jax.random.split(key, epochs)
    )
    return params, opt_state, memory, jax.tree.map(jnp.mean, stats), logs


@dataclasses.dataclass(frozen=True)
class PPO:
    """PPO with a shared encoder: one network (policy and value heads), one Adam, one joint loss
    L = surrogate - ent_coef * entropy + vf_coef * value loss (+ the interventions' loss terms).
    ``applied``: the config's interventions bound to the network and Adam
    (`tdgen.agents.actor_critic.plasticity`)."""

    config: PPOConfig
    network: Any
    applied: Applied
    kind: str = "ppo"
    loss_names: tuple[str, ...] = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                                   "clipfrac")  # fmt: skip

    @classmethod
    def build(cls, config: PPOConfig, observation_shape, num_actions: int) -> PPO:
        interventions = parse_interventions(config.interventions, lr=config.lr)
        kwargs = {**network_kwargs(config, observation_shape), **network_options(interventions)}
        network = make_network(config.encoder, "policy+value", num_actions, **kwargs)
        return cls(config, network,
                   plasticity.bind(interventions, network, observation_shape, make_adam(config)))  # fmt: skip

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """Adam after clipping, wrapped by the optimiser interventions."""
        return self.applied.optimizer

    def init(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any, Any]:
        """(params, optimiser state, interventions' memory) at the start."""
        params, memory = plasticity.init(self.applied, key, self.network.init(key, dummy_obs))
        return params, self.optimizer.init(params), memory

    def zero_logs(self, params, opt_state, memory, obs: jax.Array) -> dict[str, jax.Array]:
        """{key: 0} of every key the events log (``interventions/<name>/<what>``)."""
        return plasticity.zero_logs(self.applied, params, opt_state, memory, obs)

    def effective_params(self, params, memory):
        """The plain network's variables computing the trained outputs (`plasticity`)."""
        return plasticity.effective_params(self.applied, params, memory)

    def policy_value(self, params, obs: jax.Array, memory=None) -> tuple[jax.Array, jax.Array]:
        """(policy logits [n, A], values [n]); ``memory`` None: ``params`` are effective."""
        out = plasticity.forward(self.applied, params, memory, obs)
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

    def loss(self, params, memory, batch) -> tuple[jax.Array, dict[str, jax.Array]]:
        c = self.config
        logits, value = self.policy_value(params, batch["obs"], memory)
        surrogate, stats = clipped_surrogate(
            log_prob(logits, batch["action"]), batch["logprob"], batch["advantage"], c.clip_coef
        )
        value_loss = clipped_value_loss(value, batch["value"], batch["return"], c.clip_coef,
                                        c.clip_value)  # fmt: skip
        entropy = jnp.mean(categorical_entropy(logits))
        loss = surrogate - c.ent_coef * entropy + c.vf_coef * value_loss
        return loss, {"policy_loss": surrogate, "value_loss": value_loss, "entropy": entropy,
                      **stats}  # fmt: skip

    def update(self, params, opt_state, memory, data, key, iteration):
        """``epochs`` passes of the joint loss over the rollout ``data`` (flat [n, ...]);
        returns (params, opt_state, memory, stats, events' logs)."""
        c = self.config
        per_iteration = c.epochs * c.num_minibatches
        return minibatch_epochs(
            plasticity.with_loss_terms(self.applied, self.loss), self.applied, params,
            opt_state, memory, data, key, c.epochs, c.num_minibatches,
            plasticity.updates_before(iteration, per_iteration),
        )  # fmt: skip

    def fresh(self, key: jax.Array, dummy_obs: jax.Array) -> tuple[Any, Any]:
        """Freshly initialised (effective) params and optimiser state: the probes' random
        baseline (a fresh memory has injected nothing, so its params are the effective ones)."""
        params, opt_state, _ = self.init(key, dummy_obs)
        return params, opt_state

    def probe_targets(self) -> dict[str, ProbeTarget]:
        """Actor: the actor loss, read through the action probabilities; critic: the value loss,
        read through V. Both steps move the whole network, shared encoder included, with the
        agent's own (wrapped) optimiser and state, so each matrix shows how the encoder's share of
        that loss's step spreads to other states (the other head's gradient is zero). The probe
        reads the network at its effective parameters (`effective_params`), whose outputs are
        `Applied.apply`'s; the losses are the agent's own, without the interventions' terms."""

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
