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

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import jax
import jax.numpy as jnp
import optax
from jax.experimental import io_callback

from tdgen.interference.activations import capture_activations
from tdgen.interference.churn import HEADS, policy_churn
from tdgen.interference.gradients import (
    distance_from_init,
    gradient_noise,
    gradient_norm,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
)
from tdgen.interference.im2col import conv_as_matmul
from tdgen.interference.keys import CENTERS, update_rank_key
from tdgen.interference.rank import gradient_gram, update_rank
from tdgen.interference.reductions import unknown_name
from tdgen.interference.units import TAUS, active_units, dormant_units, feature_statistics
from tdgen.interference.update_matrix import cached_update_matrix

MEASURES = (
    "dormant",
    "active",
    "features",
    "param_norm",
    "init_distance",
    "grad_norm",
    "grad_noise",
    "loss_ntk",
    "output_ntk",
    "churn",
    "update_rank",
    "update_rank_drift",
)
# The defaults: every measure but the drift-centred rank (a second update matrix, asked by name).
DEFAULT_MEASURES = tuple(m for m in MEASURES if m != "update_rank_drift")
UNIT_MEASURES = ("dormant", "active", "features")
CENTER_CHANGED = (
    "{who}: center= was not given, so interference/update_rank is the paper's uncentred update "
    "matrix (center='none'); the Probe's default was 'drift' before tdgen 0.2, and the "
    "drift-centred rank is now interference/update_rank_drift. Pass center='none' or "
    "center='drift' to silence this warning."
)
_warned: set[str] = set()


def resolve_center(center: str | None, who: str, stacklevel: int = 4) -> str:
    """``center`` checked against CENTERS; None is "none", with a FutureWarning once per process
    (the Probe's default centring changed, and with it what its update_rank key meant);
    ``stacklevel`` points the warning at the caller's line."""
    if center is None:
        if who not in _warned:
            _warned.add(who)
            warnings.warn(CENTER_CHANGED.format(who=who), FutureWarning, stacklevel=stacklevel)
        return "none"
    if center not in CENTERS:
        raise unknown_name("center", center, CENTERS)
    return center


@dataclass(frozen=True, eq=False)
class Probe:
    """The measures named in `measures` (MEASURES) for one network and optimiser.

    apply_fn(params, obs [m, ...]) -> outputs [m, A]; loss_fn(params, transition) -> scalar,
    the per-transition training loss (its batch mean is the training loss). `model`: the Flax
    module behind apply_fn, needed by the unit measures (dormant, active, features), which read
    `layers` (None: every hidden layer, post-activation; see activations.py). head: "value"
    (greedy churn) or "policy" (total-variation churn); reduce, method: the update matrix's
    options (update_matrix.py); center: the centring of the "update_rank" measure, "none" (the
    paper's, logged as interference/update_rank) or "drift" (logged as
    interference/update_rank_drift); the measure "update_rank_drift" adds the drift-centred rank
    beside the paper's. Equality is identity, so a Probe is a static argument.
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
    apply_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in self.measures:
            if name not in MEASURES:
                raise unknown_name("measure", name, MEASURES)
        if self.head not in HEADS:
            raise unknown_name("head", self.head, HEADS)
        object.__setattr__(self, "center", resolve_center(self.center, "tdgen.interference.Probe"))
        if self.model is None and set(self.measures) & set(UNIT_MEASURES):
            raise ValueError(
                "Probe(model=None) cannot read layer activations for "
                f"{sorted(set(self.measures) & set(UNIT_MEASURES))}: pass model=<the flax "
                "module behind apply_fn>, or drop those measures"
            )
        object.__setattr__(self, "measures", tuple(self.measures))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))

    def __call__(self, params, opt_state, batch, reference=None, init_params=None) -> dict:
        """{name: scalar} of every chosen measure; `reference` observations default to
        batch["obs"] (activations, output NTK and churn are read there)."""
        wanted = set(self.measures)
        if "init_distance" in wanted and init_params is None:
            raise ValueError("measure 'init_distance' needs init_params=<the initial parameters>")
        reference = batch["obs"] if reference is None else reference
        out = {}

        def put(prefix, values):
            out.update({f"{prefix}{name}": value for name, value in values.items()})

        if wanted & set(UNIT_MEASURES):
            acts = capture_activations(
                self.model, params, reference, self.layers, **self.apply_kwargs
            )
            if "dormant" in wanted:
                put("dynamics/", dormant_units(acts, self.taus))
            if "active" in wanted:
                put("dynamics/", active_units(acts))
            if "features" in wanted:
                put("dynamics/", feature_statistics(acts, self.delta))
        if "param_norm" in wanted:
            put("dynamics/", parameter_norms(params))
        if "init_distance" in wanted:
            put("dynamics/", distance_from_init(params, init_params))
        if "grad_norm" in wanted:
            put("dynamics/", gradient_norm(self.loss_fn, params, batch))
        if wanted & {"grad_noise", "loss_ntk"}:
            K = loss_ntk(self.loss_fn, params, batch)
            if "grad_noise" in wanted:
                noise = gradient_noise(K)
                noise.pop("grad_norm")  # the training-loss gradient norm, as grad_norm gives
                put("dynamics/", noise)
            if "loss_ntk" in wanted:
                put("dynamics/loss_ntk/", ntk_statistics(K))
        if "output_ntk" in wanted:
            G = gradient_gram(self._matmul_apply, params, {"obs": reference}, reduce=self._scalar)
            put("dynamics/output_ntk/", ntk_statistics(G))
        if "churn" in wanted:
            out["dynamics/churn"] = policy_churn(
                self.apply_fn, params, self.loss_fn, batch, self.optimizer, opt_state, reference,
                self.head,
            )  # fmt: skip
        centers = {self.center} if "update_rank" in wanted else set()
        centers |= {"drift"} if "update_rank_drift" in wanted else set()
        for center in sorted(centers):
            out[update_rank_key(center)] = update_rank(
                self._update_matrix(params, opt_state, batch, center), self.eps
            )
        return out

    def matrices(self, params, opt_state, batch, reference=None) -> dict[str, jax.Array]:
        """The update matrix A [k, k], the loss NTK [k, k] and the output NTK [m, m]."""
        reference = batch["obs"] if reference is None else reference
        return {
            "update_matrix": self._update_matrix(params, opt_state, batch),
            "loss_ntk": loss_ntk(self.loss_fn, params, batch),
            "output_ntk": gradient_gram(
                self._matmul_apply, params, {"obs": reference}, reduce=self._scalar
            ),
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
