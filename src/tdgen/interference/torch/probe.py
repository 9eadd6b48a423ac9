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

import numpy as np

from tdgen._extras import require
from tdgen.interference.keys import update_rank_key
from tdgen.interference.probe import DEFAULT_MEASURES, MEASURES, resolve_center
from tdgen.interference.rank import update_rank
from tdgen.interference.reductions import unknown_name
from tdgen.interference.torch import measures as m
from tdgen.interference.torch.update_matrix import update_matrix

torch = require("torch", "torch", "tdgen.interference.torch")


class Probe:
    """measures (tdgen.interference.MEASURES) of `module` under `optimizer` and `loss_fn`.

    loss_fn(module, transition) -> scalar tensor (one transition). `layers`: module paths whose
    outputs are the units (None: every activation module). `init`: the initial parameters
    (default: a copy of the module's parameters now). head "value" | "policy"; reduce: the
    update matrix's reduction; center: the centring of "update_rank", "none" (the paper's,
    interference/update_rank) or "drift" (interference/update_rank_drift), as in the JAX Probe;
    "update_rank_drift" adds the drift-centred rank beside the paper's. The output NTK of the
    JAX Probe is not computed here.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable,
        *,
        measures: Sequence[str] = tuple(n for n in DEFAULT_MEASURES if n != "output_ntk"),
        layers: Sequence[str] | None = None,
        init: dict[str, torch.Tensor] | None = None,
        head: str = "value",
        reduce: str = "max",
        center: str | None = None,
        taus: Sequence[float] = m.TAUS,
        delta: float = 0.01,
        eps: float = 0.1,
    ):
        for name in measures:
            if name not in MEASURES:
                raise unknown_name("measure", name, MEASURES)
            if name == "output_ntk":
                raise ValueError("measure 'output_ntk' has no torch version yet; drop it")
        if head not in m.HEADS:
            raise unknown_name("head", head, m.HEADS)
        self.module, self.optimizer, self.loss_fn = module, optimizer, loss_fn
        self.measures, self.layers = tuple(measures), layers
        self.head, self.reduce = head, reduce
        self.center = resolve_center(center, "tdgen.interference.torch.Probe", stacklevel=3)
        self.taus, self.delta, self.eps = tuple(taus), delta, eps
        if init is None:
            init = {n: p.detach().clone() for n, p in module.named_parameters()}
        self.init = init

    def __call__(self, batch, reference: torch.Tensor | None = None) -> dict[str, float]:
        """{name: float}; `reference` observations default to batch["obs"]."""
        wanted = set(self.measures)
        reference = batch["obs"] if reference is None else reference
        out: dict[str, float] = {}

        def put(prefix, values):
            out.update({f"{prefix}{name}": float(value) for name, value in values.items()})

        if wanted & {"dormant", "active", "features"}:
            acts = m.capture_activations(self.module, reference, self.layers)
            if "dormant" in wanted:
                put("dynamics/", m.dormant_units(acts, self.taus))
            if "active" in wanted:
                put("dynamics/", m.active_units(acts))
            if "features" in wanted:
                put("dynamics/", m.feature_statistics(acts, self.delta))
        if "param_norm" in wanted:
            put("dynamics/", m.parameter_norms(self.module))
        if "init_distance" in wanted:
            put("dynamics/", m.distance_from_init(self.module, self.init))
        if "grad_norm" in wanted:
            put("dynamics/", m.gradient_norm(self.module, self.loss_fn, batch))
        if wanted & {"grad_noise", "loss_ntk"}:
            K = m.loss_ntk(self.module, self.loss_fn, batch)
            if "grad_noise" in wanted:
                noise = m.gradient_noise(K)
                noise.pop("grad_norm")
                put("dynamics/", noise)
            if "loss_ntk" in wanted:
                put("dynamics/loss_ntk/", m.ntk_statistics(K))
        if "churn" in wanted:
            out["dynamics/churn"] = float(
                m.policy_churn(
                    self.module, self.optimizer, self.loss_fn, batch, reference, self.head
                )
            )
        centers = {self.center} if "update_rank" in wanted else set()
        centers |= {"drift"} if "update_rank_drift" in wanted else set()
        for center in sorted(centers):
            out[update_rank_key(center)] = float(
                update_rank(self.update_matrix(batch, center), self.eps)
            )
        return out

    def update_matrix(self, batch, center: str | None = None) -> np.ndarray:
        """The update matrix [k, k] (tdgen.interference.torch.update_matrix); centring: the
        Probe's unless given."""
        return update_matrix(
            self.module, self.optimizer, self.loss_fn, batch, reduce=self.reduce,
            center=center or self.center,
        )  # fmt: skip
