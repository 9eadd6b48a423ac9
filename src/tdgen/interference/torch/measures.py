"""The learning-dynamics measures of `tdgen.interference` for torch nn.Modules and torch.optim.

Definitions, keys and conventions are those of the JAX functions of the same names (units.py,
gradients.py, churn.py; tests check equality on the same weights to 1e-5). Differences of form:
activations are NCHW, so a unit is axis 1 (a channel, or a Dense unit); `loss_fn(module,
transition) -> scalar tensor` as in `tdgen.interference.torch.update_matrix`; results are 0-d
tensors (float() them to log). Nothing here changes the module, its .grad or the optimiser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tdgen._extras import require
from tdgen.errors import InputError, unknown_name
from tdgen.interference.batch import mapping_transitions
from tdgen.interference.table import FEATURE_RANK_EPS, HESSIAN_ITERATIONS, NTK_THRESHOLDS
from tdgen.interference.torch.contract import module_device, on_device, warn_slow
from tdgen.interference.torch.update_matrix import _Scratch

torch = require("torch", "torch", "tdgen.interference.torch")

TAUS = (0.0, 0.025, 0.1)
HEADS = ("value", "policy")
ACTIVATIONS = (
    torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.CELU,
    torch.nn.SELU, torch.nn.GELU, torch.nn.SiLU, torch.nn.Mish, torch.nn.Tanh, torch.nn.Sigmoid,
    torch.nn.Softplus, torch.nn.Hardtanh, torch.nn.Hardswish,
)  # fmt: skip

Batch = Mapping[str, torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


# --- activations: forward hooks --------------------------------------------------------------


def capture_activations(
    module: torch.nn.Module, inputs: torch.Tensor, layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """{module path: output [n, ...]} of one no-grad forward pass, read by forward hooks.

    layers=None: the output of every activation module (nn.ReLU, nn.Tanh, ...; the post-
    activation units), in call order; a module called twice gives "path" and "path#1". Naming
    modules (paths as in module.named_modules(), e.g. "encoder.3") returns their outputs; for a
    forward() calling F.relu, name the modules whose output is the post-activation.
    """
    modules = dict(module.named_modules())
    if layers is None:
        chosen = [name for name, m in modules.items() if isinstance(m, ACTIVATIONS)]
        if not chosen:
            raise InputError(
                "the module has no activation modules (nn.ReLU, ...); name the layers to read "
                "with layers=[...]"
            )
    else:
        chosen = list(layers)
        for name in chosen:
            if name not in modules:
                raise unknown_name("layer", name, tuple(n for n in modules if n))
    out: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(_module, _args, output):
            key, calls = name, 0
            while key in out:
                calls += 1
                key = f"{name}#{calls}"
            out[key] = output.detach()

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in chosen]
    try:
        with torch.no_grad():
            module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return out


# --- units and features ------------------------------------------------------------------------


def unit_scores(activations: torch.Tensor) -> torch.Tensor:
    """ReDo score E|h_i| / mean_j E|h_j| per unit (axis 1) (Sokar et al. 2023, Eq. 1).

    activations: [n, units, ...] (NCHW). Returns the scores [units], a float32 tensor.
    """
    a = activations.detach().abs().float().movedim(1, -1)
    mean_abs = a.reshape(-1, a.shape[-1]).mean(0)
    layer_mean = mean_abs.mean()
    return mean_abs / layer_mean if layer_mean > 0 else torch.zeros_like(mean_abs)


def dormant_units(activations, taus: Sequence[float] = TAUS) -> dict[str, torch.Tensor]:
    """Fractions of tau-dormant units per layer and overall (JAX: units.dormant_units).

    activations: {layer: [n, units, ...]} or one tensor [n, units, ...] (layer "features").
    Returns {"dormant_{tau}/{layer}": ..., "dormant_{tau}": ...} of 0-d tensors (float() them).
    """
    out, counts, total = {}, dict.fromkeys(taus, 0), 0
    for name, acts in _as_layers(activations).items():
        scores = unit_scores(acts)
        total += scores.numel()
        for tau in taus:
            dormant = (scores <= tau).sum()
            counts[tau] = counts[tau] + dormant
            out[f"dormant_{tau:g}/{name}"] = dormant / scores.numel()
    out.update({f"dormant_{tau:g}": counts[tau] / total for tau in taus})
    return out


def active_units(activations) -> dict[str, torch.Tensor]:
    """Fraction of units non-zero on at least one input (Lyle et al. 2023; JAX: active_units).

    activations: {layer: [n, units, ...]} or one tensor [n, units, ...].
    Returns {"active/{layer}": ..., "active": ...} of 0-d tensors (float() them).
    """
    out, alive, total = {}, 0, 0
    for name, acts in _as_layers(activations).items():
        a = acts.detach().movedim(1, -1)
        on = (a.reshape(-1, a.shape[-1]) != 0).any(0)
        out[f"active/{name}"] = on.float().mean()
        alive, total = alive + on.sum(), total + on.numel()
    out["active"] = alive / total
    return out


def feature_statistics(activations, delta: float = 0.01) -> dict[str, torch.Tensor]:
    """srank (Kumar et al. 2021), effective rank (Roy & Vetterli 2007), mean feature norm.

    activations: {layer: [n, units, ...]} or one tensor, flattened to [n, features]. Returns
    {"feature_srank/{layer}", "feature_erank/{layer}", "feature_norm/{layer}"} of 0-d tensors.
    """
    if not 0.0 < delta < 1.0:
        raise InputError(f"delta must lie in (0, 1), got {delta}")
    out = {}
    for name, acts in _as_layers(activations).items():
        phi = acts.detach().float().reshape(acts.shape[0], -1)
        s = torch.linalg.svdvals(phi)
        total = s.sum()
        if total > 0:
            p = s / total
            srank = (torch.cumsum(s, 0) / total < 1.0 - delta).sum() + 1
            erank = torch.exp(-(p[p > 0] * p[p > 0].log()).sum())
        else:
            srank, erank = torch.tensor(0), torch.tensor(1.0)
        out[f"feature_srank/{name}"] = srank
        out[f"feature_erank/{name}"] = erank
        out[f"feature_norm/{name}"] = phi.norm(dim=-1).mean()
    return out


def feature_stable_ranks(activations) -> dict[str, torch.Tensor]:
    """Per layer: ||Phi||_F^2 / ||Phi||_2^2 of the features [n, features] (rank.stable_rank)."""
    out = {}
    for name, acts in _as_layers(activations).items():
        power = torch.linalg.svdvals(acts.detach().float().reshape(acts.shape[0], -1)) ** 2
        out[f"feature_stable_rank/{name}"] = power.sum() / power[0].clamp_min(1e-38)
    return out


def feature_ranks(activations, eps: float = FEATURE_RANK_EPS) -> dict[str, torch.Tensor]:
    """Per layer: InFeR's #{sigma(Phi / sqrt(n)) > eps} (rank.feature_rank)."""
    if not eps > 0:
        raise InputError(f"feature rank: eps must be positive, got {eps!r}")
    out = {}
    for name, acts in _as_layers(activations).items():
        phi = acts.detach().float().reshape(acts.shape[0], -1)
        out[f"feature_rank/{name}"] = (torch.linalg.svdvals(phi / phi.shape[0] ** 0.5) > eps).sum()
    return out


def _as_layers(activations) -> dict[str, torch.Tensor]:
    layers = dict(activations) if isinstance(activations, Mapping) else {"features": activations}
    if not layers:
        raise InputError("no layers: pass {layer: activations [n, units, ...]}")
    for name, acts in layers.items():
        if acts.ndim < 2 or 0 in acts.shape:
            raise InputError(
                f"activations of layer {name!r} have shape {tuple(acts.shape)}; expected "
                "[n, units, ...] with n >= 1 inputs"
            )
    return layers


# --- parameters and gradients ------------------------------------------------------------------


def _layer(name: str) -> str:
    """'encoder.0' for the parameter encoder.0.weight; a top-level parameter is its own layer."""
    return name.rsplit(".", 1)[0] if "." in name else name


def _norms(prefix: str, named: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sq: dict[str, torch.Tensor] = {}
    for name, value in named.items():
        layer = _layer(name)
        sq[layer] = sq.get(layer, 0.0) + value.detach().float().square().sum()
    if not sq:
        raise InputError("the module has no parameters")
    out = {prefix: torch.sqrt(sum(sq.values()))}
    out.update({f"{prefix}/{name}": torch.sqrt(v) for name, v in sq.items()})
    return out


def parameter_norms(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """||theta||_2 total ("param_norm") and per layer (JAX: gradients.parameter_norms).

    Returns {"param_norm": ..., "param_norm/{layer}": ...} of 0-d tensors (shape []); a layer is
    a parameter's path without its last part ("encoder.0" holds encoder.0.weight and .bias).
    """
    return _norms("param_norm", dict(module.named_parameters()))


def distance_from_init(module: torch.nn.Module, init: Mapping[str, torch.Tensor]) -> dict:
    """||theta - theta_0|| and its ratio to ||theta_0||; `init` = a copy of named_parameters().

    init: {name: tensor of that parameter's shape}. Returns {"init_distance",
    "init_distance/{layer}", "init_distance_relative", "init_distance_relative/{layer}"} of 0-d
    tensors (shape []; the relative distance of a layer initialised at zero is NaN).
    """
    params = dict(module.named_parameters())
    if set(params) != set(init):
        raise InputError("init must hold the same parameter names as module.named_parameters()")
    dist = _norms("init_distance", {n: p - init[n] for n, p in params.items()})
    base = _norms("", dict(init))
    out = dict(dist)
    for key, value in dist.items():
        scale = base[key[len("init_distance") :]]
        rel = value / scale if scale > 0 else torch.tensor(float("nan"))
        out["init_distance_relative" + key[len("init_distance") :]] = rel
    return out


def _transitions(batch, module) -> tuple[dict[str, torch.Tensor], int]:
    """The batch as tensors on the module's device, and its number of transitions k."""
    batch = on_device(batch, module_device(module))
    return batch, mapping_transitions(batch)


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d params without touching .grad; zeros for parameters the loss does not use."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def mean_loss(module: torch.nn.Module, loss_fn: LossFn, batch: Batch) -> torch.Tensor:
    """(1/k) sum_i loss_fn(module, transition_i), differentiable: the k losses in one
    torch.func.vmap pass, or a loop when loss_fn cannot be vmapped (see per_sample_gradients)."""
    batch, k = _transitions(batch, module)
    try:
        return torch.func.vmap(lambda t: loss_fn(module, t))(batch).mean()
    except RuntimeError as err:
        if "vmap" not in str(err):
            raise
        warn_slow(err)
    return sum(loss_fn(module, {key: v[i] for key, v in batch.items()}) for i in range(k)) / k


def gradient_norm(module: torch.nn.Module, loss_fn: LossFn, batch: Batch) -> dict:
    """||grad of the mean per-transition loss||, total and per layer (module .grad untouched).

    batch: {key: [k, ...]}. Returns {"grad_norm": ..., "grad_norm/{layer}": ...} of 0-d tensors.
    """
    named = dict((n, p) for n, p in module.named_parameters() if p.requires_grad)
    loss = mean_loss(module, loss_fn, batch)
    return _norms("grad_norm", dict(zip(named, _grads(loss, list(named.values())), strict=True)))


def hessian_max_eigenvalue(
    module: torch.nn.Module, loss_fn: LossFn, batch: Batch, iterations: int = HESSIAN_ITERATIONS
) -> torch.Tensor:
    """The largest-magnitude eigenvalue of the Hessian of the mean per-transition loss, by
    power iteration on Hessian-vector products from the all-ones vector (curvature.py)."""
    if not (isinstance(iterations, int) and iterations >= 1):
        raise InputError(f"hessian iterations must be a positive integer, got {iterations!r}")
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(mean_loss(module, loss_fn, batch), params, create_graph=True,
                                allow_unused=True)  # fmt: skip
    used = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
    size = sum(p.numel() for p, _ in used)
    v = [torch.full_like(p, size**-0.5) for p, _ in used]

    def hvp(vector):
        return torch.autograd.grad([g for _, g in used], [p for p, _ in used], vector,
                                   retain_graph=True, allow_unused=True)  # fmt: skip

    for _ in range(iterations - 1):
        w = [torch.zeros_like(x) if h is None else h for x, h in zip(v, hvp(v), strict=True)]
        norm = torch.sqrt(sum((x**2).sum() for x in w)).clamp_min(1e-38)
        v = [x / norm for x in w]
    w = [torch.zeros_like(x) if h is None else h for x, h in zip(v, hvp(v), strict=True)]
    return sum((a * b).sum() for a, b in zip(v, w, strict=True)).detach()


class _Loss(torch.nn.Module):
    """Wraps loss_fn so torch.func.functional_call can swap the inner module's parameters."""

    def __init__(self, module, loss_fn):
        super().__init__()
        self.inner, self.loss_fn = module, loss_fn

    def forward(self, transition):
        return self.loss_fn(self.inner, transition)


def per_sample_gradients(
    module: torch.nn.Module, loss_fn: LossFn, batch: Batch, vectorize: bool | None = None
) -> torch.Tensor:
    """J [k, P]: each transition's flattened loss gradient.

    batch: {key: [k, ...]}. Returns J [k, P], a tensor (P: the parameters requiring grad).

    vectorize=True: torch.func.vmap over torch.func.grad (one batched pass); False: a loop of k
    backward passes; None (default): vmap, falling back to the loop when loss_fn cannot be
    vmapped (e.g. `q[t["action"]]`, indexing by a tensor, is data-dependent under vmap; write
    `q.gather(-1, t["action"][None])[0]` to keep the fast path). Both give the same J.
    """
    batch, k = _transitions(batch, module)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if vectorize is not False:
        wrapper = _Loss(module, loss_fn)
        params = {f"inner.{n}": p.detach() for n, p in named}

        def loss(p, transition):
            return torch.func.functional_call(wrapper, p, (transition,))

        try:
            grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, batch)
            return torch.cat([g.reshape(k, -1) for g in grads.values()], dim=1)
        except RuntimeError as err:
            if vectorize or "vmap" not in str(err):
                raise
            warn_slow(err)
    params = [p for _, p in named]
    rows = [
        torch.cat([g.reshape(-1) for g in _grads(loss_fn(module, transition), params)])
        for transition in ({key: v[i] for key, v in batch.items()} for i in range(k))
    ]
    return torch.stack(rows)


def loss_ntk(
    module: torch.nn.Module, loss_fn: LossFn, batch: Batch, vectorize: bool | None = None
) -> torch.Tensor:
    """K = J J^T [k, k], the empirical NTK of the per-sample losses (J: per_sample_gradients).

    batch: {key: [k, ...]}. Returns K [k, k], a tensor.
    """
    J = per_sample_gradients(module, loss_fn, batch, vectorize)
    return J @ J.T


def ntk_statistics(K: torch.Tensor, thresholds: Sequence[float] = NTK_THRESHOLDS) -> dict:
    """Dopamine labs' NTK summaries (JAX: gradients.ntk_statistics).

    K: [k, k]. Returns {"diagonal_mean", "diagonal_std", "off_diagonal_mean", "positive_frac",
    "negative_frac", "rank_{t}"} of 0-d tensors (float() them).
    """
    K = torch.as_tensor(K).float()
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise InputError(f"expected a non-empty square NTK [k, k], got shape {tuple(K.shape)}")
    k = K.shape[0]
    diag = torch.diagonal(K)
    s = torch.linalg.svdvals(K)
    out = {
        "diagonal_mean": diag.mean(),
        "diagonal_std": diag.std(unbiased=False),
        "off_diagonal_mean": (K.sum() - diag.sum()) / (k * (k - 1)) if k > 1 else torch.nan,
        "positive_frac": (K > 0).float().mean(),
        "negative_frac": (K < 0).float().mean(),
    }
    for t in thresholds:
        rank = (s > t * s[0]).sum() if t > 0 else (s > 0).sum()
        out[f"rank_{t:g}"] = rank if s[0] > 0 else torch.tensor(0)
    return out


def gradient_noise(K: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradient-noise statistics from the per-sample gradient NTK (JAX: gradients.gradient_noise).

    K: [k, k]. Returns {"grad_norm", "per_sample_grad_norm", "grad_variance",
    "grad_noise_scale", "grad_coherence"} of 0-d tensors (float() them).
    """
    K = torch.as_tensor(K).float()
    k = K.shape[0]
    mean_sq = K.sum().clamp(min=0) / k**2
    per_sample = torch.diagonal(K).clamp(min=0).sqrt()
    variance = (torch.trace(K) - k * mean_sq) / (k - 1) if k > 1 else torch.tensor(torch.nan)
    norm = mean_sq.sqrt()
    nan = torch.tensor(torch.nan)
    return {
        "grad_norm": norm,
        "per_sample_grad_norm": per_sample.mean(),
        "grad_variance": variance,
        "grad_noise_scale": variance / mean_sq if mean_sq > 0 else nan,
        "grad_coherence": norm / per_sample.mean() if per_sample.sum() > 0 else nan,
    }


# --- policy churn ------------------------------------------------------------------------------


def greedy_churn(q_before: torch.Tensor, q_after: torch.Tensor) -> torch.Tensor:
    """Fraction of states whose argmax action differs (Schaul et al. 2022).

    q_before, q_after: [m, A]. Returns a 0-d float32 tensor (float() it).
    """
    return (q_before.argmax(-1) != q_after.argmax(-1)).float().mean()


def policy_churn_tv(logits_before: torch.Tensor, logits_after: torch.Tensor) -> torch.Tensor:
    """Mean total-variation distance between softmax action distributions.

    logits_before, logits_after: [m, A]. Returns a 0-d tensor (float() it).
    """
    diff = logits_after.softmax(-1) - logits_before.softmax(-1)
    return (0.5 * diff.abs().sum(-1)).mean()


def policy_churn(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    batch: Batch,
    reference: torch.Tensor,
    head: str = "value",
) -> torch.Tensor:
    """Churn on `reference` after one real optimiser step (on a scratch copy) on the mean loss.

    batch: {key: [k, ...]}; reference: [m, ...], on which module gives [m, A]. Returns a 0-d
    tensor (float() it): greedy_churn (head="value") or policy_churn_tv (head="policy").
    """
    if head not in HEADS:
        raise unknown_name("churn head", head, HEADS)
    with torch.no_grad():
        before = module(reference)
    if before.ndim != 2:
        raise InputError(
            f"module returned shape {tuple(before.shape)} on the reference batch; churn needs [m, A]"
        )
    scratch = _Scratch(module, optimizer)
    scratch.reset()
    mean_loss(scratch.module, loss_fn, batch).backward()
    scratch.optimizer.step()
    with torch.no_grad():
        after = scratch.module(reference)
    return greedy_churn(before, after) if head == "value" else policy_churn_tv(before, after)
