"""Convolutions rewritten as patch extraction + matrix multiply (im2col), for any JAX function.

Why: on XLA:CPU, jax.vmap over parameter copies of a convolutional network lowers to grouped
convolutions, several times slower than a loop, and plain convolutions reach a fraction of the
matmul rate. Rewriting each convolution as strided slices (the patches) and one dot_general turns
the batch of parameter copies into a batched matmul. The result equals the convolution up to
float summation order (~1e-6 relative in float32). Convolutions with input dilation or feature /
batch groups are left as they are.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core

_CONV = core.primitives.conv_general_dilated_p
_JIT = core.primitives.jit_p


def conv_as_matmul(fn):
    """`fn` with every supported convolution computed as patches @ kernel; same signature."""

    def wrapped(*args):
        closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*args)
        out = _evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args))
        return jax.tree.unflatten(jax.tree.structure(shapes), out)

    return wrapped


def _evaluate(jaxpr, consts, args):
    env = {}

    def read(var):
        return var.val if isinstance(var, core.Literal) else env[var]

    for var, value in zip(jaxpr.constvars, consts, strict=True):
        env[var] = value
    for var, value in zip(jaxpr.invars, args, strict=True):
        env[var] = value
    for eqn in jaxpr.eqns:
        invals = [read(var) for var in eqn.invars]
        if eqn.primitive is _CONV and _supported(eqn.params):
            outvals = [_conv_matmul(*invals, **eqn.params)]
        elif eqn.primitive is _JIT:
            inner = eqn.params["jaxpr"]
            outvals = _evaluate(inner.jaxpr, inner.consts, invals)
        elif _custom_conv(eqn):  # tdgen.nets.conv: rewrite its forward; its own VJP is dropped
            inner = eqn.params["call_jaxpr"]
            outvals = _evaluate(inner.jaxpr, inner.consts, invals)
        else:
            outvals = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outvals = [outvals]
        for var, value in zip(eqn.outvars, outvals, strict=True):
            env[var] = value
    return [read(var) for var in jaxpr.outvars]


def _custom_conv(eqn) -> bool:
    """A custom-VJP call whose forward is a supported convolution (`tdgen.nets.conv.conv_nhwc`)."""
    if eqn.primitive.name != "custom_vjp_call":
        return False
    inner = eqn.params["call_jaxpr"].jaxpr.eqns
    return any(e.primitive is _CONV and _supported(e.params) for e in inner)


def _supported(params) -> bool:
    return (
        all(d == 1 for d in params["lhs_dilation"])
        and params["feature_group_count"] == 1
        and params["batch_group_count"] == 1
    )


def _conv_matmul(
    lhs,
    rhs,
    *,
    window_strides,
    padding,
    rhs_dilation,
    dimension_numbers,
    precision,
    preferred_element_type,
    **_,
):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    x = jnp.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1]))  # N, spatial..., C
    w = jnp.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0]))  # spatial..., C, O
    x = lax.pad(
        x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in padding), (0, 0, 0)]
    )
    kernel = w.shape[:-2]
    out_size = [
        (x.shape[1 + d] - (kernel[d] - 1) * rhs_dilation[d] - 1) // window_strides[d] + 1
        for d in range(len(kernel))
    ]
    columns = []
    for offset in itertools.product(*(range(size) for size in kernel)):
        start = [o * r for o, r in zip(offset, rhs_dilation, strict=True)]
        limit = [
            s + stride * (n - 1) + 1
            for s, stride, n in zip(start, window_strides, out_size, strict=True)
        ]
        columns.append(
            lax.slice(x, (0, *start, 0), (x.shape[0], *limit, x.shape[-1]), (1, *window_strides, 1))
        )
    patches = jnp.concatenate(columns, axis=-1)  # [N, out..., prod(kernel) * C]
    out = lax.dot_general(
        patches,
        w.reshape(-1, w.shape[-1]),
        (((patches.ndim - 1,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    perm = [0] * out.ndim
    perm[out_spec[0]], perm[out_spec[1]] = 0, out.ndim - 1
    for d in range(len(kernel)):
        perm[out_spec[2 + d]] = 1 + d
    return jnp.transpose(out, perm)
