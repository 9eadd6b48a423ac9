"""The update matrix for a PyTorch nn.Module and its torch.optim optimiser (optional: needs torch).

Same definition and reductions as `tdgen.interference.update_matrix`:
    A[i, j] = v(params_i, x_j) - v(params, x_j),
params_i being one step of the *real* optimiser, from a copy of its current state, on the loss of
transition i alone. Any torch.optim optimiser works (SGD with momentum, Adam, AdamW, RMSprop, ...)
because the step is the optimiser's own `step()`, run on a scratch copy of the module whose
parameters and optimiser state are restored before every transition. The stepped parameters
therefore equal a deepcopy-and-step loop's bit for bit, including torch's semantics for
parameters that receive no gradient (None: the optimiser skips them).

Speed: the optimiser steps run in a loop (one batch-1 backward and one real step per transition);
the k * m forward evaluations run chunk_size parameter copies at a time under
torch.func.vmap(functional_call) (vectorize=True, equal to the loop up to float rounding, ~1e-8
measured) or one forward pass per copy (vectorize=False, bitwise the deepcopy loop). On the
shared 2-core machine of the benchmark, a fully vmapped torch.func computation was 2-7x faster
than the loop on both Nature and MinAtar networks, but repeated timings of the two adapter modes
varied 3-4x run to run; see notes/interference.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np

from tdgen._extras import require
from tdgen.errors import InputError, unknown_name
from tdgen.interference.batch import checked_actions, mapping_transitions
from tdgen.interference.keys import CENTERS
from tdgen.interference.reductions import Reduction
from tdgen.interference.torch.contract import (
    check_per_sample_loss,
    module_device,
    on_device,
    per_sample,
)

torch = require("torch", "torch", "tdgen.interference.torch")

Batch = Mapping[str, torch.Tensor]


def update_matrix(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    batch: Batch,
    *,
    inputs: torch.Tensor | None = None,
    reduce: str = "max",
    action_index: int | None = None,
    support=None,
    center: str = "none",
    vectorize: bool = True,
    chunk_size: int = 16,
    per_sample_loss: bool = False,
) -> np.ndarray:
    """The update matrix A [k, m] (float32 numpy) of a torch module; see the module docstring.

    loss_fn(module, transition) -> scalar tensor, transition = {key: batch[key][i]}, or with
    per_sample_loss=True loss_fn(module, batch) -> per-sample losses [k] (contract.py); `inputs`
    [m, ...] default to batch["obs"]; module(inputs) gives outputs [m, ...] as in the JAX
    version. The batch is moved to the module's device. The module and optimiser are left
    untouched. Call module.eval() first if it has dropout.

    vectorize=True evaluates chunk_size stepped parameter copies at once with
    torch.func.vmap(functional_call), equal to the loop up to float rounding; vectorize=False runs
    one forward pass per copy (bitwise the deepcopy loop; also for modules vmap cannot run, e.g.
    batch norm in training mode).
    """
    reduction = Reduction(
        reduce, action_index, None if support is None else tuple(np.asarray(support).tolist())
    )
    if center not in CENTERS:
        raise unknown_name("center", center, CENTERS)
    device = module_device(module)
    batch = on_device(batch, device)
    k = mapping_transitions(batch)
    inputs = batch.get("obs") if inputs is None else torch.as_tensor(inputs, device=device)
    if inputs is None:
        raise InputError("inputs not given and batch has no 'obs' entry to default to")
    actions = checked_actions(batch, reduction, len(inputs), k)
    if per_sample_loss:
        check_per_sample_loss(module, loss_fn, batch)
        loss_fn = per_sample(loss_fn)

    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    scratch = _Scratch(module, optimizer)
    with torch.no_grad():
        base_out = module(inputs)
    reduction.check_outputs(tuple(base_out.shape), len(inputs))

    def rows_fn(outs, base):  # outs [c, m, ...]: reduce all c*m states at once
        c, m = outs.shape[:2]
        values = reduction.values(outs.reshape(c * m, *outs.shape[2:]), np.tile(actions, c))
        return reduction.difference(values.reshape(c, m, *values.shape[1:]), base)

    base = reduction.values(to_numpy(base_out), actions)
    drift = scratch.drift(inputs) if center == "drift" else None

    rows, pending = [], []
    for i in range(k):
        pending.append(scratch.step(loss_fn, {key: v[i] for key, v in batch.items()}, drift))
        if len(pending) == chunk_size or i == k - 1:
            outs = scratch.evaluate(pending, inputs, vectorize)
            rows.append(rows_fn(outs, base))
            pending = []
    return np.concatenate(rows).astype(np.float32)


class _Scratch:
    """A copy of the module and optimiser, reset to the originals' values before every step."""

    def __init__(self, module, optimizer):
        self.module = copy.deepcopy(module)
        twin = dict(zip(module.parameters(), self.module.parameters(), strict=True))
        missing = [p for g in optimizer.param_groups for p in g["params"] if p not in twin]
        if missing:
            raise InputError(
                f"the optimiser holds {len(missing)} tensors that are not parameters of the module"
            )
        groups = [
            {
                **{key: v for key, v in g.items() if key != "params"},
                "params": [twin[p] for p in g["params"]],
            }
            for g in optimizer.param_groups
        ]
        self.optimizer = type(optimizer)(groups)
        self.params = [twin[p] for g in optimizer.param_groups for p in g["params"]]
        self.values = [p.detach().clone() for p in self.params]
        self.state = {twin[p]: _clone(st) for p, st in optimizer.state.items() if p in twin}

    def reset(self):
        with torch.no_grad():
            for p, value in zip(self.params, self.values, strict=True):
                p.copy_(value)
        self.optimizer.state.clear()
        for p, st in self.state.items():
            self.optimizer.state[p] = _clone(st)
        self.optimizer.zero_grad(set_to_none=True)

    def drift(self, inputs):
        """Per-parameter displacement of a step on a zero gradient from the same state."""
        self.reset()
        for p in self.params:
            p.grad = torch.zeros_like(p)
        self.optimizer.step()
        with torch.no_grad():
            return [p - value for p, value in zip(self.params, self.values, strict=True)]

    def step(self, loss_fn, transition, drift):
        """The parameters after one real optimiser step on this transition (detached copies)."""
        self.reset()
        loss = loss_fn(self.module, transition)
        if loss.ndim != 0:
            raise InputError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
        loss.backward()
        stepped = [p.grad is not None for p in self.params]
        self.optimizer.step()
        with torch.no_grad():
            if drift is not None:  # parameters without a gradient were not stepped: no drift
                for p, d, moved in zip(self.params, drift, stepped, strict=True):
                    if moved:
                        p.sub_(d)
            return {name: p.detach().clone() for name, p in self.module.named_parameters()}

    def evaluate(self, copies, inputs, vectorize):
        """Outputs [len(copies), m, ...] of the module under each parameter copy."""
        with torch.no_grad():
            if vectorize:
                stacked = {name: torch.stack([c[name] for c in copies]) for name in copies[0]}
                outs = torch.func.vmap(
                    lambda p: torch.func.functional_call(self.module, p, (inputs,))
                )(stacked)
                return to_numpy(outs)
            outs = []
            for c in copies:
                for name, p in self.module.named_parameters():
                    p.copy_(c[name])
                outs.append(to_numpy(self.module(inputs)))
            return np.stack(outs)


def update_rank(A, eps: float = 0.1) -> int:
    """|{sigma : sigma > eps * max sigma}| of A [k, m], the definition of
    `tdgen.interference.update_rank` (Appendix B.1), computed by torch so that no JAX is loaded;
    an all-zero matrix has rank 0. Returns a Python int (not a tensor)."""
    if not 0.0 < float(eps) < 1.0:
        raise InputError(f"eps must lie in (0, 1), got {eps}")
    s = torch.linalg.svdvals(torch.as_tensor(np.asarray(A, np.float32)))
    return int((s > eps * s[0]).sum())


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor on any device (CUDA included) as a numpy array."""
    return tensor.detach().cpu().numpy()


def _clone(state: dict) -> dict:
    return {key: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for key, v in state.items()}
