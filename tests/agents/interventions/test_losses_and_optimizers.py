"""The loss-term and optimiser-wrapper interventions against closed forms and plain references:
L2 Init (Kumar et al. 2023), Parseval (Chung et al. 2024), InFeR (Lyle et al. 2022), decoupled
weight decay (AdamW) and TRAC (Muppidi et al. 2024, Algorithm 1 written in numpy here)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

from tdgen.agents.interventions.base import Context
from tdgen.agents.interventions.infer import InFeR, feature_width
from tdgen.agents.interventions.l2_init import L2Init
from tdgen.agents.interventions.parseval import Parseval, encoder_kernels, parseval_penalty
from tdgen.agents.interventions.trac import TRAC, TracState, erfi, trac
from tdgen.agents.interventions.weight_decay import WeightDecay
from tdgen.errors import InputError
from tdgen.nets import make_network

OBS_DIM, NUM_ACTIONS = 8, 3


@pytest.fixture(scope="module")
def setup():
    """A tiny MLP Q-network (8 -> 8 -> 8 -> 3), its initial variables, a batch and its Context."""
    network = make_network("mlp", "q", NUM_ACTIONS, hidden_sizes=(8, 8), obs_ndim=1)
    obs = jax.random.normal(jax.random.key(1), (16, OBS_DIM))
    variables = network.init(jax.random.key(0), obs)
    context = Context.of(network, obs, optax.adam(1e-3))
    return network, variables, obs, context


def perturbed(tree, key, scale=0.1):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noise = [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, [x + n for x, n in zip(leaves, noise, strict=True)])


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# L2 Init


def test_l2_init_at_lambda_zero_leaves_the_baseline_bit_for_bit(setup):
    network, variables, obs, context = setup
    l2 = L2Init(lam=0.0)
    memory = l2.init_memory(variables, jax.random.key(2), context)
    moved = perturbed(variables, jax.random.key(3))

    def base_loss(v):
        return jnp.mean(jnp.square(network.apply(v, obs)))

    def with_term(v):
        return base_loss(v) + l2.loss_term(v, memory, obs, context)

    assert float(l2.loss_term(moved, memory, obs, context)) == 0.0
    value, grads = jax.value_and_grad(with_term)(moved)
    base_value, base_grads = jax.value_and_grad(base_loss)(moved)
    assert float(value) == float(base_value)
    assert_trees_equal(grads, base_grads)


def test_l2_init_gradient_is_two_lambda_times_the_displacement(setup):
    _, variables, obs, context = setup
    l2 = L2Init(lam=0.37)
    memory = l2.init_memory(variables, jax.random.key(2), context)
    moved = perturbed(variables, jax.random.key(4))
    displacement = jax.tree.map(jnp.subtract, moved["params"], variables["params"])
    expected_value = 0.37 * sum(float(jnp.sum(d**2)) for d in jax.tree.leaves(displacement))
    value, grads = jax.value_and_grad(lambda v: l2.loss_term(v, memory, obs, context))(moved)
    np.testing.assert_allclose(float(value), expected_value, rtol=1e-6)
    assert_trees_equal(grads["params"], jax.tree.map(lambda d: 2 * 0.37 * d, displacement))
    # biases are regularised too (the paper's whole parameter vector)
    assert float(jnp.abs(grads["params"]["encoder"]["Dense_0"]["bias"]).sum()) > 0
    with pytest.raises(InputError, match="lam"):
        L2Init(lam=-1.0)


# Parseval


def orthogonal_kernel(key, rows, cols, scale):
    """A kernel [rows, cols] (rows >= cols) with K^T K = scale * I."""
    q, _ = jnp.linalg.qr(jax.random.normal(key, (rows, cols)))
    return math.sqrt(scale) * q


def test_parseval_is_zero_for_scaled_orthogonal_weights_and_positive_otherwise(setup):
    _, variables, obs, context = setup
    parseval = Parseval(lam=1e-3, scale=2.0)
    assert len(encoder_kernels(variables)) == 2  # the two hidden layers; the head is left out
    assert float(parseval.loss_term(variables, None, obs, context)) > 0
    encoder = variables["params"]["encoder"]
    orthogonal = {
        name: {**layer, "kernel": orthogonal_kernel(jax.random.key(i), *layer["kernel"].shape, 2.0)}
        for i, (name, layer) in enumerate(encoder.items())
    }
    params = {"params": {**variables["params"], "encoder": orthogonal}}
    assert float(parseval.loss_term(params, None, obs, context)) == pytest.approx(0.0, abs=1e-9)
    # a conv kernel [kh, kw, c_in, c_out] is the matrix [kh * kw * c_in, c_out]
    conv = orthogonal_kernel(jax.random.key(5), 3 * 3 * 2, 4, 1.0).reshape(3, 3, 2, 4)
    assert float(parseval_penalty(conv, 1.0)) == pytest.approx(0.0, abs=1e-9)
    assert float(parseval_penalty(conv, 2.0)) == pytest.approx(4.0, rel=1e-5)  # ||(1 - 2) I_4||^2


def test_parseval_gradient_matches_a_finite_difference_and_spares_the_head(setup):
    _, variables, obs, context = setup
    parseval = Parseval(lam=0.5, scale=2.0)
    params32 = perturbed(variables, jax.random.key(6))
    direction32 = perturbed(variables, jax.random.key(7), 0.1)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params32)
        direction = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), direction32)

        def loss(v):
            return parseval.loss_term(v, None, obs, context)

        grads = jax.grad(loss)(params)
        step = 1e-5
        plus = jax.tree.map(lambda p, d: p + step * d, params, direction)
        minus = jax.tree.map(lambda p, d: p - step * d, params, direction)
        numeric = (float(loss(plus)) - float(loss(minus))) / (2 * step)
        analytic = float(optax.tree_utils.tree_vdot(grads, direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-7)
        assert all(
            float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads["params"]["heads_0"])
        )


# InFeR


def test_infer_extra_collection_leaves_the_network_outputs_unchanged(setup):
    network, variables, obs, context = setup
    infer = InFeR()
    assert feature_width(variables) == 8
    extended = infer.extend_params(variables, jax.random.key(8), context)
    assert extended["infer"]["kernel"].shape == (8, 10) and extended["infer"]["bias"].shape == (10,)
    assert_trees_equal(extended["params"], variables["params"])
    np.testing.assert_array_equal(network.apply(extended, obs), network.apply(variables, obs))
    np.testing.assert_array_equal(context.features(extended, obs), context.features(variables, obs))
    with pytest.raises(InputError, match="extend_params first"):
        infer.init_memory(variables, jax.random.key(8), context)


def test_infer_loss_at_initialisation_and_where_its_gradient_goes(setup):
    _, variables, obs, context = setup
    infer = InFeR(num_heads=10, beta=100.0, alpha=0.1)
    extended = infer.extend_params(variables, jax.random.key(8), context)
    memory = infer.init_memory(extended, jax.random.key(9), context)
    features = np.asarray(context.features(variables, obs), np.float64)
    g = features @ np.asarray(extended["infer"]["kernel"]) + np.asarray(extended["infer"]["bias"])
    by_hand = 0.1 * np.mean(np.sum((g - 100.0 * g) ** 2, axis=-1))

    def loss(v):
        return infer.loss_term(v, memory, obs, context)

    np.testing.assert_allclose(float(loss(extended)), by_hand, rtol=1e-5)
    grads = jax.grad(loss)(extended)
    assert all(float(jnp.abs(x).max()) > 0 for x in jax.tree.leaves(grads["infer"]))
    assert float(jnp.abs(grads["params"]["encoder"]["Dense_1"]["kernel"]).max()) > 0
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(grads["params"]["heads_0"]))


# Decoupled weight decay


def run(optimizer, params, grads_seq):
    state = optimizer.init(params)
    for grads in grads_seq:
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def gradient_sequence(params, steps=5):
    return [
        perturbed(jax.tree.map(jnp.zeros_like, params), jax.random.key(20 + i), 1.0)
        for i in range(steps)
    ]


@pytest.mark.parametrize(
    "lr", [3e-3, optax.linear_schedule(3e-3, 1e-3, 4)], ids=["constant", "schedule"]
)
def test_weight_decay_around_adam_is_adamw(setup, lr):
    _, variables, _, _ = setup
    grads_seq = gradient_sequence(variables)
    wrapped = WeightDecay(wd=0.1, lr=lr).wrap_optimizer(optax.adam(lr, eps=1e-5))
    got = run(wrapped, variables, grads_seq)
    expected = run(optax.adamw(lr, eps=1e-5, weight_decay=0.1), variables, grads_seq)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=1e-7)


def test_weight_decay_zero_is_the_base_optimizer_and_rmsprop_decays_by_lr_wd(setup):
    _, variables, _, _ = setup
    base = optax.rmsprop(1e-3, decay=0.95, eps=1e-5, centered=True, eps_in_sqrt=True)
    assert WeightDecay(wd=0.0).wrap_optimizer(base) is base
    grads = gradient_sequence(variables, 1)[0]
    wrapped = WeightDecay(wd=0.5, lr=1e-3).wrap_optimizer(
        optax.chain(optax.clip_by_global_norm(1.0), base)
    )
    updates, _ = wrapped.update(grads, wrapped.init(variables), variables)
    clipped = optax.chain(optax.clip_by_global_norm(1.0), base)
    base_updates, _ = clipped.update(grads, clipped.init(variables), variables)
    expected = jax.tree.map(lambda u, p: u - 1e-3 * 0.5 * p, base_updates, variables)
    for x, y in zip(jax.tree.leaves(updates), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-9)
    with pytest.raises(InputError, match="learning rate"):
        WeightDecay(wd=0.1).wrap_optimizer(base)


# TRAC


def trac_reference(grad_fn, theta_ref, lr, steps, betas, s_init=1e-8, eps=1e-8, sigma_0=1e-8):
    """Muppidi et al. 2024, Algorithm 1 with SGD as BASE and n Algorithm-2 tuners, float64."""
    betas = np.asarray(betas, np.float64)
    theta_base, theta = theta_ref.copy(), theta_ref.copy()
    s, v, sigma = np.zeros_like(betas), np.zeros_like(betas), np.full_like(betas, sigma_0)
    history = []
    for _ in range(steps):
        g = grad_fn(theta)
        h = g @ (theta_base - theta_ref)
        theta_base = theta_base - lr * g
        v = betas**2 * v + h**2
        sigma = betas * sigma - h
        s = s_init / special.erfi(1 / np.sqrt(2)) * special.erfi(sigma / (np.sqrt(2 * v) + eps))
        theta = theta_ref + max(s.sum(), 0.0) * (theta_base - theta_ref)
        history.append((theta.copy(), s.copy()))
    return history


def test_erfi_matches_scipy():
    x = np.linspace(-6, 6, 241)
    np.testing.assert_allclose(
        np.asarray(erfi(jnp.asarray(x, jnp.float32))), special.erfi(x), rtol=2e-5
    )


def test_trac_matches_algorithm_1_in_numpy():
    a = np.array([[2.0, 0.5, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 3.0], [0.5, -1.0, 1.0]])
    b = np.array([1.0, -2.0, 0.5, 3.0])
    theta_ref = np.zeros(3)  # theta = S * offset exactly, so small scales compare in float32

    def grad_fn(theta):
        return a.T @ (a @ theta - b)

    steps, lr = 40, 0.05
    history = trac_reference(grad_fn, theta_ref, lr, steps, TRAC().betas)
    optimizer = TRAC().wrap_optimizer(optax.sgd(lr))
    params = jnp.asarray(theta_ref, jnp.float32)
    state = optimizer.init(params)
    step = jax.jit(optimizer.update)
    for theta, s in history:
        grads = jnp.asarray(grad_fn(np.asarray(params, np.float64)), jnp.float32)
        updates, state = step(grads, state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(np.asarray(state.s), s, rtol=1e-3, atol=1e-12)
        np.testing.assert_allclose(np.asarray(params), theta, rtol=1e-3, atol=1e-9)
    assert max(history[-1][1].sum(), 0) > 1e-3  # the scale has grown from 1e-8: a real test


def test_trac_state_is_arrays_and_runs_under_jit_and_vmap_over_seeds(setup):
    network, _, obs, _ = setup
    targets = jax.random.normal(jax.random.key(11), (obs.shape[0], NUM_ACTIONS))
    optimizer = TRAC().wrap_optimizer(optax.adam(1e-2))
    params = jax.vmap(lambda k: network.init(k, obs))(jax.random.split(jax.random.key(12), 2))
    state = jax.vmap(optimizer.init)(params)
    assert isinstance(state, TracState)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))

    def loss(v):
        return jnp.mean(jnp.square(network.apply(v, obs) - targets))

    @jax.jit
    @jax.vmap
    def train_step(v, opt_state):
        value, grads = jax.value_and_grad(loss)(v)
        updates, opt_state = optimizer.update(grads, opt_state, v)
        return optax.apply_updates(v, updates), opt_state, value

    for _ in range(30):
        params, state, values = train_step(params, state)
    assert all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves((params, state, values)))
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
    assert not np.allclose(np.asarray(values[0]), np.asarray(values[1]))  # two seeds, two runs
    assert state.s.shape == (2, len(TRAC().betas))


def test_trac_first_step_keeps_the_initial_parameters():
    """S_1 = 0 (s starts at 0, the reference's ``s = zeros``): the first update lands on theta_ref."""
    params = {"w": jnp.array([0.3, -0.2]), "b": jnp.array(0.1)}
    optimizer = trac(optax.sgd(0.1))
    state = optimizer.init(params)
    grads = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(-1.0)}
    updates, state = optimizer.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(new["w"]), [0.3, -0.2], atol=1e-6)
    np.testing.assert_allclose(np.asarray(state.offset["w"]), [-0.1, -0.2], rtol=1e-6)
    with pytest.raises(InputError, match="betas"):
        TRAC(betas=())
