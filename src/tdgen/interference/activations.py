"""Layer activations of a Flax linen model, by layer path, without rewriting the model.

Flax's `capture_intermediates` records what each module's `__call__` returns; for Dense and Conv
that is the pre-activation, because `nn.relu` is a function, not a module. To give the *units*
that ReDo and the plasticity literature count, the post-activation, this module traces the
forward pass once (jax.make_jaxpr, at the shapes of the call, so it also works under jit) and
follows each captured kernel layer's output to the activation that consumes it (a `jax.nn`
activation such as relu, gelu, silu, elu, or tanh / sigmoid, or tdgen's concatenating "crelu" and
"fourier_features"), returning that activation's output exactly as the network computed it
(jax inlines gelu into arithmetic, so a gelu layer is not found: name it and apply the
activation); a concatenating activation gives all its outputs, [..., 2d] for d pre-activations.
A layer is a *hidden layer* when its output feeds such an activation directly or through a
normalisation that is a named jit call (`tdgen.nets.options.layer_norm`); output heads (linear)
and IMPALA's second residual convolution (whose output is added to the skip path first) are
therefore not counted by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
from jax.extend import core

from tdgen.errors import InputError, unknown_name

# jax.nn activations appear as named custom_jvp / jit calls; tanh and sigmoid as primitives.
ACTIVATION_NAMES = frozenset(
    {"relu", "relu6", "silu", "swish", "elu", "celu", "selu", "softplus", "leaky_relu"}
    | {"sigmoid", "hard_tanh", "mish", "tanh", "logistic", "squareplus", "hard_swish"}
    | {"crelu", "fourier_features"}  # tdgen.nets.options: concat of two halves, [..., 2d]
)
# Named jit calls a layer's output passes through on its way to the activation.
NORMALISATION_NAMES = frozenset({"layer_norm"})


def kernel_layers(module: nn.Module, method_name: str) -> bool:
    """capture_intermediates filter: the __call__ of every module owning a 'kernel' parameter."""
    return method_name == "__call__" and "kernel" in module.variables.get("params", {})


def capture_activations(
    model: nn.Module,
    variables,
    inputs: jax.Array,
    layers: Sequence[str] | None = None,
    *,
    method=None,
    **apply_kwargs,
) -> dict[str, jax.Array]:
    """{layer path: activations [n, ...]} of `model.apply(variables, inputs)`.

    Paths join module names with "/" (e.g. "encoder/Conv_0", "encoder/Dense_0"). layers=None
    gives every hidden layer (a Dense/Conv output consumed by an activation), post-activation,
    in call order. Naming a layer returns its post-activation if it has one and its module output
    otherwise (e.g. a head's Q-values). `method` and `apply_kwargs` go to `model.apply`.
    """

    def run(v, x):
        return model.apply(
            v,
            x,
            method=method,
            capture_intermediates=kernel_layers,
            mutable=["intermediates"],
            **apply_kwargs,
        )

    closed, shapes = jax.make_jaxpr(run, return_shape=True)(variables, inputs)
    jaxpr = closed.jaxpr
    n_out = len(jax.tree.leaves(shapes[0]))
    paths = _captured_paths(shapes[1].get("intermediates", {}))
    layer_vars = dict(zip(paths, jaxpr.outvars[n_out:], strict=True))
    made_at = {var: i for i, eqn in enumerate(jaxpr.eqns) for var in eqn.outvars}
    captured = sorted(paths, key=lambda name: made_at.get(layer_vars[name], -1))  # call order
    post = _activation_outputs(jaxpr, layer_vars)
    outputs = {name: layer_vars[name] for name in captured}
    return evaluate_layers(closed, (variables, inputs), outputs, post, layers, "Dense/Conv layer")


def evaluate_layers(closed, args, outputs: dict, post: dict, layers, what: str) -> dict:
    """The chosen layers' values from the traced computation ``closed`` of ``args``: every
    layer of ``outputs`` (call order) with a post-activation in ``post`` when layers is None,
    else the named ones (post-activation if any, else the output)."""
    if layers is None:
        chosen = {name: post[name] for name in outputs if name in post}
    else:
        chosen = {}
        for name in layers:
            if name not in outputs:
                raise unknown_name("layer", name, tuple(outputs))
            chosen[name] = post.get(name, outputs[name])
    if not chosen:
        raise InputError(
            f"the model has no {what} followed by an activation; name the layers to read with "
            f"layers=[...] (found: {', '.join(outputs) or 'none'})"
        )
    jaxpr = closed.jaxpr.replace(outvars=list(chosen.values()))
    values = core.jaxpr_as_fun(core.ClosedJaxpr(jaxpr, closed.consts))(*jax.tree.leaves(args))
    return dict(zip(chosen, values, strict=True))


def _captured_paths(intermediates) -> list[str]:
    """Layer paths in the (sorted) leaf order of the intermediates dict, one per __call__."""
    paths = []
    for path, _ in jax.tree_util.tree_flatten_with_path(intermediates)[0]:
        names = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
        if names[-2:-1] != ["__call__"]:
            raise ValueError(f"unexpected intermediate {'/'.join(names)}")
        call = int(names[-1])
        paths.append("/".join(names[:-2]) + (f"#{call}" if call else ""))
    return paths


def _activation_outputs(jaxpr, layer_vars: dict) -> dict:
    """{layer: the output var of the activation consuming that layer's output}, if any."""
    consumers: dict = {}
    for eqn in jaxpr.eqns:
        for var in eqn.invars:
            if isinstance(var, core.Var):
                consumers.setdefault(var, []).append(eqn)
    out = {}
    for name, var in layer_vars.items():
        post = activation_of(var, consumers)
        if post is not None:
            out[name] = post
    return out


def activation_of(var, consumers: dict):
    """The output var of the activation consuming ``var``, directly or through normalisations
    (NORMALISATION_NAMES, with ``var`` as their first operand); None if there is none."""
    seen = set()
    while isinstance(var, core.Var) and var not in seen:
        seen.add(var)
        after = None
        for eqn in consumers.get(var, []):
            name = _activation_name(eqn)
            if name in ACTIVATION_NAMES and len(eqn.outvars) == 1:
                return eqn.outvars[0]
            if name in NORMALISATION_NAMES and eqn.invars[0] is var and after is None:
                after = eqn.outvars[0]
        var = after
    return None


def _activation_name(eqn) -> str:
    """relu is a custom_jvp call named by its source; silu, elu, ... are named jit calls."""
    if "call_jaxpr" in eqn.params:
        info = getattr(eqn.params["call_jaxpr"].jaxpr, "debug_info", None)
        source = getattr(info, "func_src_info", None) or ""
        return source.split(" ")[0]
    name = eqn.params.get("name")
    return str(name) if name is not None else eqn.primitive.name
