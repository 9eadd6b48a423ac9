"""How PPO and DAAC apply plasticity interventions (`tdgen.agents.interventions`) to a network.

Each trained network (PPO's one, DAAC's policy and value networks) has its own `Applied`: the
interventions bound to that network and its Adam (wrapped by the optimiser interventions), a
memory in the train state, and events counted in that network's own gradient updates (one per
minibatch step). Without interventions every function here is the identity, so a run computes
exactly what it did before they existed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tdgen import streams
from tdgen.agents.interventions import Context, Intervention
from tdgen.agents.interventions.applied import Applied


def bind(
    interventions: Sequence[Intervention],
    network,
    observation_shape: tuple[int, ...],
    optimizer: optax.GradientTransformation,
) -> Applied:
    """The interventions bound to ``network`` and its ``optimizer``; an intervention that cannot
    act on the network (ReDo on IMPALA's residual blocks) is refused here, at build time."""
    example = jnp.zeros((1, *observation_shape), jnp.float32)
    return Applied.bind(tuple(interventions), Context.of(network, example, optimizer))


def init(applied: Applied, key: jax.Array, params) -> tuple[Any, tuple[Any, ...]]:
    """(variables, memory) from the network's initial ``params``; the interventions draw from
    their own stream of ``key``, so the network's initialisation is what it was without them."""
    if not applied.interventions:
        return params, ()
    return applied.init(jax.random.fold_in(key, streams.INTERVENTIONS), params)


def forward(applied: Applied, params, memory, obs: jax.Array, *args):
    """The network's outputs through `Applied.apply`; ``memory`` None: ``params`` are already
    the plain network's variables (`effective_params`)."""
    if memory is None or not applied.interventions:
        return applied.context.apply(params, obs, *args)
    return applied.apply(params, memory, obs, *args)


def effective_params(applied: Applied, params, memory):
    """Variables of the plain network computing `forward(applied, params, memory, .)`: plasticity
    injection's Eq. 1 folded into its affine heads (exact), the parameters otherwise. What the
    probes differentiate and what a teacher acts with."""
    return applied.effective_params(params, memory)


def with_loss_terms(applied: Applied, loss_fn: Callable) -> Callable:
    """``loss_fn(params, memory, minibatch) -> (loss, stats)`` with the loss terms on the
    minibatch's observations added to the loss (none: ``loss_fn`` itself)."""
    if not any(i.kind == "loss" for i in applied.interventions):
        return loss_fn

    def loss(params, memory, minibatch):
        value, stats = loss_fn(params, memory, minibatch)
        return value + applied.loss(params, memory, minibatch["obs"]), stats

    return loss


def zero_logs(applied: Applied, params, opt_state, memory, obs: jax.Array, prefix: str = ""):
    """{key: 0} for every key the events log (``prefix``: the network, "interventions/<prefix>/
    <name>/<what>"); {} without events."""
    if not applied.events:
        return {}
    return prefixed(applied.zero_logs(params, opt_state, memory, obs), prefix)


def prefixed(logs: dict[str, jax.Array], prefix: str) -> dict[str, jax.Array]:
    """Keys "interventions/<name>/..." as "interventions/<prefix>/<name>/..." (DAAC)."""
    if not prefix:
        return logs
    return {k.replace("interventions/", f"interventions/{prefix}/", 1): v for k, v in logs.items()}


def updates_before(iteration: jax.Array, per_iteration: int, every: int = 1) -> jax.Array:
    """Gradient updates made before ``iteration`` (from 0) by a network that trains
    ``per_iteration`` minibatch steps every ``every``-th iteration (iterations 0, every, ...)."""
    return (iteration + every - 1) // every * per_iteration


__all__ = ["bind", "effective_params", "forward", "init", "prefixed", "updates_before",
           "with_loss_terms", "zero_logs"]  # fmt: skip
