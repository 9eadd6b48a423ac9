"""Pure train functions: `Train(init, segment)`, and a group of seeds as one vmapped program.

Every gymnax-stepped agent exposes ``make_train(config) -> Train``: ``init(key) -> state`` and
``segment(state) -> (state, extras)``, both pure and jittable (PureJaxRL's `make_train`, split at
the host events so logging, probes and checkpoints happen between segments). ``extras`` is what
the host needs after a segment besides the state: the last rollout for actor-critic agents (their
probes read it), None for value-based agents.

A group of N seeds is the same two functions under `jax.vmap` over a leading seed axis: one
compile serves every seed, and seed i's lane computes what seed i alone computes (bitwise where
XLA batches the same arithmetic, within float tolerance where it does not; see
tests/agents/test_groups.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Train:
    """init(key) -> state; segment(state) -> (state, extras): one agent's training, pure."""

    init: Callable[[jax.Array], Any]
    segment: Callable[[Any], tuple[Any, Any]]

    def jit(self) -> tuple[Callable, Callable]:
        """(init, segment) compiled for one seed; the segment donates the old state."""
        return jax.jit(self.init), jax.jit(self.segment, donate_argnums=0)

    def jit_group(self) -> tuple[Callable, Callable]:
        """(init, segment) compiled for a group: states stacked on a leading seed axis."""
        return jax.jit(jax.vmap(self.init)), jax.jit(jax.vmap(self.segment), donate_argnums=0)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """PRNG keys [N, 2] of the seeds: key i is exactly `jax.random.PRNGKey(seeds[i])`."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def stack_states(states: Sequence[Any]) -> Any:
    """One group state from per-seed states (each with the same structure and shapes)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


__all__ = ["Train", "seed_keys", "stack_states"]
