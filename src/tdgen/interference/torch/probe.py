"""The Probe for a PyTorch training loop (CleanRL style): the measures of `tdgen.interference.
Probe`, with the same names, for an nn.Module and its torch.optim optimiser.

    probe = Probe(q_network, optimizer, loss_fn, center="none")  # snapshots the initial params
    ...
    if global_step % 100_000 == 0:
        for name, value in probe(batch).items():
            writer.add_scalar(name, value, global_step)

Nothing is changed: not the module, its .grad, nor the optimiser (churn and the update matrix
step a scratch copy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np

from tdgen._extras import require
from tdgen.errors import InputError, unknown_name
from tdgen.interference.keys import resolve_center, update_rank_key
from tdgen.interference.table import (
    BY_NAME,
    DEFAULT_MEASURES,
    FEATURE_RANK_EPS,
    HESSIAN_ITERATIONS,
    MEASURES,
    PLASTICITY_STEPS,
    PLASTICITY_TARGETS,
    chosen_measures,
)
from tdgen.interference.table import TORCH_MEASURES as TWINS
from tdgen.interference.torch import measures as m
from tdgen.interference.torch.contract import (
    as_batch,
    check_loss,
    check_per_sample_loss,
    module_device,
    per_sample,
)
from tdgen.interference.torch.plasticity import check_budget, plasticity_probe_loss
from tdgen.interference.torch.update_matrix import update_matrix, update_rank

torch = require("torch", "torch", "tdgen.interference.torch")


class Probe:
    """measures (tdgen.interference.MEASURES) of `module` under `optimizer` and `loss_fn`.

    loss_fn(module, transition) -> scalar tensor (one transition), or with per_sample_loss=True
    loss_fn(module, batch) -> per-sample losses [k] (a training loop's batch loss with
    reduction="none"; contract.py). `layers`: module paths whose
    outputs are the units (None: every activation module). `init`: the initial parameters
    (default: a copy of the module's parameters now). head "value" | "policy"; reduce: the
    update matrix's reduction; obs: the batch's observation field (a named tuple's
    "observations", say); center: the centring of "update_rank", "none" (the paper's,
    interference/update_rank) or "drift" (interference/update_rank_drift), as in the JAX Probe;
    "update_rank_drift" adds the drift-centred rank beside the paper's. plasticity_steps,
    plasticity_targets and plasticity_seed set the plasticity probe (torch/plasticity.py). The
    output NTK of the JAX Probe is not computed here.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable,
        *,
        measures: Sequence[str] = tuple(n for n in DEFAULT_MEASURES if n in TWINS),
        layers: Sequence[str] | None = None,
        init: dict[str, torch.Tensor] | None = None,
        head: str = "value",
        reduce: str = "max",
        center: str | None = None,
        taus: Sequence[float] = m.TAUS,
        delta: float = 0.01,
        eps: float = 0.1,
        feature_rank_eps: float = FEATURE_RANK_EPS,
        hessian_iterations: int = HESSIAN_ITERATIONS,
        plasticity_steps: int = PLASTICITY_STEPS,
        plasticity_targets: int = PLASTICITY_TARGETS,
        plasticity_seed: int = 0,
        obs: str = "obs",
        per_sample_loss: bool = False,
    ):
        for name in measures:
            if name not in MEASURES:
                raise unknown_name("measure", name, MEASURES)
            if name not in TWINS:
                raise InputError(f"measure {name!r} has no torch version yet "
                                 f"({BY_NAME[name].torch_reason}); drop it")  # fmt: skip
        if head not in m.HEADS:
            raise unknown_name("head", head, m.HEADS)
        self.module, self.optimizer, self.loss_fn = module, optimizer, loss_fn
        self.measures, self.layers = tuple(measures), layers
        self.head, self.reduce = head, reduce
        self.center = resolve_center(center, "tdgen.interference.torch.Probe", stacklevel=3)
        self.taus, self.delta, self.eps = tuple(taus), delta, eps
        self.feature_rank_eps, self.hessian_iterations = feature_rank_eps, hessian_iterations
        if "plasticity" in self.measures:
            check_budget(plasticity_steps, plasticity_targets)
        self.plasticity_steps, self.plasticity_targets = plasticity_steps, plasticity_targets
        self.plasticity_seed = plasticity_seed
        self.obs, self.per_sample_loss, self._loss_checked = obs, per_sample_loss, False
        if init is None:
            init = {n: p.detach().clone() for n, p in module.named_parameters()}
        self.init = init

    def __call__(self, batch, reference: torch.Tensor | None = None) -> dict[str, float]:
        """{name: float}; `batch`: a dict of tensors or numpy arrays [k, ...], or a named tuple
        of the buffer's fields (contract.py); `reference` observations default to its ``obs``
        field.

        reference: [m, ...]. Returns {name: float} (Python floats, ready to log), the keys of
        the JAX Probe, e.g. "dynamics/dormant_0.1", "interference/update_rank".
        """
        batch, loss_fn = self._prepare(batch)
        if reference is None:
            reference = batch[self.obs]
        reference = torch.as_tensor(reference, device=module_device(self.module))
        context = _Context(self, loss_fn, batch, reference)
        out: dict[str, float] = {}
        for name in chosen_measures(self.measures, self.center):
            out.update({key: float(v) for key, v in TORCH_MEASURES[name](context).items()})
        return out

    def update_matrix(self, batch, center: str | None = None) -> np.ndarray:
        """The update matrix [k, k] (float32 numpy; tdgen.interference.torch.update_matrix) of a
        batch of k transitions; centring: the Probe's unless given.

        batch: as for __call__, [k, ...]. Returns A [k, k] as a float32 numpy array (the states
        evaluated are the batch's own observations).
        """
        batch, loss_fn = self._prepare(batch)
        return self._matrix(loss_fn, batch, center)

    def _matrix(self, loss_fn, batch, center: str | None) -> np.ndarray:
        return update_matrix(
            self.module, self.optimizer, loss_fn, batch, inputs=batch[self.obs],
            reduce=self.reduce, center=center or self.center,
        )  # fmt: skip

    def _prepare(self, batch) -> tuple[dict, Callable]:
        """The batch as a dict of tensors on the module's device, and the loss of one transition
        (a per-sample loss gets its batches in the type given: a named tuple stays one). The loss
        contract is checked on the first call, so a broken one is one tdgen message."""
        fields = type(batch) if hasattr(batch, "_asdict") else None
        batch = as_batch(batch, self.obs, module_device(self.module))
        if not self.per_sample_loss:
            if not self._loss_checked:
                check_loss(self.module, self.loss_fn, batch)
            self._loss_checked = True
            return batch, self.loss_fn
        if not self._loss_checked:
            check_per_sample_loss(self.module, self.loss_fn, batch, fields)
        self._loss_checked = True
        return batch, per_sample(self.loss_fn, fields)


class _Context:
    """One call's transition loss, batch and reference, with the activations and loss NTK
    computed once."""

    def __init__(self, probe: Probe, loss_fn: Callable, batch, reference):
        self.probe, self.loss_fn, self.batch, self.reference = probe, loss_fn, batch, reference

    @cached_property
    def activations(self):
        return m.capture_activations(self.probe.module, self.reference, self.probe.layers)

    @cached_property
    def loss_ntk(self):
        return m.loss_ntk(self.probe.module, self.loss_fn, self.batch)


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}{name}": value for name, value in values.items()}


def _grad_noise(c: _Context) -> dict:
    noise = m.gradient_noise(c.loss_ntk)
    noise.pop("grad_norm")  # the training-loss gradient norm, as grad_norm gives
    return _prefixed("dynamics/", noise)


def _plasticity(c: _Context) -> dict:
    p = c.probe
    loss = plasticity_probe_loss(p.module, p.optimizer, c.reference, p.plasticity_seed,
                                 p.plasticity_steps, p.plasticity_targets)  # fmt: skip
    return {"dynamics/plasticity_probe_loss": loss}


def _rank(center: str | None) -> Callable[[_Context], dict]:
    def rank(c: _Context) -> dict:
        chosen = center or c.probe.center
        matrix = c.probe._matrix(c.loss_fn, c.batch, chosen)
        return {update_rank_key(chosen): update_rank(matrix, c.probe.eps)}

    return rank


# name -> fn(ctx): the rows of tdgen.interference.table with torch=True (a test checks it)
TORCH_MEASURES: dict[str, Callable[[_Context], dict]] = {
    "dormant": lambda c: _prefixed("dynamics/", m.dormant_units(c.activations, c.probe.taus)),
    "active": lambda c: _prefixed("dynamics/", m.active_units(c.activations)),
    "features": lambda c: _prefixed(
        "dynamics/", m.feature_statistics(c.activations, c.probe.delta)
    ),
    "stable_rank": lambda c: _prefixed("dynamics/", m.feature_stable_ranks(c.activations)),
    "feature_rank": lambda c: _prefixed(
        "dynamics/", m.feature_ranks(c.activations, c.probe.feature_rank_eps)
    ),
    "param_norm": lambda c: _prefixed("dynamics/", m.parameter_norms(c.probe.module)),
    "init_distance": lambda c: _prefixed(
        "dynamics/", m.distance_from_init(c.probe.module, c.probe.init)
    ),
    "grad_norm": lambda c: _prefixed(
        "dynamics/", m.gradient_norm(c.probe.module, c.loss_fn, c.batch)
    ),
    "grad_noise": _grad_noise,
    "loss_ntk": lambda c: _prefixed("dynamics/loss_ntk/", m.ntk_statistics(c.loss_ntk)),
    "churn": lambda c: {
        "dynamics/churn": m.policy_churn(
            c.probe.module, c.probe.optimizer, c.loss_fn, c.batch, c.reference, c.probe.head
        )  # fmt: skip
    },
    "hessian_max": lambda c: {
        "dynamics/hessian_max_eigenvalue": m.hessian_max_eigenvalue(
            c.probe.module, c.loss_fn, c.batch, c.probe.hessian_iterations
        )
    },
    "plasticity": _plasticity,
    "update_rank": _rank(None),
    "update_rank_drift": _rank("drift"),
}
