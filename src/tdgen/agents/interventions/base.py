"""The interface every plasticity intervention implements: one of four kinds, pure functions.

An intervention is a frozen dataclass whose fields are its settings (defaults from its source,
cited in its module's docstring) and whose ``kind`` says where an agent applies it, inside its
jitted segment, for both families (value-based and actor-critic) and under ``vmap`` over seeds:

- ``network``: options passed to `tdgen.nets.make_network` (`Intervention.network_options`), e.g.
  LayerNorm, CReLU, Fourier features.
- ``loss``: a term added to the training loss (`Intervention.loss_term`), e.g. L2-init, Parseval,
  InFeR's auxiliary regression.
- ``optimizer``: a wrapper of the agent's optax optimiser (`Intervention.wrap_optimizer`), e.g.
  decoupled weight decay, TRAC.
- ``event``: every ``period`` gradient updates, a pure function of (params, opt_state, memory, key,
  observations) (`Intervention.fire`), e.g. ReDo, resets, shrink-and-perturb, plasticity injection.

An intervention may keep a *memory* in the train state (a pytree, checkpointed with it): the
initial parameters for L2-init, a frozen network for InFeR. `init_memory` builds it from the
initial parameters. Parameters are flax variable dicts ({"params": {...}}); optimiser states are
optax states whose parameter-shaped parts `optax.tree_utils.tree_map_params` reaches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import jax
import optax

from tdgen.errors import InputError

Kind = Literal["network", "loss", "optimizer", "event"]
KINDS: tuple[str, ...] = ("network", "loss", "optimizer", "event")


@dataclasses.dataclass(frozen=True)
class Context:
    """What an agent lends its interventions: how to make fresh parameters and run the network.

    init_params(key) -> variables: fresh parameters from the network's own initialisers (what a
    reset draws); apply(variables, obs) -> outputs; features(variables, obs) -> [n, d], the
    encoder's output (InFeR's and the plasticity probe's features); optimizer: the agent's optax
    optimiser (to reach the parameter-shaped parts of its state); network: the flax module.
    """

    init_params: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], Any]
    features: Callable[[Any, jax.Array], jax.Array]
    optimizer: optax.GradientTransformation
    network: Any

    @classmethod
    def of(
        cls, network, example_obs: jax.Array, optimizer: optax.GradientTransformation
    ) -> Context:
        """The context of a `tdgen.nets.Network` whose inputs look like ``example_obs`` [n, ...]
        (agents apply a cast first and build theirs field by field)."""
        return cls(
            init_params=lambda key: network.init(key, example_obs[:1]),
            apply=network.apply,
            features=lambda variables, obs: network.apply(variables, obs, method="encode"),
            optimizer=optimizer,
            network=network,
        )


@dataclasses.dataclass(frozen=True)
class Intervention:
    """Base class: a subclass sets ``name``, ``kind`` and ``source`` and overrides its kind's
    method. ``period`` (events only) counts gradient updates between firings."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    source: ClassVar[str]

    def require_period(self) -> None:
        """InputError unless this event's ``period`` is at least one gradient update."""
        if self.period < 1:
            raise InputError(f"{self.name} period must be >= 1 gradient update, got {self.period}")

    def check(self, network: Any) -> None:
        """Refuse, with a one-line InputError, a network this intervention cannot act on (ReDo:
        IMPALA's residual blocks); agents call it when they bind their interventions."""

    def at_learning_rate(self, lr: float) -> Intervention:
        """This intervention for an agent training at learning rate ``lr`` (decoupled weight
        decay scales by it); itself unless it needs the rate."""
        return self

    def network_options(self) -> dict[str, Any]:
        """Keyword arguments for `make_network` (kind "network")."""
        return {}

    def init_memory(self, params: Any, key: jax.Array, context: Context) -> Any:
        """The pytree this intervention keeps in the train state, from the initial parameters
        (None: nothing kept)."""
        return None

    def extend_params(self, params: Any, key: jax.Array, context: Context) -> Any:
        """The initial variables with any trainable parameters of the intervention's own added
        (InFeR's auxiliary head); the network's own collections are left as they are."""
        return params

    def loss_term(self, params: Any, memory: Any, obs: jax.Array, context: Context) -> jax.Array:
        """A scalar added to the agent's loss on the batch of observations ``obs`` (kind "loss")."""
        raise NotImplementedError(f"{self.name} is not a loss term")

    def wrap_optimizer(
        self, optimizer: optax.GradientTransformation
    ) -> optax.GradientTransformation:
        """The agent's optimiser with this intervention applied (kind "optimizer")."""
        raise NotImplementedError(f"{self.name} is not an optimiser wrapper")

    def fire(
        self,
        params: Any,
        opt_state: Any,
        memory: Any,
        key: jax.Array,
        obs: jax.Array,
        context: Context,
    ) -> tuple[Any, Any, Any, dict[str, jax.Array]]:
        """One firing of a periodic event (kind "event"): (params, opt_state, memory, logged),
        where logged holds 0-d counts keyed ``interventions/<name>/<what>`` (units recycled,
        layers reset, firings), which agents sum between metric lines. Pure: jit- and
        vmap-safe."""
        raise NotImplementedError(f"{self.name} is not a periodic event")

    def after_step(self, params: Any, memory: Any) -> Any:
        """Parameters after every optimiser step (Normalize-and-Project's projection); identity
        unless overridden."""
        return params
