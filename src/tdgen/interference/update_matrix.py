"""The update matrix of Section 5.1 (Eq. 21) for any JAX network and optax optimiser.

    A[i, j] = v(params_i, x_j) - v(params, x_j)

where params_i is one step of the optimiser, from its current state, on the loss of transition i
alone, x_j is the j-th observation and v is a reduction of the network's outputs (reductions.py).
The paper prints x_i on both sides of Eq. 21; Figures 3 and 12 and Appendix B.1 make clear that
rows index the updated transition and columns the evaluated state, as here.

Two methods:
  exact       the definition: k parameter copies, k * m forward evaluations.
  linearized  A ~= U J^T with U[i] the flattened optimiser update of transition i and J[j] the
              gradient of v(., x_j); error O(|u|^2) = O(lr^2). The *reduced* output is
              linearised (for "max" the gradient of the greedy action's value); for "policy",
              A[i, j] = ||Jp_j u_i|| with Jp_j the Jacobian of the action probabilities.
Two centerings:
  none   the optimiser's step as it is.
  drift  the step minus the step the same optimiser state takes on a zero gradient. With momentum
         (Adam, SGD with momentum) every single-transition step shares the momentum term, so
         uncentred rows share one direction and the matrix is close to rank one whatever the
         data; the drift-centred matrix keeps what transition i itself causes. For plain SGD the
         two coincide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from tdgen.errors import InputError, unknown_name
from tdgen.interference.batch import checked_actions, shape_of, transitions
from tdgen.interference.im2col import conv_as_matmul
from tdgen.interference.keys import CENTERS
from tdgen.interference.reductions import Reduction

METHODS = ("exact", "linearized")
CONVS = ("native", "matmul")

PyTree = Any
ApplyFn = Callable[[PyTree, jax.Array], jax.Array]
LossFn = Callable[[PyTree, PyTree], jax.Array]


def update_matrix(
    apply_fn: ApplyFn,
    params: PyTree,
    loss_fn: LossFn,
    batch: PyTree,
    optimizer: optax.GradientTransformation,
    opt_state: PyTree,
    *,
    inputs: jax.Array | None = None,
    reduce: str = "max",
    action_index: int | None = None,
    support: Any = None,
    center: str = "none",
    method: str = "exact",
    chunk_size: int | None = None,
    conv: str = "matmul",
) -> jax.Array:
    """The update matrix A [k, m] of Eq. 21 (m = k unless `inputs` are given).

    apply_fn(params, observations [m, ...]) -> outputs [m, ...]; loss_fn(params, transition) -> a
    scalar, transition being one slice of `batch` (a pytree whose leaves have leading axis k, by
    convention a dict with "obs", "action", ...). `inputs` defaults to batch["obs"]; the "action"
    reduction reads batch["action"]. `action_index` is the fixed action of reduce="index" and
    `support` the atom values of reduce="expectation".

    chunk_size is the number of transitions processed together (vectorised with jax.vmap);
    chunks run one after another under jax.lax.map, so memory holds O(chunk_size) parameter
    copies (exact) or chunk_size flattened updates next to the [m, P] Jacobian (linearized).
    None picks the measured default: 1 for exact (the fastest on XLA:CPU: vmap over parameter
    copies batches every layer's weights, which runs slower than a sequence of batched forward
    passes over the m states), 64 for linearized (a [64, P] x [P, m] matrix product per chunk).
    conv="matmul" evaluates convolutions as im2col patches times a matrix (im2col.py), ~1.5-2x
    faster on CPU and equal up to float rounding; "native" keeps XLA's convolution.

    The jitted function is cached on the identity of apply_fn, loss_fn and optimizer and on the
    options (a bounded LRU of CACHE_SIZE entries, `cached_update_matrix`), so a second call with
    the same functions and shapes does not retrace: it costs what a `make_update_matrix` probe
    costs. Functions created anew at each call (a lambda in a loop) miss the cache.
    """
    support = None if support is None else tuple(np.asarray(support, np.float64).tolist())
    options = (reduce, action_index, support, center, method, chunk_size, conv)
    try:
        fn = cached_update_matrix(apply_fn, loss_fn, optimizer, *options)
    except TypeError as err:  # an unhashable argument (e.g. a custom optimiser object): no cache
        if "unhashable" not in str(err):
            raise
        fn = cached_update_matrix.__wrapped__(apply_fn, loss_fn, optimizer, *options)
    return fn(params, opt_state, batch, inputs)


CACHE_SIZE = 16


@lru_cache(maxsize=CACHE_SIZE)
def cached_update_matrix(
    apply_fn, loss_fn, optimizer, reduce, action_index, support, center, method, chunk_size, conv
):
    """make_update_matrix(...) memoised on its arguments (functions hash by identity).

    Entries hold strong references to the functions (and what they close over) until evicted;
    `cached_update_matrix.cache_clear()` drops them.
    """
    return make_update_matrix(
        apply_fn,
        loss_fn,
        optimizer,
        reduce=reduce,
        action_index=action_index,
        support=support,
        center=center,
        method=method,
        chunk_size=chunk_size,
        conv=conv,
    )


def make_update_matrix(
    apply_fn: ApplyFn,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    reduce: str = "max",
    action_index: int | None = None,
    support: Any = None,
    center: str = "none",
    method: str = "exact",
    chunk_size: int | None = None,
    conv: str = "matmul",
) -> Callable[..., jax.Array]:
    """A jitted `(params, opt_state, batch, inputs=None) -> A`; arguments as in update_matrix.

    Returns that function: batch leaves [k, ...] and inputs [m, ...] (default batch["obs"], m = k)
    give A [k, m]. `.compile(params, opt_state, batch, inputs=None)` compiles ahead of time for
    those shapes.
    """
    reduction = Reduction(
        reduce, action_index, None if support is None else tuple(np.asarray(support).tolist())
    )
    if center not in CENTERS:
        raise unknown_name("center", center, CENTERS)
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    check_chunk_size(chunk_size)
    if conv not in CONVS:
        raise unknown_name("conv", conv, CONVS)
    body = _exact if method == "exact" else _linearized
    # The k * m evaluations and per-state Jacobians use im2col; loss_fn keeps XLA's convolution
    # (k batch-1 gradients, a small share of the cost, whose im2col version compiles slowly).
    inner_apply = conv_as_matmul(apply_fn) if conv == "matmul" else apply_fn
    core = jax.jit(
        partial(body, inner_apply, loss_fn, optimizer, reduction, center == "drift"),
        static_argnames="chunk",
    )

    def arguments(params, opt_state, batch, inputs):
        k = check_batch(batch)
        inputs, actions = state_inputs(apply_fn, params, batch, inputs, reduction)
        check_loss(loss_fn, params, batch)
        return (params, opt_state, batch, inputs, actions), _chunk(chunk_size, k, method)

    def compute(params, opt_state, batch, inputs=None):
        args, chunk = arguments(params, opt_state, batch, inputs)
        return core(*args, chunk=chunk)

    def compile(params, opt_state, batch, inputs=None):
        """Compile ahead of time for these shapes; returns `compute` without tracing."""
        args, chunk = arguments(params, opt_state, batch, inputs)
        compiled = core.lower(*args, chunk=chunk).compile()

        def run(params, opt_state, batch, inputs=None):
            return compiled(*arguments(params, opt_state, batch, inputs)[0])

        return run

    compute.compile = compile
    return compute


def optimizer_step(loss_fn, optimizer, params, opt_state, drift: bool):
    """Returns transition -> the optimiser update (a params-shaped pytree) of that transition."""
    offset = None
    if drift:
        zeros = jax.tree.map(jnp.zeros_like, params)
        offset = optimizer.update(zeros, opt_state, params)[0]

    def step(transition):
        grads = jax.grad(loss_fn)(params, transition)
        updates = optimizer.update(grads, opt_state, params)[0]
        return updates if offset is None else jax.tree.map(jnp.subtract, updates, offset)

    return step


def _exact(
    apply_fn, loss_fn, optimizer, reduction, drift, params, opt_state, batch, inputs, actions, chunk
):
    step = optimizer_step(loss_fn, optimizer, params, opt_state, drift)
    base = reduction.values(apply_fn(params, inputs), actions)

    def row(transition):
        new_params = optax.apply_updates(params, step(transition))
        return reduction.difference(reduction.values(apply_fn(new_params, inputs), actions), base)

    return jax.lax.map(row, batch, batch_size=chunk)


def _linearized(
    apply_fn, loss_fn, optimizer, reduction, drift, params, opt_state, batch, inputs, actions, chunk
):
    step = optimizer_step(loss_fn, optimizer, params, opt_state, drift)
    jac = value_jacobian(apply_fn, reduction, params, inputs, actions, chunk)

    def rows(transitions):  # one chunk: a [chunk, P] @ [P, m] matrix product
        updates = jax.vmap(lambda t: ravel_pytree(step(t))[0])(transitions)
        delta = jnp.einsum("cp,m...p->cm...", updates, jac)
        return jnp.linalg.norm(delta, axis=-1) if reduction.is_vector else delta

    return _map_chunks(rows, batch, chunk)


def value_jacobian(apply_fn, reduction, params, inputs, actions, chunk):
    """Flattened gradients of each state's reduced output: [m, P], or [m, A, P] for "policy"."""
    flat, unravel = ravel_pytree(params)

    def value(flat_params, x, a):
        out = apply_fn(unravel(flat_params), x[None])
        return reduction.values(out, a[None])[0]

    grad = jax.jacrev(value) if reduction.is_vector else jax.grad(value)
    return jax.lax.map(
        lambda xa: grad(flat, *xa), (inputs, actions), batch_size=min(chunk, inputs.shape[0])
    )


def _map_chunks(fn, xs, chunk):
    """fn maps a chunk (leading axis <= chunk) to rows; run chunk by chunk, concatenated."""
    k = jax.tree.leaves(xs)[0].shape[0]
    whole, rest = divmod(k, chunk)
    head = jax.tree.map(lambda x: x[: whole * chunk].reshape(whole, chunk, *x.shape[1:]), xs)
    out = jax.lax.map(fn, head)
    out = out.reshape(whole * chunk, *out.shape[2:])
    if rest:
        out = jnp.concatenate([out, fn(jax.tree.map(lambda x: x[whole * chunk :], xs))])
    return out


# --- validation, before anything is traced: errors name the argument and the fix ---------------


def check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int | np.integer) or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


DEFAULT_CHUNK = {"exact": 1, "linearized": 64}


def _chunk(chunk_size, k, method="exact"):
    """Transitions per vectorised chunk, at most k."""
    return min(DEFAULT_CHUNK[method] if chunk_size is None else int(chunk_size), k)


def check_batch(batch) -> int:
    """The number of transitions k of a pytree batch; raises if it is empty or its leaves
    disagree (the rules of `tdgen.interference.batch.transitions`)."""
    return transitions(
        (jax.tree_util.keystr(path), shape_of(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(batch)
    )


def state_inputs(apply_fn, params, batch, inputs, reduction: Reduction):
    """The observations x_j [m, ...] and the actions the "action" reduction reads ([m] ints)."""
    if inputs is None:
        if not isinstance(batch, Mapping) or "obs" not in batch:
            raise InputError("inputs not given and batch has no 'obs' entry to default to")
        inputs = batch["obs"]
    inputs = jnp.asarray(inputs)
    m = inputs.shape[0] if inputs.ndim else 0
    if m == 0:
        raise InputError("inputs are empty: the update matrix needs at least one state")
    actions = action_indices(batch, reduction, m)
    try:
        out = jax.eval_shape(apply_fn, params, inputs)
    except Exception as err:  # the user's network rejected the observations: say which
        raise InputError(
            f"apply_fn(params, inputs) failed on inputs of shape {inputs.shape}: {err}"
        ) from err
    reduction.check_outputs(tuple(out.shape), m)
    return inputs, actions


def action_indices(batch, reduction: Reduction, m: int) -> jax.Array:
    """batch["action"] as [m] int32 for reduce="action" (needs m == k); zeros otherwise."""
    k = check_batch(batch) if reduction.name == "action" else m
    return jnp.asarray(checked_actions(batch, reduction, m, k))


def check_loss(loss_fn, params, batch) -> None:
    transition = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf)[1:], jnp.result_type(leaf)), batch
    )
    try:
        out = jax.eval_shape(loss_fn, params, transition)
    except Exception as err:
        raise InputError(f"loss_fn(params, transition) failed on one transition: {err}") from err
    if out.shape != ():
        raise InputError(
            f"loss_fn must return a scalar for one transition, got shape {out.shape}; it receives "
            "one slice of the batch (leading axis removed)"
        )
