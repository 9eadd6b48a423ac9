"""Output heads: features [..., d] -> the quantity an agent needs.

Policy and value heads use orthogonal initialisation with gains 0.01 and 1.0, as in the PPO and
DAAC code of Raileanu & Fergus 2021; the value-based heads keep flax's default (LeCun normal).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class QHead(nn.Module):
    """Action values Q(s, .) [..., num_actions] (Mnih et al. 2015)."""

    num_actions: int

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        return nn.Dense(self.num_actions)(features)


class C51Head(nn.Module):
    """Categorical return logits [..., num_actions, num_atoms] (Bellemare et al. 2017)."""

    num_actions: int
    num_atoms: int = 51

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        logits = nn.Dense(self.num_actions * self.num_atoms)(features)
        return logits.reshape(features.shape[:-1] + (self.num_actions, self.num_atoms))


class QuantileHead(nn.Module):
    """Return quantiles [..., num_actions, num_quantiles] (QR-DQN, Dabney et al. 2018)."""

    num_actions: int
    num_quantiles: int = 200

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        theta = nn.Dense(self.num_actions * self.num_quantiles)(features)
        return theta.reshape(features.shape[:-1] + (self.num_actions, self.num_quantiles))


class PolicyHead(nn.Module):
    """Categorical policy logits [..., num_actions] (Schulman et al. 2017; gain 0.01)."""

    num_actions: int

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))(features)


class ValueHead(nn.Module):
    """State value V(s) [...] (Schulman et al. 2017; gain 1.0)."""

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(features)
        return value[..., 0]


class AdvantageHead(nn.Module):
    """DAAC advantage A(s, a) from concat(features, one_hot(a)) (Raileanu & Fergus 2021).

    With ``action`` [...] (int) returns [...]; with ``action=None`` returns A(s, .) for every
    action, [..., num_actions], by evaluating the same dense layer on each one-hot.
    """

    num_actions: int

    @nn.compact
    def __call__(self, features: jnp.ndarray, action: jnp.ndarray | None = None) -> jnp.ndarray:
        dense = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))
        if action is not None:
            one_hot = jax.nn.one_hot(action, self.num_actions, dtype=features.dtype)
            return dense(jnp.concatenate([features, one_hot], axis=-1))[..., 0]
        eye = jnp.eye(self.num_actions, dtype=features.dtype)
        tiled = jnp.broadcast_to(
            features[..., None, :], features.shape[:-1] + (self.num_actions, features.shape[-1])
        )
        eye = jnp.broadcast_to(eye, features.shape[:-1] + eye.shape)
        return dense(jnp.concatenate([tiled, eye], axis=-1))[..., 0]
