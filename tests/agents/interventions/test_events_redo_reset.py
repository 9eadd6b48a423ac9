"""ReDo and resets as pure functions on flax variables and optax states: exactly the dormant units
(or the last layers) change, to a fresh init's values, with their optimiser entries reset."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents.interventions.base import Context
from tdgen.agents.interventions.redo import ReDo
from tdgen.agents.interventions.reset import Reset
from tdgen.agents.interventions.trac import trac
from tdgen.errors import InputError
from tdgen.nets import make_network


def context(net, obs, optimizer=None):
    return Context.of(net, obs, optimizer or optax.adam(1e-3))


def trained(ctx, obs, seed=0):
    """Fresh parameters and an optimiser state whose moments are non-zero (as after training)."""
    params = jax.jit(ctx.init_params)(jax.random.key(seed))
    state = ctx.optimizer.init(params)
    noise = jax.random.uniform(jax.random.key(seed + 100), (), minval=0.5, maxval=1.0)
    return params, jax.tree.map(lambda x: x + noise if x.dtype == jnp.float32 else x, state)


def fire(intervention, params, state, key, obs, ctx, memory=None):
    """One jitted firing (as the agents run it)."""
    run = jax.jit(lambda p, s, m, k, o: intervention.fire(p, s, m, k, o, ctx))
    return run(params, state, memory, key, obs)


def reference_scores(h):
    """Sokar et al. Eq. 1 written plainly: mean |h| per unit over the layer's mean."""
    a = np.abs(np.asarray(h)).reshape(-1, h.shape[-1]).mean(0)
    return a / a.mean()


MLP_OBS = jax.random.normal(jax.random.key(7), (32, 5))


@functools.cache
def mlp_with_dead_units():
    """Units 1 and 5 of Dense_0 and unit 3 of Dense_1 are zero on every input."""
    net = make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1)
    ctx = context(net, MLP_OBS)
    params, state = trained(ctx, MLP_OBS)
    params = jax.tree.map(jnp.asarray, params)
    enc = params["params"]["encoder"]
    for layer, units in (("Dense_0", [1, 5]), ("Dense_1", [3])):
        enc[layer]["kernel"] = enc[layer]["kernel"].at[:, units].set(0.0)
        enc[layer]["bias"] = enc[layer]["bias"].at[np.array(units)].set(-1.0)
    return ctx, params, state


def test_redo_recycles_exactly_the_dormant_units_and_nothing_else():
    ctx, params, state = mlp_with_dead_units()
    x = np.asarray(MLP_OBS)
    enc = jax.tree.map(np.asarray, params["params"]["encoder"])
    h0 = np.maximum(x @ enc["Dense_0"]["kernel"] + enc["Dense_0"]["bias"], 0)
    h1 = np.maximum(h0 @ enc["Dense_1"]["kernel"] + enc["Dense_1"]["bias"], 0)
    assert list(np.flatnonzero(reference_scores(h0) <= 0.025)) == [1, 5]
    assert list(np.flatnonzero(reference_scores(h1) <= 0.025)) == [3]

    key = jax.random.key(11)
    new, new_state, memory, logged = fire(ReDo(), params, state, key, MLP_OBS, ctx)
    fresh = ctx.init_params(key)["params"]["encoder"]
    old, got = params["params"], new["params"]
    d0 = np.array([1, 5])
    # incoming weights of the dormant units: the fresh init's; everything else bit for bit
    np.testing.assert_array_equal(got["encoder"]["Dense_0"]["kernel"][:, d0],
                                  fresh["Dense_0"]["kernel"][:, d0])  # fmt: skip
    np.testing.assert_array_equal(
        got["encoder"]["Dense_0"]["bias"][d0], fresh["Dense_0"]["bias"][d0]
    )
    keep0 = np.setdiff1d(np.arange(8), d0)
    np.testing.assert_array_equal(got["encoder"]["Dense_0"]["kernel"][:, keep0],
                                  old["encoder"]["Dense_0"]["kernel"][:, keep0])  # fmt: skip
    k1, k1_old = (
        np.asarray(got["encoder"]["Dense_1"]["kernel"]),
        old["encoder"]["Dense_1"]["kernel"],
    )
    expected = np.array(k1_old)
    expected[:, 3] = fresh["Dense_1"]["kernel"][:, 3]
    expected[d0, :] = 0.0  # outgoing of Dense_0's dormant units; zero wins over the fresh column
    np.testing.assert_array_equal(k1, expected)
    b1 = np.array(old["encoder"]["Dense_1"]["bias"])
    b1[3] = fresh["Dense_1"]["bias"][3]
    np.testing.assert_array_equal(got["encoder"]["Dense_1"]["bias"], b1)
    head = np.array(old["heads_0"]["Dense_0"]["kernel"])
    head[3] = 0.0
    np.testing.assert_array_equal(got["heads_0"]["Dense_0"]["kernel"], head)
    np.testing.assert_array_equal(
        got["heads_0"]["Dense_0"]["bias"], old["heads_0"]["Dense_0"]["bias"]
    )

    # Adam's moments: zero exactly where weights were recycled, unchanged elsewhere
    changed = jax.tree.map(lambda a, b: np.array(a != b), new, params)
    changed["params"]["encoder"]["Dense_0"]["kernel"][:, d0] = True  # a fresh value may equal 0
    changed["params"]["encoder"]["Dense_0"]["bias"][d0] = True
    changed["params"]["encoder"]["Dense_1"]["kernel"][:, 3] = True
    changed["params"]["encoder"]["Dense_1"]["bias"][3] = True
    adam, adam_old = new_state[0], state[0]
    assert int(adam.count) == int(adam_old.count)
    for moment, moment_old in ((adam.mu, adam_old.mu), (adam.nu, adam_old.nu)):
        for c, m, m_old in zip(*map(jax.tree.leaves, (changed, moment, moment_old)), strict=True):
            np.testing.assert_array_equal(np.where(c, 0.0, m_old), m)
        assert any(np.any(np.asarray(m) != 0) for m in jax.tree.leaves(moment))
    assert memory is None
    assert int(logged["interventions/redo/recycled"]) == 3
    assert int(logged["interventions/redo/firings"]) == 1


def test_redo_zeroes_a_dead_channel_at_every_position_of_the_flattened_map():
    net = make_network("minatar", "q+value", 3, channels=4, hidden_size=8)
    obs = (jax.random.uniform(jax.random.key(3), (16, 10, 10, 2)) < 0.3).astype(jnp.float32)
    ctx = context(net, obs)
    params, state = trained(ctx, obs)
    conv = params["params"]["encoder"]["Conv_0"]
    conv["kernel"] = conv["kernel"].at[..., 2].set(0.0)
    conv["bias"] = conv["bias"].at[2].set(-1.0)
    x, kernel = np.asarray(obs), np.asarray(conv["kernel"])
    patches = np.stack([x[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)], 3)
    maps = np.maximum(np.einsum("nhwpc,pco->nhwo", patches, kernel.reshape(9, 2, 4))
                      + np.asarray(conv["bias"]), 0)  # fmt: skip
    conv_dormant = reference_scores(maps) <= 0.025
    assert conv_dormant[2]
    features = np.asarray(ctx.features(params, obs))
    np.testing.assert_allclose(
        features,
        np.maximum(maps.reshape(16, -1) @ np.asarray(params["params"]["encoder"]["Dense_0"]["kernel"])
                   + np.asarray(params["params"]["encoder"]["Dense_0"]["bias"]), 0),
        atol=1e-5,
    )  # fmt: skip
    dense_dormant = reference_scores(features) <= 0.025

    new, _, _, logged = fire(ReDo(), params, state, jax.random.key(5), obs, ctx)
    old, got = params["params"], new["params"]
    rows = np.tile(conv_dormant, 8 * 8)  # (h, w, c) flatten order
    dense = np.asarray(got["encoder"]["Dense_0"]["kernel"])
    assert np.all(dense[rows] == 0)
    live = ~dense_dormant
    np.testing.assert_array_equal(dense[~rows][:, live],
                                  np.asarray(old["encoder"]["Dense_0"]["kernel"])[~rows][:, live])  # fmt: skip
    for head in ("heads_0", "heads_1"):  # the trunk's last layer feeds every head
        kernel = np.asarray(got[head]["Dense_0"]["kernel"])
        assert np.all(kernel[dense_dormant] == 0)
        np.testing.assert_array_equal(
            kernel[live], np.asarray(old[head]["Dense_0"]["kernel"])[live]
        )
    assert int(logged["interventions/redo/recycled"]) == conv_dormant.sum() + dense_dormant.sum()


@pytest.mark.parametrize(
    "optimizer",
    [optax.rmsprop(1e-3), optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))],
    ids=["rmsprop", "clip+adam"],
)
def test_redo_resets_the_moments_of_any_optimiser(optimizer):
    ctx, params, _ = mlp_with_dead_units()
    ctx = context(ctx.network, MLP_OBS, optimizer)
    state = optimizer.init(params)
    state = jax.tree.map(lambda s: s + 1 if s.dtype == jnp.float32 else s, state)  # non-zero
    _, new_state, _, _ = fire(ReDo(), params, state, jax.random.key(0), MLP_OBS, ctx)
    moments = [leaf for leaf in jax.tree.leaves(new_state) if leaf.shape == (5, 8)]
    assert moments and all(np.all(np.asarray(m)[:, [1, 5]] == 0) for m in moments)
    assert all(np.all(np.asarray(m)[:, [0, 2]] == 1) for m in moments)


def test_redo_refuses_residual_encoders_in_one_line():
    with pytest.raises(InputError, match="impala") as error:
        ReDo().check(make_network("impala", "q", 3))
    assert "\n" not in str(error.value)
    ReDo().check(make_network("nature", "c51", 3))


def test_a_reset_redraws_the_last_layers_from_a_fresh_init_and_keeps_the_rest():
    net = make_network("mlp", "q+value", 3, hidden_sizes=(64, 256), obs_ndim=1)
    ctx = context(net, MLP_OBS)
    params, state = trained(ctx, MLP_OBS)
    key = jax.random.key(9)
    fresh = ctx.init_params(key)["params"]
    for layers, reset in ((1, ["heads_0", "heads_1"]), (2, ["heads_0", "heads_1", "Dense_1"])):
        new, new_state, _, logged = fire(Reset(layers=layers), params, state, key, MLP_OBS, ctx)
        assert int(logged["interventions/reset/layers"]) == layers
        flat_new = jax.tree_util.tree_leaves_with_path(new["params"])
        flat_old = dict(jax.tree_util.tree_leaves_with_path(params["params"]))
        flat_fresh = dict(jax.tree_util.tree_leaves_with_path(fresh))
        mu_new = dict(jax.tree_util.tree_leaves_with_path(new_state[0].mu["params"]))
        mu_old = dict(jax.tree_util.tree_leaves_with_path(state[0].mu["params"]))
        for path, value in flat_new:
            names = {getattr(p, "key", None) for p in path}
            if names & set(reset):
                np.testing.assert_array_equal(value, flat_fresh[path])
                assert np.all(np.asarray(mu_new[path]) == 0)
            else:
                np.testing.assert_array_equal(value, flat_old[path])
                np.testing.assert_array_equal(mu_new[path], mu_old[path])
    kernel = np.asarray(new["params"]["encoder"]["Dense_1"]["kernel"])  # LeCun normal: var 1/64
    assert abs(kernel.mean()) < 0.01
    assert kernel.var() == pytest.approx(1 / 64, rel=0.1)
    assert not np.any(np.asarray(new["params"]["encoder"]["Dense_1"]["bias"]))
    with pytest.raises(InputError, match="layers=4"):
        Reset(layers=4).fire(params, state, None, key, MLP_OBS, ctx)


def test_a_reset_under_trac_is_not_undone_by_the_next_step():
    """TRAC's parameters are theta_ref + S * offset: a reset must move theta_ref of the reset
    layers to their fresh values and zero their offset, or TRAC's next step restores them."""

    def head(tree):
        return tree["params"]["heads_0"]["Dense_0"]

    net = make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1)
    ctx = context(net, MLP_OBS, trac(optax.adam(1e-2)))
    params = jax.jit(ctx.init_params)(jax.random.key(0))
    state = ctx.optimizer.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(3):  # move the parameters and TRAC's scale away from their initial values
        updates, state = ctx.optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert float(jnp.sum(state.s)) > 0
    key = jax.random.key(9)
    new, new_state, _, _ = fire(Reset(layers=1), params, state, key, MLP_OBS, ctx)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = ctx.optimizer.update(zeros, new_state, new)
    stepped = optax.apply_updates(new, updates)
    fresh = head(ctx.init_params(key))
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(head(new)[name], fresh[name])
        np.testing.assert_allclose(head(stepped)[name], fresh[name], atol=1e-7)
        np.testing.assert_array_equal(head(new_state.offset)[name], 0.0)
    kept = stepped["params"]["encoder"]["Dense_0"]["kernel"]
    np.testing.assert_allclose(kept, params["params"]["encoder"]["Dense_0"]["kernel"], atol=1e-6)


def test_redo_zeroes_a_dead_channel_in_the_next_convolution_of_a_nature_encoder():
    """Conv -> conv (the consumer reads unit i through kernel[:, :, i, :]), conv -> dense and
    dense -> head, with the dormant units read off flax's own intermediates (Sokar et al. Eq. 1)."""
    net = make_network("nature", "q", 3)
    obs = jax.random.uniform(jax.random.key(3), (8, 36, 36, 4))  # 8x8, 3x3 and 1x1 maps
    ctx = context(net, obs)
    params, state = trained(ctx, obs)
    conv = params["params"]["encoder"]["Conv_0"]
    conv["kernel"] = conv["kernel"].at[..., 2].set(0.0)
    conv["bias"] = conv["bias"].at[2].set(-1.0)
    _, seen = net.apply(params, obs, capture_intermediates=True, mutable=["intermediates"])
    layers = ("Conv_0", "Conv_1", "Conv_2", "Dense_0")
    encoder = seen["intermediates"]["encoder"]
    dormant = {
        n: reference_scores(np.maximum(encoder[n]["__call__"][0], 0)) <= 0.025 for n in layers
    }
    assert dormant["Conv_0"][2]

    new, _, _, logged = fire(ReDo(), params, state, jax.random.key(5), obs, ctx)
    old, got = params["params"]["encoder"], new["params"]["encoder"]
    assert np.any(np.asarray(got["Conv_0"]["kernel"])[..., 2])  # redrawn
    for producer, consumer in zip(layers[:-1], layers[1:], strict=True):
        dead, live = dormant[producer], ~dormant[consumer]
        kernel, before = np.asarray(got[consumer]["kernel"]), np.asarray(old[consumer]["kernel"])
        reads = (slice(None), slice(None), dead) if kernel.ndim == 4 else (dead,)
        kept = (slice(None), slice(None), ~dead) if kernel.ndim == 4 else (~dead,)
        assert np.all(kernel[reads] == 0), (producer, consumer)
        np.testing.assert_array_equal(kernel[kept][..., live], before[kept][..., live])
    head = np.asarray(new["params"]["heads_0"]["Dense_0"]["kernel"])
    assert np.all(head[dormant["Dense_0"]] == 0)
    assert int(logged["interventions/redo/recycled"]) == sum(d.sum() for d in dormant.values())
