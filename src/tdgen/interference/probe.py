"""One Probe: a chosen set of learning-dynamics measures for a model, its optimiser and a batch.

    probe = Probe(apply_fn, loss_fn, optax.adam(1e-4), model=net)
    metrics = probe(params, opt_state, batch, init_params=params0)   # {name: scalar array}

`Probe.__call__` is a pure function of arrays: call it between jitted segments (`probe.jitted`
compiles it once per shape), inside a jitted `lax.scan` (`probe.on_schedule(step, every, ...)`
runs it under `lax.cond` and returns NaNs off schedule), or hand the scalars to the host from
inside the scan with `probe.log_from_scan(step, every, callback, ...)` (`io_callback`).
Names: "dynamics/..." for the measures of units.py, gradients.py and churn.py,
"interference/update_rank" for the paper's measure (the uncentred update matrix, Appendix B.1)
and "interference/update_rank_drift" for the drift-centred one (keys.py): one key per definition,
the same in every entry point. `probe.matrices(...)` returns the update matrix and NTKs themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.experimental import io_callback

from tdgen.errors import InputError, unknown_name
from tdgen.interference.churn import HEADS
from tdgen.interference.curvature import ITERATIONS
from tdgen.interference.im2col import conv_as_matmul
from tdgen.interference.keys import resolve_center
from tdgen.interference.plasticity import check_budget
from tdgen.interference.suite import JAX_MEASURES, Context
from tdgen.interference.table import (
    DEFAULT_MEASURES,
    FEATURE_RANK_EPS,
    MEASURES,
    PLASTICITY_STEPS,
    PLASTICITY_TARGETS,
    chosen_measures,
)
from tdgen.interference.units import TAUS
from tdgen.interference.update_matrix import cached_update_matrix


@dataclass(frozen=True, eq=False)
class Probe:
    """The measures named in `measures` (MEASURES) for one network and optimiser.

    apply_fn(params, obs [m, ...]) -> outputs [m, A]; loss_fn(params, transition) -> scalar,
    the per-transition training loss (its batch mean is the training loss). The unit measures
    (UNIT_MEASURES: dormant, active, features, stable_rank, feature_rank) read `layers` (None:
    every hidden layer, post-activation): through the modules of a linen `model` (the module
    behind apply_fn; activations.py), or, for any other model (None, a Flax NNX module or
    graphdef, a plain function), from apply_fn's traced computation (traced_activations.py).
    The measures, their keys and defaults are the rows of `tdgen.interference.table`;
    feature_rank_eps and hessian_iterations set the feature rank's eps and the Hessian's power
    iterations; plasticity_steps and plasticity_targets the plasticity probe's budget (its fresh
    targets come from init_fn(key) -> params, the network's initialiser, or else from a linen
    model's init; its key is __call__'s, or PRNGKey(plasticity_seed)). head: "value" (greedy
    churn) or "policy" (total-variation churn); reduce, method: the update matrix's options
    (update_matrix.py); center: the centring of the "update_rank" measure, "none" (the paper's,
    logged as interference/update_rank) or "drift" (logged as interference/update_rank_drift);
    the measure "update_rank_drift" adds the drift-centred rank beside the paper's. Equality is
    identity, so a Probe is a static argument.
    """

    apply_fn: Callable
    loss_fn: Callable
    optimizer: optax.GradientTransformation
    model: object | None = None
    layers: Sequence[str] | None = None
    measures: Sequence[str] = DEFAULT_MEASURES
    head: str = "value"
    reduce: str = "max"
    center: str | None = None
    method: str = "exact"
    taus: Sequence[float] = TAUS
    delta: float = 0.01
    eps: float = 0.1
    feature_rank_eps: float = FEATURE_RANK_EPS
    hessian_iterations: int = ITERATIONS
    plasticity_steps: int = PLASTICITY_STEPS
    plasticity_targets: int = PLASTICITY_TARGETS
    plasticity_seed: int = 0
    init_fn: Callable | None = None
    apply_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in self.measures:
            if name not in MEASURES:
                raise unknown_name("measure", name, MEASURES)
        if self.head not in HEADS:
            raise unknown_name("head", self.head, HEADS)
        object.__setattr__(self, "center", resolve_center(self.center, "tdgen.interference.Probe"))
        object.__setattr__(self, "measures", tuple(self.measures))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
        if "plasticity" in self.measures:
            check_budget(self.plasticity_steps, self.plasticity_targets)
            if self.init_fn is None and not isinstance(self.model, nn.Module):
                raise InputError(
                    "measure 'plasticity' needs init_fn=<the network's initialiser, key -> "
                    "params> (or the linen model=), to draw its random target networks"
                )

    def __call__(self, params, opt_state, batch, reference=None, init_params=None,
                 key=None) -> dict:  # fmt: skip
        """{name: scalar} of every chosen measure; `reference` observations default to
        batch["obs"] (activations, output NTK, churn and the plasticity probe are read there);
        `key` draws the plasticity probe's targets (default PRNGKey(plasticity_seed)).

        batch: a pytree whose leaves are [k, ...]; reference: [m, ...]. Returns {name: 0-d
        jax.Array}, e.g. "dynamics/dormant_0.1", "interference/update_rank".
        """
        if "init_distance" in self.measures and init_params is None:
            raise InputError("measure 'init_distance' needs init_params=<the initial parameters>")
        reference = batch["obs"] if reference is None else reference
        key = jax.random.PRNGKey(self.plasticity_seed) if key is None else key
        context = Context(self, params, opt_state, batch, reference, init_params, key)
        out = {}
        for name in chosen_measures(self.measures, self.center):
            out.update(JAX_MEASURES[name](context))
        return out

    def matrices(self, params, opt_state, batch, reference=None) -> dict[str, jax.Array]:
        """The update matrix A [k, k], the loss NTK [k, k] and the output NTK [m, m].

        batch: a pytree whose leaves are [k, ...]; reference: [m, ...] (default batch["obs"]).
        Returns {"update_matrix": [k, k], "loss_ntk": [k, k], "output_ntk": [m, m]} of jax.Arrays.
        """
        reference = batch["obs"] if reference is None else reference
        context = Context(self, params, opt_state, batch, reference, None, None)
        return {
            "update_matrix": self._update_matrix(params, opt_state, batch),
            "loss_ntk": context.loss_ntk,
            "output_ntk": context.output_ntk,
        }

    @cached_property
    def _matmul_apply(self) -> Callable:
        """apply_fn with convolutions as im2col matmuls: faster per-state Jacobians on CPU."""
        return conv_as_matmul(self.apply_fn)

    @property
    def _scalar(self) -> str:
        """The scalar reduction the output NTK differentiates ("policy" is a vector: max)."""
        return "max" if self.reduce == "policy" else self.reduce

    def _update_matrix(self, params, opt_state, batch, center=None):
        fn = cached_update_matrix(
            self.apply_fn, self.loss_fn, self.optimizer, self.reduce, None, None,
            center or self.center, self.method, None, "matmul",
        )  # fmt: skip
        return fn(params, opt_state, batch)

    @cached_property
    def jitted(self) -> Callable[..., dict]:
        """jax.jit(self): compiled once per shape, for calls between jitted segments."""
        return jax.jit(self.__call__)

    def on_schedule(self, step, every: int, params, opt_state, batch, reference=None,
                    init_params=None) -> dict:  # fmt: skip
        """Inside jit / lax.scan: the metrics when step % every == 0, NaNs otherwise."""
        args = (params, opt_state, batch, reference, init_params)
        shapes = jax.eval_shape(self.__call__, *args)

        def skip(*_):
            return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, jnp.float32), shapes)

        def run(*a):
            return jax.tree.map(lambda x: x.astype(jnp.float32), self(*a))

        return jax.lax.cond(step % every == 0, run, skip, *args)

    def log_from_scan(self, step, every: int, callback, params, opt_state, batch, reference=None,
                      init_params=None) -> None:  # fmt: skip
        """Inside jit / lax.scan: on schedule, call callback(step, {name: numpy scalar}) on the
        host through io_callback (ordered), e.g. to write a metrics file or a TensorBoard line."""
        args = (params, opt_state, batch, reference, init_params)

        def run(*a):
            io_callback(callback, None, step, self(*a), ordered=True)

        jax.lax.cond(step % every == 0, run, lambda *_: None, *args)
