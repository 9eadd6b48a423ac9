"""The update matrix against a plain reference loop, and the structure the paper predicts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.interference import gradient_gram, update_matrix, update_rank

K, OBS, HIDDEN, ACTIONS, ATOMS = 8, 5, 16, 4, 7
SUPPORT = np.linspace(-2.0, 2.0, ATOMS)
OUT_SHAPES = {"expectation": (ACTIONS, ATOMS), "none": ()}


def mlp(out_shape):
    """A two-layer tanh MLP whose output per state has `out_shape`."""
    size = int(np.prod(out_shape, dtype=int))

    def init(key):
        k1, k2 = jax.random.split(key)
        return {
            "w1": jax.random.normal(k1, (OBS, HIDDEN)) / np.sqrt(OBS),
            "b1": jnp.full((HIDDEN,), 0.1),
            "w2": jax.random.normal(k2, (HIDDEN, size)) / np.sqrt(HIDDEN),
            "b2": jnp.zeros((size,)),
        }

    def apply(params, obs):
        h = jnp.tanh(obs @ params["w1"] + params["b1"])
        return (h @ params["w2"] + params["b2"]).reshape((obs.shape[0], *out_shape))

    return init, apply


def reference_values(reduce, out, actions):
    """Reductions of Appendix B.1, written out plainly in numpy."""
    out = np.asarray(out, dtype=np.float64)
    if reduce == "none":
        return out
    if reduce == "policy":
        e = np.exp(out - out.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if reduce == "expectation":
        e = np.exp(out - out.max(-1, keepdims=True))
        return ((e / e.sum(-1, keepdims=True)) @ SUPPORT).max(-1)
    if reduce == "max":
        return out.max(-1)
    if reduce == "mean":
        return out.mean(-1)
    if reduce == "index":
        return out[:, 2]
    return out[np.arange(len(out)), actions]


def reference_matrix(apply, params, loss_fn, batch, opt, state, reduce, center="none"):
    """Copy the parameters, take one optimiser step on transition i, evaluate every state."""
    obs, actions = batch["obs"], np.asarray(batch["action"])
    base = reference_values(reduce, apply(params, obs), actions)
    zeros = jax.tree.map(jnp.zeros_like, params)
    drift = opt.update(zeros, state, params)[0]
    grad = jax.grad(loss_fn)
    rows = []
    for i in range(len(obs)):
        transition = jax.tree.map(lambda leaf, i=i: leaf[i], batch)
        updates = opt.update(grad(params, transition), state, params)[0]
        if center == "drift":
            updates = jax.tree.map(lambda u, d: u - d, updates, drift)
        new = reference_values(reduce, apply(optax.apply_updates(params, updates), obs), actions)
        diff = new - base
        rows.append(np.linalg.norm(diff, axis=-1) if reduce == "policy" else diff)
    return np.stack(rows)


def problem(reduce, seed=0, k=K):
    init, apply = mlp(OUT_SHAPES.get(reduce, (ACTIONS,)))
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = init(keys[0])
    batch = {
        "obs": jax.random.normal(keys[1], (k, OBS)),
        "action": jax.random.randint(keys[2], (k,), 0, ACTIONS),
        "target": jax.random.normal(keys[3], (k,)),
    }

    def loss_fn(p, t):
        out = apply(p, t["obs"][None])[0]
        if reduce == "none":
            return 0.5 * (out - t["target"]) ** 2
        if reduce == "policy":
            return -jax.nn.log_softmax(out)[t["action"]] * t["target"]
        if reduce == "expectation":
            out = jax.nn.softmax(out, -1) @ SUPPORT
        return 0.5 * (out[t["action"]] - t["target"]) ** 2

    return apply, params, loss_fn, batch


def warm(opt, params, seed=0, steps=3):
    """Optimiser state after a few steps on random gradients: non-trivial moments."""
    state = opt.init(params)
    leaves, tree = jax.tree.flatten(params)
    for step in range(steps):
        keys = jax.random.split(jax.random.PRNGKey(100 * seed + step), len(leaves))
        noise = [jax.random.normal(key, leaf.shape) for key, leaf in zip(keys, leaves, strict=True)]
        state = opt.update(jax.tree.unflatten(tree, noise), state, params)[1]
    return state


OPTIMIZERS = {
    "sgd": optax.sgd(0.05),
    "momentum": optax.sgd(0.05, momentum=0.9),
    "adam": optax.adam(0.01),
    "rmsprop": optax.rmsprop(0.01),
}
REDUCES = ["max", "mean", "action", "index", "expectation", "policy", "none"]
EXTRA = {"index": {"action_index": 2}, "expectation": {"support": SUPPORT}}


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_matches_reference_loop(opt_name, reduce):
    apply, params, loss_fn, batch = problem(reduce)
    opt = OPTIMIZERS[opt_name]
    state = warm(opt, params)
    center = "drift" if opt_name in ("adam", "momentum") else "none"
    A = update_matrix(
        apply,
        params,
        loss_fn,
        batch,
        opt,
        state,
        reduce=reduce,
        center=center,
        chunk_size=None,
        **EXTRA.get(reduce, {}),
    )
    want = reference_matrix(apply, params, loss_fn, batch, opt, state, reduce, center)
    assert A.shape == (K, K)
    np.testing.assert_allclose(A, want, atol=1e-5, rtol=1e-4)
    assert np.abs(want).max() > 1e-3  # the comparison is not vacuous


@pytest.mark.parametrize("reduce", ["max", "policy"])
def test_chunked_equals_unchunked_and_reference(reduce):
    apply, params, loss_fn, batch = problem(reduce, seed=1, k=7)
    opt = OPTIMIZERS["adam"]
    state = warm(opt, params)
    full = update_matrix(apply, params, loss_fn, batch, opt, state, reduce=reduce, chunk_size=7)
    for chunk in (1, 3, None):  # 3 leaves a remainder of 1
        A = update_matrix(
            apply, params, loss_fn, batch, opt, state, reduce=reduce, chunk_size=chunk
        )
        np.testing.assert_allclose(A, full, atol=1e-6)
    want = reference_matrix(apply, params, loss_fn, batch, opt, state, reduce)
    np.testing.assert_allclose(full, want, atol=1e-5, rtol=1e-4)


def test_inputs_other_than_the_batch():
    apply, params, loss_fn, batch = problem("max")
    held_out = jax.random.normal(jax.random.PRNGKey(9), (3, OBS))
    A = update_matrix(
        apply, params, loss_fn, batch, optax.sgd(0.1), optax.sgd(0.1).init(params), inputs=held_out
    )
    assert A.shape == (K, 3)


@pytest.mark.slow
@pytest.mark.parametrize("reduce", ["max", "expectation", "policy"])
def test_linearized_agrees_with_exact(reduce):
    apply, params, loss_fn, batch = problem(reduce, k=12)
    opt = optax.adam(1e-3)
    state = warm(opt, params)
    kw = dict(reduce=reduce, center="drift", **EXTRA.get(reduce, {}))
    exact = update_matrix(apply, params, loss_fn, batch, opt, state, **kw)
    linear = update_matrix(apply, params, loss_fn, batch, opt, state, method="linearized", **kw)
    chunked = update_matrix(
        apply, params, loss_fn, batch, opt, state, method="linearized", chunk_size=5, **kw
    )
    np.testing.assert_allclose(chunked, linear, atol=1e-6)
    error = np.linalg.norm(linear - exact) / np.linalg.norm(exact)
    assert error < 0.05, error
    assert update_rank(linear) == update_rank(exact)


def test_sgd_small_step_is_lr_times_gradient_gram():
    apply, params, loss_fn, batch = problem("max", k=10)
    lr = 1e-4
    A = update_matrix(
        apply, params, loss_fn, batch, optax.sgd(lr), optax.sgd(lr).init(params), chunk_size=None
    )
    G = gradient_gram(apply, params, batch, loss_fn)
    error = np.linalg.norm(A - lr * G) / np.linalg.norm(lr * G)
    assert error < 1e-2, error
    ntk = gradient_gram(apply, params, batch)
    np.testing.assert_allclose(ntk, ntk.T, rtol=1e-5, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(np.asarray(ntk, np.float64)) > -1e-4)


# --- the two extremes of Section 5.1 and a linear model in between -----------------------------


def linear_problem(features, k, seed=0):
    """v(x) = w . phi(x) regressed onto targets +-[1, 2]; phi given as the observations."""
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    sign = jnp.where(jnp.arange(k) % 2 == 0, 1.0, -1.0)
    batch = {
        "obs": features,
        "target": sign * jax.random.uniform(keys[1], (k,), minval=1.0, maxval=2.0),
    }

    def apply(w, obs):
        return obs @ w

    def loss_fn(w, t):
        return 0.5 * (apply(w, t["obs"][None])[0] - t["target"]) ** 2

    return apply, loss_fn, batch


def test_tabular_model_gives_diagonal_full_rank():
    k = 12
    apply, loss_fn, batch = linear_problem(jnp.eye(k), k)
    w = jnp.zeros(k)
    A = update_matrix(
        apply, w, loss_fn, batch, optax.sgd(0.5), optax.sgd(0.5).init(w), reduce="none"
    )
    off_diagonal = np.asarray(A) - np.diag(np.diag(A))
    assert np.abs(off_diagonal).max() == 0.0
    assert np.all(np.abs(np.diag(A)) > 0)
    # w_i moves from 0 by -0.5 * (w_i - target_i): the diagonal is half the targets
    np.testing.assert_allclose(np.diag(A), 0.5 * batch["target"], rtol=1e-6)
    assert update_rank(A) == k


def test_single_parameter_gives_rank_one():
    k = 10
    phi = jax.random.uniform(jax.random.PRNGKey(3), (k, 1), minval=0.5, maxval=2.0)
    apply, loss_fn, batch = linear_problem(phi, k)
    theta = jnp.array([0.3])
    opt = optax.adam(0.01)
    A = update_matrix(apply, theta, loss_fn, batch, opt, opt.init(theta), reduce="none")
    assert update_rank(A) == 1


@pytest.mark.parametrize(
    ("opt", "first_step"),
    [(optax.sgd(0.1), lambda g: -0.1 * g),
     (optax.adam(0.01), lambda g: -0.01 * g / (np.abs(g) + 1e-8))],  # bias-corrected m/sqrt(v)
    ids=["sgd", "adam"],
)  # fmt: skip
def test_linear_model_rank_at_most_feature_dimension(opt, first_step):
    k, d = 16, 5
    phi = jax.random.normal(jax.random.PRNGKey(4), (k, d))
    apply, loss_fn, batch = linear_problem(phi, k)
    w = jnp.zeros(d)
    A = update_matrix(apply, w, loss_fn, batch, opt, opt.init(w), reduce="none")
    # closed form at w = 0: grad_i = -target_i phi_i, so A = U phi^T with U[i] the first step
    phi64 = np.asarray(phi, np.float64)
    want = first_step(-np.asarray(batch["target"], np.float64)[:, None] * phi64) @ phi64.T
    np.testing.assert_allclose(A, want, rtol=1e-4, atol=1e-6)
    s = np.linalg.svd(want, compute_uv=False)
    assert update_rank(A) == np.sum(s > 0.1 * s[0])
    assert 1 <= update_rank(A) <= d
    assert np.linalg.matrix_rank(np.asarray(A, np.float64), tol=1e-6) == d  # generic phi: rank d


@pytest.mark.parametrize("features", ["tabular", "linear"])
def test_drift_centering_recovers_the_data_rank_under_warm_adam(features):
    k, d = 16, 6
    phi = jnp.eye(k) if features == "tabular" else jax.random.normal(jax.random.PRNGKey(5), (k, d))
    data_rank = k if features == "tabular" else d
    apply, loss_fn, batch = linear_problem(phi, k)
    w = jnp.zeros(phi.shape[1])
    opt = optax.adam(0.01)
    # Warm state: momentum from many steps in one direction, the regime of a trained agent.
    state = opt.init(w)
    push = jnp.ones_like(w)
    for _ in range(20):
        _, state = opt.update(push, state, w)
    plain = update_matrix(apply, w, loss_fn, batch, opt, state, reduce="none", center="none")
    centred = update_matrix(apply, w, loss_fn, batch, opt, state, reduce="none", center="drift")
    assert update_rank(plain) <= 2
    assert update_rank(centred) == data_rank


# --- bad input: a ValueError that names the problem ---------------------------------------------


def test_bad_input_messages():
    apply, params, loss_fn, batch = problem("max")
    opt = optax.sgd(0.1)
    state = opt.init(params)

    def call(**kw):
        args = dict(
            apply_fn=apply,
            params=params,
            loss_fn=loss_fn,
            batch=batch,
            optimizer=opt,
            opt_state=state,
        )
        args.update(kw)
        return update_matrix(**args)

    with pytest.raises(ValueError, match=r"unknown reduction 'maxx': did you mean 'max'"):
        call(reduce="maxx")
    with pytest.raises(ValueError, match="different leading axes.*'action'.* has 7"):
        call(batch={**batch, "action": batch["action"][:7]})
    with pytest.raises(ValueError, match="batch is empty"):
        call(batch=jax.tree.map(lambda leaf: leaf[:0], batch))
    with pytest.raises(ValueError, match="apply_fn.*failed on inputs of shape"):
        call(inputs=jnp.ones((K, OBS + 1)))
    with pytest.raises(ValueError, match="reduce='none' needs"):
        call(reduce="none")
    with pytest.raises(ValueError, match="action_index"):
        call(reduce="index")
    with pytest.raises(ValueError, match="support"):
        call(reduce="expectation")
    with pytest.raises(ValueError, match="unknown center 'drfit'"):
        call(center="drfit")
    with pytest.raises(ValueError, match="unknown method"):
        call(method="approximate")
    with pytest.raises(ValueError, match="chunk_size"):
        call(chunk_size=0)
    with pytest.raises(ValueError, match="3 inputs and 8 transitions"):
        call(reduce="action", inputs=jnp.ones((3, OBS)))
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        call(loss_fn=lambda p, t: apply(p, t["obs"][None]))


def test_one_call_update_matrix_is_cached_and_does_not_retrace():
    from tdgen.interference.update_matrix import cached_update_matrix

    traces = []
    init, apply = mlp((ACTIONS,))

    def counting_apply(params, obs):
        traces.append(obs.shape)
        return apply(params, obs)

    def loss(params, t):
        return 0.5 * (counting_apply(params, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    params = init(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    batch = {
        "obs": jax.random.normal(keys[0], (K, OBS)),
        "action": jnp.arange(K) % ACTIONS,
        "target": jax.random.normal(keys[1], (K,)),
    }
    opt = optax.adam(1e-2)
    state = opt.init(params)
    cached_update_matrix.cache_clear()
    first = update_matrix(counting_apply, params, loss, batch, opt, state, center="drift")
    n_first = len(traces)
    second = update_matrix(counting_apply, params, loss, batch, opt, state, center="drift")
    assert n_first > 0 and len(traces) == n_first  # the second call traced nothing
    np.testing.assert_array_equal(first, second)
    assert cached_update_matrix.cache_info().hits == 1
    update_matrix(counting_apply, params, loss, batch, opt, state, center="none")
    assert len(traces) > n_first  # other options: a new function
