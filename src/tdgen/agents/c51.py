"""C51 (Bellemare et al. 2017): a categorical return distribution on fixed atoms, cross-entropy.

The algorithm is `categorical_q_learning_loss` on one transition, built on the projection of the
shifted target distribution back onto the atoms (`categorical_projection`). The loop and presets
are shared with DQN (`tdgen.agents.value_based`); C51 acts greedily on the expected return.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.agents.config import ValueBasedConfig
from tdgen.agents.value_based import Algorithm


def categorical_projection(
    support: jax.Array, target_support: jax.Array, probs: jax.Array
) -> jax.Array:
    """Project a distribution on ``target_support`` [N'] onto the fixed atoms ``support`` [N].

    Bellemare et al. 2017, Algorithm 1: each target atom is clipped to [z_0, z_{N-1}] and its
    mass split between the two neighbouring atoms in proportion to closeness. Written as the
    triangular kernel q_j = sum_i p_i * clip(1 - |Tz_i - z_j| / dz, 0, 1) (rlax's form), which
    also handles a target atom landing exactly on an atom, where floor = ceil. ``support`` must be
    evenly spaced and increasing. Returns probabilities [N].
    """
    if support.ndim != 1 or target_support.shape != probs.shape or probs.ndim != 1:
        raise ValueError(
            f"expected support [N], target_support and probs [N'], got {support.shape}, "
            f"{target_support.shape}, {probs.shape}"
        )
    delta = support[1] - support[0]
    clipped = jnp.clip(target_support, support[0], support[-1])
    weights = jnp.clip(1.0 - jnp.abs(clipped[None, :] - support[:, None]) / delta, 0.0, 1.0)
    return weights @ probs


def expected_values(logits: jax.Array, support: jax.Array) -> jax.Array:
    """Expected return per action [..., A] of categorical logits [..., A, N]."""
    return jax.nn.softmax(logits, axis=-1) @ support


def categorical_q_learning_loss(
    logits_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    logits_t: jax.Array,
    support: jax.Array,
) -> jax.Array:
    """Cross-entropy between the projected target and the online distribution, one transition.

    logits_tm1 [A, N] online at x; logits_t [A, N] target network at x'. The target distribution
    is that of the target network's greedy action at x' (by expected value, as Dopamine), shifted
    to r + discount * z and projected onto the atoms; no gradient flows through it.
    """
    if logits_tm1.ndim != 2 or logits_t.shape != logits_tm1.shape:
        raise ValueError(f"logits must be [A, N], got {logits_tm1.shape} and {logits_t.shape}")
    greedy = jnp.argmax(expected_values(logits_t, support))
    target_probs = jax.nn.softmax(logits_t[greedy])
    target = categorical_projection(support, r_t + discount_t * support, target_probs)
    target = jax.lax.stop_gradient(target)
    return -jnp.sum(target * jax.nn.log_softmax(logits_tm1[a_tm1]))


@dataclasses.dataclass(frozen=True)
class C51Config(ValueBasedConfig):
    """C51 settings; defaults are the `minatar()` preset."""

    num_atoms: int = 51
    """Atoms of the return distribution."""
    vmax: float = 100.0
    """Largest atom; atoms are evenly spaced on [-vmax, vmax]."""

    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {
        "minatar": {"vmax": 100.0},
        "nature": {"optimizer": "adam", "lr": 2.5e-4, "eps": 0.01 / 32, "vmax": 10.0},
        "dopamine": {"lr": 2.5e-4, "eps": 3.125e-4, "vmax": 10.0},
        "tandem": {"vmax": 10.0},
    }

    def __post_init__(self):
        super().__post_init__()
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be at least 2, got {self.num_atoms}")
        if self.vmax <= 0:
            raise ValueError(f"vmax must be positive, got {self.vmax}")

    @property
    def support(self) -> np.ndarray:
        """The atoms z [num_atoms], float32."""
        return np.linspace(-self.vmax, self.vmax, self.num_atoms, dtype=np.float32)


def algorithm(config: C51Config) -> Algorithm:
    """C51 as an `Algorithm`: C51 head, categorical loss, greedy on the expected return; probes
    reduce by the expectation over atoms, then the max over actions (Appendix B.1)."""
    support = jnp.asarray(config.support)
    return Algorithm(
        kind="c51",
        head="c51",
        head_kwargs={"num_atoms": config.num_atoms},
        transition_loss=partial(categorical_q_learning_loss, support=support),
        greedy_values=partial(expected_values, support=support),
        probe_reduce="expectation",
        probe_support=tuple(float(z) for z in config.support),
    )
