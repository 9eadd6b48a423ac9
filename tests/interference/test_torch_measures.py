"""The torch measures equal the JAX ones on the same weights (a MinAtar-style CNN), to 1e-5."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen import interference as jx
from tdgen.nets.factory import make_network

torch = pytest.importorskip("torch")
tt = pytest.importorskip("tdgen.interference.torch")

K, SIDE, CHANNELS, FILTERS, HIDDEN, ACTIONS = 8, 5, 2, 4, 16, 3
LAYERS = {"encoder/Conv_0": "1", "encoder/Dense_0": "4"}  # JAX path -> torch module path


def jax_setup(seed=0):
    net = make_network("minatar", "q", ACTIONS, channels=FILTERS, hidden_size=HIDDEN)
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    obs = jax.random.uniform(keys[0], (K, SIDE, SIDE, CHANNELS), minval=-1.0, maxval=1.0)
    variables = net.init(keys[1], obs)
    # non-zero biases so that some units die and greedy actions differ between states
    variables = jax.tree.map(
        lambda x: x + 0.3 * jax.random.normal(keys[2], x.shape) if x.ndim == 1 else x, variables
    )
    batch = {
        "obs": obs,
        "action": jax.random.randint(keys[3], (K,), 0, ACTIONS),
        "target": jax.random.normal(keys[4], (K,)),
    }
    return net, variables, batch


def to_torch(variables):
    p = jax.tree.map(np.array, variables["params"])
    side = SIDE - 2
    module = torch.nn.Sequential(
        torch.nn.Conv2d(CHANNELS, FILTERS, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(side * side * FILTERS, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, ACTIONS),
    )
    conv, dense, head = p["encoder"]["Conv_0"], p["encoder"]["Dense_0"], p["heads_0"]["Dense_0"]
    # flax flattens NHWC as (h, w, c); torch NCHW as (c, h, w)
    dense_kernel = dense["kernel"].reshape(side, side, FILTERS, HIDDEN).transpose(2, 0, 1, 3)
    with torch.no_grad():
        module[0].weight.copy_(torch.from_numpy(conv["kernel"].transpose(3, 2, 0, 1).copy()))
        module[0].bias.copy_(torch.from_numpy(conv["bias"]))
        module[3].weight.copy_(torch.from_numpy(dense_kernel.reshape(-1, HIDDEN).T.copy()))
        module[3].bias.copy_(torch.from_numpy(dense["bias"]))
        module[5].weight.copy_(torch.from_numpy(head["kernel"].T.copy()))
        module[5].bias.copy_(torch.from_numpy(head["bias"]))
    return module


def jax_loss(net):
    def loss_fn(params, t):
        return 0.5 * (net.apply(params, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    return loss_fn


def torch_batch(batch):
    return {
        "obs": torch.from_numpy(np.asarray(batch["obs"]).transpose(0, 3, 1, 2).copy()),
        "action": torch.from_numpy(np.asarray(batch["action"]).astype(np.int64)),
        "target": torch.from_numpy(np.array(batch["target"])),
    }


def torch_loss(module, t):  # indexing by a tensor: not vmappable, per-sample grads loop
    q = module(t["obs"][None])[0]
    return 0.5 * (q[t["action"]] - t["target"]) ** 2


def vmappable_loss(module, t):
    q = module(t["obs"][None])[0]
    return 0.5 * (q.gather(-1, t["action"][None])[0] - t["target"]) ** 2


def close(a, b, name):
    np.testing.assert_allclose(
        np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-5, atol=1e-5, err_msg=name
    )


def same_keys(jax_out, torch_out):
    for key, value in jax_out.items():
        tkey = key
        for jname, tname in LAYERS.items():
            tkey = tkey.replace(jname, tname)
        close(value, torch_out[tkey], key)


def test_unit_feature_and_parameter_measures_agree():
    net, variables, batch = jax_setup()
    module = to_torch(variables)
    tb = torch_batch(batch)
    np.testing.assert_allclose(
        module(tb["obs"]).detach().numpy(), net.apply(variables, batch["obs"]), atol=1e-5
    )
    acts = jx.capture_activations(net, variables, batch["obs"])
    tacts = tt.capture_activations(module, tb["obs"])
    assert list(tacts) == ["1", "4"]
    for fn in ("dormant_units", "active_units", "feature_statistics"):
        same_keys(getattr(jx, fn)(acts), getattr(tt, fn)(tacts))
    assert 0 < float(jx.dormant_units(acts)["dormant_0.1"]) < 1  # the comparison is not trivial
    close(jx.parameter_norms(variables)["param_norm"], tt.parameter_norms(module)["param_norm"], "")
    init = {n: p.detach() * 0.5 for n, p in module.named_parameters()}
    jinit = jax.tree.map(lambda x: x * 0.5, variables)
    jd, td = jx.distance_from_init(variables, jinit), tt.distance_from_init(module, init)
    for key in ("init_distance", "init_distance_relative"):
        close(jd[key], td[key], key)


def test_gradient_ntk_and_churn_measures_agree():
    net, variables, batch = jax_setup(seed=1)
    module = to_torch(variables)
    tb = torch_batch(batch)

    loss_fn = jax_loss(net)
    close(
        jx.gradient_norm(loss_fn, variables, batch)["grad_norm"],
        tt.gradient_norm(module, torch_loss, tb)["grad_norm"],
        "grad_norm",
    )
    Kj = jx.loss_ntk(loss_fn, variables, batch)
    Kt = tt.loss_ntk(module, vmappable_loss, tb, vectorize=True)
    looped = tt.loss_ntk(module, torch_loss, tb)  # falls back to the loop
    np.testing.assert_allclose(looped.numpy(), Kt.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="vmap"):
        tt.loss_ntk(module, torch_loss, tb, vectorize=True)
    np.testing.assert_allclose(Kt.numpy(), Kj, rtol=1e-4, atol=1e-5 * float(jnp.abs(Kj).max()))
    for fn in ("ntk_statistics", "gradient_noise"):
        same_keys(getattr(jx, fn)(Kj), getattr(tt, fn)(Kt))

    for make_j, make_t in [
        (lambda: optax.sgd(0.5), lambda p: torch.optim.SGD(p, lr=0.5)),
        (lambda: optax.adam(0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
    ]:
        opt = make_j()
        for head in ("value", "policy"):
            cj = jx.policy_churn(
                net.apply, variables, loss_fn, batch, opt, opt.init(variables), batch["obs"], head
            )
            ct = tt.policy_churn(
                module, make_t(module.parameters()), torch_loss, tb, tb["obs"], head
            )
            close(cj, ct, head)
    before = [p.detach().clone() for p in module.parameters()]
    tt.policy_churn(module, torch.optim.SGD(module.parameters(), lr=0.5), torch_loss, tb, tb["obs"])
    assert all(torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True))
    assert all(p.grad is None for p in module.parameters())


def test_torch_measures_on_a_zero_batch_and_bad_input():
    module = to_torch(jax_setup()[1])
    zeros = {
        "obs": torch.zeros(K, CHANNELS, SIDE, SIDE),
        "action": torch.zeros(K, dtype=torch.int64),
        "target": torch.zeros(K),
    }
    out = {}
    acts = tt.capture_activations(module, zeros["obs"])
    for fn in (tt.dormant_units, tt.active_units, tt.feature_statistics):
        out.update(fn(acts))
    Kmat = tt.loss_ntk(module, torch_loss, zeros)
    out.update(tt.ntk_statistics(Kmat))
    out.update(tt.gradient_noise(Kmat))
    out["churn"] = tt.policy_churn(
        module, torch.optim.SGD(module.parameters(), lr=0.1), torch_loss, zeros, zeros["obs"]
    )
    for name, value in out.items():
        assert bool(torch.isfinite(torch.as_tensor(value))) or name in {
            "grad_noise_scale",
            "grad_coherence",
        }, name
    with pytest.raises(ValueError, match="unknown layer '9'"):
        tt.capture_activations(module, zeros["obs"], layers=["9"])
    with pytest.raises(ValueError, match="no activation modules"):
        tt.capture_activations(torch.nn.Linear(3, 2), torch.zeros(2, 3))


def test_torch_probe_equals_the_jax_probe_on_the_same_weights():
    net, variables, batch = jax_setup(seed=2)
    module = to_torch(variables)
    tb = torch_batch(batch)

    loss_fn = jax_loss(net)
    measures = ("dormant", "active", "features", "stable_rank", "feature_rank", "param_norm",
                "grad_norm", "grad_noise", "loss_ntk", "churn", "hessian_max", "update_rank")  # fmt: skip
    opt = optax.sgd(0.1)
    jp = jx.Probe(net.apply, loss_fn, opt, model=net, measures=measures, center="none")
    tp = tt.Probe(module, torch.optim.SGD(module.parameters(), lr=0.1), vmappable_loss,
                  measures=measures, center="none")  # fmt: skip
    jout = jp(variables, opt.init(variables), batch)
    tout = tp(tb)
    for key, value in jout.items():
        if "/param_norm/" in key or "/grad_norm/" in key:  # layer names differ; totals compared
            continue
        tkey = key
        for jname, tname in LAYERS.items():
            tkey = tkey.replace(jname, tname)
        close(value, tout[tkey], key)
    assert set(tout) >= {"dynamics/dormant_0.025", "interference/update_rank",
                         "dynamics/feature_stable_rank/4", "dynamics/feature_rank/1",
                         "dynamics/hessian_max_eigenvalue"}  # fmt: skip
    with pytest.raises(ValueError, match="'output_ntk' has no torch version"):
        tt.Probe(module, torch.optim.SGD(module.parameters(), lr=0.1), torch_loss,
                 measures=("output_ntk",))  # fmt: skip
