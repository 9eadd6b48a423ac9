"""PPO (Schulman et al. 2017) with one encoder shared by actor and critic, and the policy-gradient
losses DAAC reuses: clipped surrogate, clipped value loss, categorical entropy, GAE.

Losses are pure functions of arrays; `PPO` holds the network and optimiser and contributes the
minibatch update and the probe targets to the shared loop in `tdgen.agents.actor_critic`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.actor_critic_config import PPOConfig
from tdgen.nets import make_network


def gae(
    reward: jax.Array,
    value: jax.Array,
    done: jax.Array,
    last_value: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and returns (Schulman et al. 2016), arrays [T, ...].

    done[t] ends the episode after step t (no bootstrap across it; a truncated episode's
    bootstrap is already folded into reward[t]); last_value is V of the state after step T-1.
    Returns (advantages, advantages + value).
    """

    def backward(carry, step):
        next_advantage, next_value = carry
        r, v, d = step
        nonterminal = 1.0 - d.astype(v.dtype)
        delta = r + gamma * next_value * nonterminal - v
        advantage = delta + gamma * lam * nonterminal * next_advantage
        return (advantage, v), advantage

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(backward, init, (reward, value, done), reverse=True)
    return advantages, advantages + value


def clipped_surrogate(
    logp: jax.Array, logp_old: jax.Array, advantage: jax.Array, clip: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped objective as a loss, mean over the batch: -E[min(r A, clip(r) A)].

    Also returns the share of clipped ratios and the approximate KL E[(r - 1) - log r].
    """
    log_ratio = logp - logp_old
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantage
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    stats = {
        "clipfrac": jnp.mean((jnp.abs(ratio - 1.0) > clip).astype(jnp.float32)),
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
    }
    return loss, stats


def clipped_value_loss(
    value: jax.Array, value_old: jax.Array, target: jax.Array, clip: float, clip_value: bool
) -> jax.Array:
    """0.5 E[(V - target)^2], or PPO2's pessimistic max with V clipped to value_old +- clip."""
    unclipped = jnp.square(value - target)
    if not clip_value:
        return 0.5 * jnp.mean(unclipped)
    clipped_v = value_old + jnp.clip(value - value_old, -clip, clip)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(clipped_v - target)))


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """Entropy of softmax(logits) over the last axis, [...]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(action | s) for logits [..., A] and integer actions [...]."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def make_adam(config: PPOConfig) -> optax.GradientTransformation:
    """Adam after global gradient-norm clipping (none when max_grad_norm is 0)."""
    adam = optax.adam(config.lr, eps=config.adam_eps)
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
class ProbeTarget:
    """What one update-rank probe differentiates: a network's output and the loss that trains it.

    select(params, opt_state) picks the parameters and optimiser state the step acts on;
    loss_fn(sub_params, transition) is that network's loss on one transition (batch of 1);
    apply_fn(sub_params, obs [m, ...]) the outputs the matrix reads, reduced by ``reduce``
    ("policy": the norm of the change in action probabilities; "none": a scalar value).
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    loss_fn: Callable[[Any, dict[str, jax.Array]], jax.Array]
    optimizer: optax.GradientTransformation
    reduce: str
    select: Callable[[Any, Any], tuple[Any, Any]]


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
                loss_fn=lambda p, t: self.actor_loss(p, t)[0],
                optimizer=self.optimizer, reduce="policy", select=whole,
            ),
            "critic": ProbeTarget(
                apply_fn=lambda p, x: self.network.apply(p, x)["value"],
                loss_fn=self.critic_loss, optimizer=self.optimizer, reduce="none", select=whole,
            ),
        }  # fmt: skip


__all__ = [
    "PPO",
    "ProbeTarget",
    "categorical_entropy",
    "clipped_surrogate",
    "clipped_value_loss",
    "gae",
    "log_prob",
    "make_adam",
    "minibatch_epochs",
]
