"""The Probe gives the measures' own values: eagerly, jitted, on a schedule in a lax.scan, and
through io_callback to the host."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.interference import (
    Probe,
    capture_activations,
    dormant_units,
    loss_ntk,
    ntk_statistics,
    policy_churn,
    update_matrix,
    update_rank,
)
from tdgen.interference.probe import DEFAULT_MEASURES
from tdgen.nets.factory import make_network

K = 6


def setup():
    net = make_network("mlp", "q", 3, hidden_sizes=(8, 8))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    batch = {
        "obs": jax.random.normal(keys[0], (K, 5)),
        "action": jax.random.randint(keys[1], (K,), 0, 3),
        "target": jax.random.normal(keys[2], (K,)),
    }
    params = net.init(keys[3], batch["obs"])

    def loss_fn(p, t):
        return 0.5 * (net.apply(p, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    opt = optax.adam(1e-2)
    return net, params, batch, loss_fn, opt, opt.init(params)


def test_probe_values_are_the_measures_values():
    net, params, batch, loss_fn, opt, state = setup()
    probe = Probe(net.apply, loss_fn, opt, model=net, center="none",
                  measures=(*DEFAULT_MEASURES, "init_distance", "update_rank_drift"))  # fmt: skip
    out = probe(params, state, batch, init_params=params)
    acts = capture_activations(net, params, batch["obs"])
    assert float(out["dynamics/dormant_0.1"]) == float(dormant_units(acts)["dormant_0.1"])
    assert "dynamics/feature_srank/encoder/Dense_1" in out
    np.testing.assert_allclose(
        out["dynamics/loss_ntk/diagonal_mean"],
        ntk_statistics(loss_ntk(loss_fn, params, batch))["diagonal_mean"],
        rtol=1e-6,
    )
    churn = policy_churn(net.apply, params, loss_fn, batch, opt, state, batch["obs"])
    assert float(out["dynamics/churn"]) == float(churn)
    A = update_matrix(net.apply, params, loss_fn, batch, opt, state)
    drift = update_matrix(net.apply, params, loss_fn, batch, opt, state, center="drift")
    assert int(out["interference/update_rank"]) == int(update_rank(A))
    assert int(out["interference/update_rank_drift"]) == int(update_rank(drift))
    assert float(out["dynamics/init_distance"]) == 0.0
    jitted = probe.jitted(params, state, batch, init_params=params)
    assert set(jitted) == set(out)
    for name, value in out.items():
        np.testing.assert_allclose(jitted[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    mats = probe.matrices(params, state, batch)
    np.testing.assert_allclose(mats["update_matrix"], A, rtol=1e-6)
    assert mats["output_ntk"].shape == (K, K)


def test_probe_on_a_schedule_inside_a_scan_and_through_io_callback():
    net, params, batch, loss_fn, opt, state = setup()
    probe = Probe(net.apply, loss_fn, opt, model=net, measures=("dormant", "grad_norm", "churn"),
                  center="none")  # fmt: skip
    seen = {}

    def record(step, metrics):
        seen[int(step)] = {k: float(v) for k, v in metrics.items()}

    def body(carry, step):
        p, s = carry
        metrics = probe.on_schedule(step, 2, p, s, batch)
        probe.log_from_scan(step, 2, record, p, s, batch)
        grads = jax.grad(lambda q: jnp.mean(jax.vmap(loss_fn, (None, 0))(q, batch)))(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), (metrics, p)

    (_, _), (metrics, trajectory) = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(5)))(
        params, state
    )
    jax.effects_barrier()
    assert sorted(seen) == [0, 2, 4]
    assert np.isnan(metrics["dynamics/churn"][1]) and np.isnan(metrics["dynamics/churn"][3])
    p2 = jax.tree.map(lambda x: x[2], trajectory)  # the parameters the probe saw at step 2
    expected = float(probe(p2, state, batch)["dynamics/grad_norm"])  # grad_norm needs no state
    assert metrics["dynamics/grad_norm"][2] == pytest.approx(expected, rel=1e-5)
    assert seen[2]["dynamics/grad_norm"] == pytest.approx(expected, rel=1e-5)


def test_probe_refuses_what_it_cannot_measure():
    net, params, batch, loss_fn, opt, state = setup()
    with pytest.raises(ValueError, match="unknown measure 'dormnt': did you mean 'dormant'"):
        Probe(net.apply, loss_fn, opt, model=net, measures=("dormnt",), center="none")
    # without model=, the activations come from apply_fn's traced computation: the same layers
    minimal = Probe(net.apply, loss_fn, opt, center="none")(params, state, batch)
    with_model = Probe(net.apply, loss_fn, opt, model=net, center="none")(params, state, batch)
    assert set(minimal) == set(with_model)
    for key, value in with_model.items():
        np.testing.assert_allclose(minimal[key], value, rtol=1e-6, err_msg=key)
    probe = Probe(net.apply, loss_fn, opt, measures=("param_norm", "init_distance"), center="none")
    with pytest.raises(ValueError, match="needs init_params="):
        probe(params, state, batch)
