"""Plasticity injection (Nikishin et al. 2023, "Deep RL with plasticity injection", NeurIPS).

At the injection step the current head(s) h_theta are frozen and a fresh head h_theta' is added
together with a frozen copy of it, so the network computes (Eq. 1)

    q(x) = h_theta(phi(x)) + h_theta'(phi(x)) - h_theta'_frozen(phi(x)),

unchanged at injection (theta' = theta'_frozen) and afterwards learning through the encoder phi and
the new head theta' only.

Fit to the interface. The trainable new head lives in the params, in the heads' own places (so
the optimiser, checkpoints and every other consumer see the usual tree); the frozen parts live in
the intervention's memory: ``{"injected": bool, "old_heads": theta, "frozen_heads":
theta'_frozen}``, zeros of the heads' shapes before injection. The event fires every ``period``
updates but injects once (the flag); it also resets the heads' optimiser entries (Adam's moments
belong to the old head).

Contract for the agent: every forward pass of the trained network goes through
`injected_apply(context, params, memory, obs)` (or ``context.apply(injected_params(params,
memory), obs)``). Because every tdgen head is one affine layer, linear in its parameters, Eq. 1
equals the network run with head parameters theta + (theta' - theta'_frozen): one forward pass,
bit-exact before injection (0 + (theta' - 0)) and at injection (theta + 0), and the gradient
reaches theta' and the encoder exactly as Eq. 1's does (memory is stop-gradiented). A target
network is the pair (params, memory) copied together at each target update: before injection its
memory is zeros, so the target stays the plain network until its first copy after injection.

Default: ``period`` = 3_125_000 updates, the paper's injection after 50M of Double DQN's 200M
frames at one update per 16 frames (update every 4 agent steps of 4 frames); set it to the step
your run should inject at (the paper's diagnostic use: where returns plateau).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from tdgen.agents.interventions.base import Context, Intervention
from tdgen.agents.interventions.layers import ENCODER, flags, flat_params, reset_optimizer_entries
from tdgen.errors import InputError


def head_params(variables) -> dict[str, Any]:
    """{head module name: its parameter tree}: every top-level module but the encoder."""
    heads = {k: v for k, v in variables["params"].items() if k != ENCODER}
    for name, tree in heads.items():
        leaves = leaf_paths(tree)
        kernels = [path for path in leaves if path[-1] == "kernel"]
        if len(kernels) != 1 or len(leaves) != 2 or (kernels[0][:-1] + ("bias",)) not in leaves:
            raise InputError(
                f"plasticity_injection needs every head to be one dense layer (affine in its "
                f"parameters); head {name!r} has parameters {sorted('/'.join(p) for p in leaves)}"
            )
    if not heads:
        raise InputError("plasticity_injection: the network has no head besides its encoder")
    return heads


def leaf_paths(tree) -> list[tuple[str, ...]]:
    """The key paths of a nested dict's leaves."""
    return [
        tuple(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)
    ]


def injected_params(params, memory):
    """Variables of the plain network computing Eq. 1: each head's parameters become
    old + (new - frozen); the other parameters are the trained ones."""
    heads = head_params(params)
    old, frozen = jax.lax.stop_gradient((memory["old_heads"], memory["frozen_heads"]))
    combined = jax.tree.map(lambda n, o, f: o + (n - f), heads, old, frozen)
    return {**params, "params": {**params["params"], **combined}}


def injected_apply(context: Context, params, memory, obs: jax.Array, *args, **kwargs):
    """The agent's forward pass with injection: old_head(phi) + new_head(phi) - frozen(phi)."""
    return context.apply(injected_params(params, memory), obs, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class PlasticityInjection(Intervention):
    """Freeze the heads and add a fresh head minus its frozen copy, once (Nikishin et al. 2023)."""

    name: ClassVar[str] = "plasticity_injection"
    kind: ClassVar[str] = "event"
    source: ClassVar[str] = "Nikishin et al. 2023, Deep RL with plasticity injection (NeurIPS)"

    period: int = 3_125_000
    """The gradient update at which to inject (the event fires every period, injects once)."""

    def __post_init__(self):
        self.require_period()

    def init_memory(self, params, key, context):
        """Zeros of the heads' shapes and injected = False."""
        zeros = jax.tree.map(jnp.zeros_like, head_params(params))
        return {"injected": jnp.zeros((), bool), "old_heads": zeros, "frozen_heads": zeros}

    def fire(self, params, opt_state, memory, key, obs, context):
        """Inject if not yet injected; logs 1 at the firing that injects, else 0."""
        heads = head_params(params)
        fresh = head_params(context.init_params(key))
        inject = ~memory["injected"]

        def pick(if_inject, otherwise):
            return jax.tree.map(lambda a, b: jnp.where(inject, a, b), if_inject, otherwise)

        new_params = {**params, "params": {**params["params"], **pick(fresh, heads)}}
        new_memory = {
            "injected": jnp.ones((), bool),
            "old_heads": pick(heads, memory["old_heads"]),
            "frozen_heads": pick(fresh, memory["frozen_heads"]),
        }
        reset = flags(
            params, {k: inject if k[0] != ENCODER else False for k in flat_params(params)}
        )
        opt_state = reset_optimizer_entries(context.optimizer, opt_state, new_params, reset)
        logged = {"interventions/plasticity_injection/injected": inject.astype(jnp.int32)}
        return new_params, opt_state, new_memory, logged


__all__ = ["PlasticityInjection", "head_params", "injected_apply", "injected_params"]
