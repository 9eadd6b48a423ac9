"""The plasticity probe of Lyle et al. 2023 (Eq. 4-5, Section 3.1, Appendix A.2) for a torch
nn.Module and its torch.optim optimiser: the twin of `tdgen.interference.plasticity`, same
definition and defaults (tested equal to the JAX one on the same weights and targets).

From a copy of the module, a fresh optimiser of the same class and hyperparameters minimises the
full-batch MSE to targets g(x) = a + sin(10^5 f(x; omega_0)) (omega_0: a copy of the module with
every submodule's ``reset_parameters()`` drawn anew; a: the module's mean prediction) for T
steps; the loss at the end, averaged over N targets, is returned. The targets are drawn from
torch's generator seeded with ``seed`` inside ``torch.random.fork_rng``, so the caller's random
state is untouched; they are not the JAX probe's targets for the same seed (another generator).
Nothing is changed: not the module, its .grad, nor the optimiser.
"""

from __future__ import annotations

import copy

from tdgen._extras import require
from tdgen.errors import InputError
from tdgen.interference.table import PLASTICITY_FREQUENCY, PLASTICITY_STEPS, PLASTICITY_TARGETS

torch = require("torch", "torch", "tdgen.interference.torch")


def check_budget(steps, targets) -> None:
    """An InputError naming the setting unless both are positive integers."""
    for name, value in (("plasticity_steps", steps), ("plasticity_targets", targets)):
        if not (isinstance(value, int) and value >= 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def fresh_module(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` re-initialised by each submodule's ``reset_parameters()`` (torch's
    default initialisers, from the current generator). Returns the new module."""
    fresh = copy.deepcopy(module)
    resettable = [m for m in fresh.modules() if callable(getattr(m, "reset_parameters", None))]
    if not resettable:
        raise InputError("the plasticity probe re-initialises the module through its submodules' "
                         "reset_parameters(); this module has none")  # fmt: skip
    for m in resettable:
        m.reset_parameters()
    return fresh


def probe_targets(module, target_module, obs, frequency: float = PLASTICITY_FREQUENCY):
    """g(x) = a + sin(frequency * target_module(x)) at obs [m, ...], a the mean of module(obs)
    over states and outputs. Returns a tensor of the module's output shape, e.g. [m, A]."""
    with torch.no_grad():
        return module(obs).mean() + torch.sin(frequency * target_module(obs))


def fresh_optimizer(optimizer: torch.optim.Optimizer, module, copied) -> torch.optim.Optimizer:
    """An optimiser of ``optimizer``'s class and parameter groups' hyperparameters, with an empty
    state, over the parameters of ``copied`` that stand where ``optimizer``'s are in ``module``."""
    twin = {id(p): q for p, q in zip(module.parameters(), copied.parameters(), strict=True)}
    groups = []
    for group in optimizer.param_groups:
        params = [twin[id(p)] for p in group["params"] if id(p) in twin]
        if params:
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    if not groups:
        raise InputError("the optimiser holds none of the module's parameters")
    return type(optimizer)(groups, **optimizer.defaults)


def fit_loss(module, optimizer: torch.optim.Optimizer, obs, targets, steps: int):
    """The MSE to ``targets`` after ``steps`` full-batch steps of a fresh copy of ``optimizer``
    on a copy of ``module``, from obs [m, ...] to targets (the module's output shape, e.g.
    [m, A]). Returns a 0-d tensor; the module and optimiser are not changed."""
    copied = copy.deepcopy(module)
    opt = fresh_optimizer(optimizer, module, copied)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.mean(torch.square(copied(obs) - targets)).backward()
            opt.step()
    with torch.no_grad():
        return torch.mean(torch.square(copied(obs) - targets))


def plasticity_probe_loss(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    obs,
    seed: int = 0,
    steps: int = PLASTICITY_STEPS,
    targets: int = PLASTICITY_TARGETS,
    frequency: float = PLASTICITY_FREQUENCY,
):
    """E_l[l(theta*_T)] of Lyle et al. 2023 (module docstring) at obs [m, ...]: the mean over
    ``targets`` random target functions of the loss after ``steps`` steps of ``optimizer``'s
    class from a copy of the module. Returns a 0-d tensor (>= 0; lower: more plastic),
    deterministic given ``seed``."""
    check_budget(steps, targets)
    if obs.ndim < 1 or obs.shape[0] < 1:
        raise InputError(
            f"the plasticity probe needs observations [m, ...], got {tuple(obs.shape)}"
        )
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        goals = [
            probe_targets(module, fresh_module(module), obs, frequency) for _ in range(targets)
        ]
    return torch.stack([fit_loss(module, optimizer, obs, g, steps) for g in goals]).mean()


__all__ = ["fit_loss", "fresh_module", "fresh_optimizer", "plasticity_probe_loss", "probe_targets"]
