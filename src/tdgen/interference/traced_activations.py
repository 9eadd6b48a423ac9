"""Layer activations of any JAX model given as ``apply_fn(params, inputs)``: Flax NNX (its state,
with ``nnx.merge`` inside apply_fn), a linen ``model.apply``, or plain functions of a dict of
arrays, read from the traced computation rather than from the framework.

A *layer* is a matrix product or convolution (``dot_general``, ``conv_general_dilated``) with a
parameter leaf as one operand, named by that leaf's path without a leading "params" and a
trailing "kernel" / "weight" / "w" ("encoder/Dense_0" for linen, "linear1" for an NNX attribute,
"w1" for a dict). Its output, after any bias added to it, is followed to the activation that
consumes it (through a named normalisation), exactly as activations.py does for linen; a layer
with one is a hidden layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from jax.extend import core

from tdgen.interference.activations import activation_of, evaluate_layers

LAYER_PRIMITIVES = ("dot_general", "conv_general_dilated")
TRAILING = ("kernel", "weight", "w", "value")  # NNX's Param leaves end in "value"


def layer_name(path) -> str:
    names = [str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))) for p in path]
    while names and names[-1] in TRAILING:
        names.pop()
    if names[:1] == ["params"]:
        names = names[1:]
    return "/".join(names) or "params"


def capture_traced_activations(
    apply_fn: Callable, params, inputs: jax.Array, layers: Sequence[str] | None = None
) -> dict[str, jax.Array]:
    """{layer: activations [n, ...]} of ``apply_fn(params, inputs)``: every hidden layer's
    post-activation in call order (layers=None), or the named layers (post-activation if they
    have one, else their output, e.g. a head)."""
    closed = jax.make_jaxpr(apply_fn)(params, inputs)
    jaxpr = closed.jaxpr
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    origin = {var: layer_name(path) for var, (path, _) in zip(jaxpr.invars, leaves, strict=False)}
    derived = set(origin)  # vars computed from parameters alone (reshapes, casts, broadcasts)
    consumers: dict = {}
    for eqn in jaxpr.eqns:
        ins = [v for v in eqn.invars if isinstance(v, core.Var)]
        for var in ins:
            consumers.setdefault(var, []).append(eqn)
        if ins and all(v in derived for v in ins):
            derived.update(eqn.outvars)
            if len(ins) == 1 and ins[0] in origin:
                origin.update(dict.fromkeys(eqn.outvars, origin[ins[0]]))
    outputs, post = {}, {}
    for eqn in jaxpr.eqns:
        if eqn.primitive.name not in LAYER_PRIMITIVES:
            continue
        kernels = [v for v in eqn.invars if isinstance(v, core.Var) and v in origin]
        data = [v for v in eqn.invars if isinstance(v, core.Var) and v not in derived]
        if len(kernels) != 1 or not data:
            continue
        name = origin[kernels[0]]
        name = name if name not in outputs else f"{name}#{sum(n.startswith(name) for n in outputs)}"
        var = eqn.outvars[0]
        while True:  # through a bias added to it
            adds = [e for e in consumers.get(var, []) if e.primitive.name == "add"
                    and any(v in derived for v in e.invars if isinstance(v, core.Var))]  # fmt: skip
            if not adds:
                break
            var = adds[0].outvars[0]
        outputs[name] = var
        after = activation_of(var, consumers)
        if after is not None:
            post[name] = after
    return evaluate_layers(closed, (params, inputs), outputs, post, layers,
                           "matrix-product or convolution layer")  # fmt: skip
