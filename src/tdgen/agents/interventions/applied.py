"""How an agent applies its interventions: one object both families use inside their jitted code.

`Applied` holds a config's parsed interventions and the agent's `Context`, and gives the agent
each kind's hook in the order of a training step:

1. ``network_options(interventions)``: options for `make_network` (before the network exists);
2. `Applied.bind` / `Applied.optimizer`: the agent's optimiser with every optimiser wrapper
   applied, in order;
3. `Applied.init`: the initial variables (with any trainable parameters of the interventions'
   own, InFeR's head) and the memory, a tuple with one pytree per intervention, kept in the train
   state and checkpointed with it;
4. `Applied.apply`: the forward pass (plasticity injection's old + new - frozen heads once
   injected; the network's own apply otherwise);
5. `Applied.loss`: the sum of the loss terms on a batch of observations, added to the agent's loss;
6. `Applied.after_update`: after each optimiser step, every ``after_step`` (Normalize-and-
   Project), then each event whose period divides the update count (``lax.cond``, on a predicate
   that stays unbatched in a vmapped seed group: `tdgen.agents.train.same_in_every_seed`),
   returning what the events logged (0 where they did not fire).

With no interventions every hook is the identity and adds nothing to the traced program, so a run
without interventions compiles and computes exactly as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.interventions.base import Context, Intervention
from tdgen.agents.interventions.plasticity_injection import PlasticityInjection, injected_params
from tdgen.agents.train import same_in_every_seed


def network_options(interventions: Sequence[Intervention]) -> dict[str, Any]:
    """The `make_network` keyword arguments the network-kind interventions choose
    (`spec.check_combination` has refused conflicting ones)."""
    options: dict[str, Any] = {}
    for intervention in interventions:
        options.update(intervention.network_options())
    return options


@dataclasses.dataclass(frozen=True)
class Applied:
    """A config's interventions, bound to the agent's network (``context``, whose optimiser is
    the agent's with the wrappers applied: build with `Applied.bind`)."""

    interventions: tuple[Intervention, ...]
    context: Context

    @classmethod
    def bind(cls, interventions: Sequence[Intervention], context: Context) -> Applied:
        """Bind to ``context``, whose optimiser is the agent's own: every optimiser wrapper is
        applied to it in the config's order, and `Applied.optimizer` is the result. Each
        intervention first checks that it can act on the network (`Intervention.check`)."""
        for intervention in interventions:
            intervention.check(context.network)
        optimizer = context.optimizer
        for intervention in interventions:
            if intervention.kind == "optimizer":
                optimizer = intervention.wrap_optimizer(optimizer)
        return cls(tuple(interventions), dataclasses.replace(context, optimizer=optimizer))

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """The optimiser the agent trains with (its own, wrapped)."""
        return self.context.optimizer

    @property
    def events(self) -> tuple[tuple[int, Intervention], ...]:
        """(position in the memory tuple, event) of the periodic events."""
        return tuple((i, x) for i, x in enumerate(self.interventions) if x.kind == "event")

    def zero_logs(self, params: Any, opt_state: Any, memory: tuple[Any, ...], obs: jax.Array):
        """{key: 0} for every key the events log (the train state's accumulators start here);
        shapes only, nothing is computed."""
        shapes = jax.eval_shape(
            lambda p, s, m, o: self.after_update(p, s, m, jax.random.PRNGKey(0), o, jnp.int32(1))[3],
            params, opt_state, memory, obs,
        )  # fmt: skip
        return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

    def init(self, key: jax.Array, params: Any = None) -> tuple[Any, tuple[Any, ...]]:
        """(variables, memory): ``params`` (a fresh initialisation when None) extended with the
        interventions' own parameters, and each intervention's memory of them."""
        key_params, key_extend, key_memory = jax.random.split(key, 3)
        if params is None:
            params = self.context.init_params(key_params)
        for intervention, k in zip(
            self.interventions, _keys(key_extend, self.interventions), strict=True
        ):
            params = intervention.extend_params(params, k, self.context)
        memory = tuple(
            intervention.init_memory(params, k, self.context)
            for intervention, k in zip(
                self.interventions, _keys(key_memory, self.interventions), strict=True
            )
        )
        return params, memory

    def effective_params(self, params: Any, memory: tuple[Any, ...]) -> Any:
        """Variables of the plain network that computes `Applied.apply`: plasticity injection's
        old + new - frozen heads folded into one (exact: the heads are affine), the parameters
        themselves otherwise. What a target network copies, probes differentiate and a teacher
        acts with."""
        for intervention, mem in zip(self.interventions, memory, strict=True):
            if isinstance(intervention, PlasticityInjection):
                params = injected_params(params, mem)
        return params

    def apply(self, params: Any, memory: tuple[Any, ...], obs: jax.Array, *args, **kwargs):
        """The network's outputs, through plasticity injection's combined heads when present."""
        return self.context.apply(self.effective_params(params, memory), obs, *args, **kwargs)

    def loss(self, params: Any, memory: tuple[Any, ...], obs: jax.Array) -> jax.Array:
        """The sum of the loss terms on observations ``obs`` [n, ...] (0.0 when there are none)."""
        total = jnp.float32(0.0)
        for intervention, mem in zip(self.interventions, memory, strict=True):
            if intervention.kind == "loss":
                total = total + intervention.loss_term(params, mem, obs, self.context)
        return total

    def after_update(
        self,
        params: Any,
        opt_state: Any,
        memory: tuple[Any, ...],
        key: jax.Array,
        obs: jax.Array,
        updates: jax.Array,
    ) -> tuple[Any, Any, tuple[Any, ...], dict[str, jax.Array]]:
        """After the optimiser step that made ``updates`` updates: every after_step, then each
        event due at ``updates`` (a multiple of its period). Returns (params, opt_state, memory,
        logged), logged holding every event's keys (zeros where it did not fire)."""
        for intervention, mem in zip(self.interventions, memory, strict=True):
            params = intervention.after_step(params, mem)
        return self._fire_all(params, opt_state, memory, key, obs, updates)

    def _fire_all(self, params, opt_state, memory, key, obs, updates):
        memory, logged = list(memory), {}
        for (i, event), k in zip(self.events, _keys(key, self.events), strict=True):
            fire = _firing(event, self.context, k, obs)
            shapes = jax.eval_shape(fire, params, opt_state, memory[i])[3]
            zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
            params, opt_state, memory[i], logs = jax.lax.cond(
                same_in_every_seed(updates % event.period == 0),
                fire,
                lambda p, s, m, zeros=zeros: (p, s, m, zeros),
                params, opt_state, memory[i],
            )  # fmt: skip
            logged.update(logs)
        return params, opt_state, tuple(memory), logged


def _firing(event: Intervention, context: Context, key: jax.Array, obs):
    def fire(params, opt_state, memory):
        return event.fire(params, opt_state, memory, key, obs, context)

    return fire


def _keys(key: jax.Array, items: Sequence[Any]) -> list[jax.Array]:
    return list(jax.random.split(key, len(items))) if items else []
