"""The Probe on any JAX model style: a Flax NNX module (split into graphdef and state), a linen
module and a plain function of a dict give the same numbers for the same weights, with the
minimal call `Probe(apply_fn, loss_fn, optimizer)(params, opt_state, batch)`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from tdgen.interference import Probe
from tdgen.interference.traced_activations import capture_traced_activations

K = 10


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x))  # Dense_0 (modules are numbered as they are built)
        x = nn.relu(nn.Dense(8)(x))
        return nn.Dense(3)(x)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.linear1 = nnx.Linear(4, 16, rngs=rngs)
        self.linear2 = nnx.Linear(16, 8, rngs=rngs)
        self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.relu(self.linear2(nnx.relu(self.linear1(x)))))


def models():
    """The same weights three ways: linen variables, NNX state, a plain dict."""
    x = jax.random.normal(jax.random.PRNGKey(0), (K, 4))
    linen = LinenMLP()
    variables = linen.init(jax.random.PRNGKey(1), x)
    graphdef, state = nnx.split(NnxMLP(nnx.Rngs(0)))
    for dense, linear in zip(("Dense_0", "Dense_1", "Dense_2"), ("linear1", "linear2", "head"),
                             strict=True):  # fmt: skip
        state[linear]["kernel"].set_value(variables["params"][dense]["kernel"])
        state[linear]["bias"].set_value(variables["params"][dense]["bias"])

    def nnx_apply(s, obs):
        return nnx.merge(graphdef, s)(obs)

    plain = {f"w{i}": variables["params"][f"Dense_{i}"]["kernel"] for i in range(3)}

    def plain_apply(p, obs):
        return jnp.tanh(jnp.tanh(obs @ p["w0"]) @ p["w1"]) @ p["w2"]

    return x, (linen, linen.apply, variables), (nnx_apply, state), (plain_apply, plain)


def loss_of(apply_fn):
    def loss(params, t):
        return 0.5 * (apply_fn(params, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    return loss


def test_nnx_and_linen_give_the_same_measures_for_the_same_weights():
    x, (linen, linen_apply, variables), (nnx_apply, state), _ = models()
    batch = {"obs": x, "action": jnp.arange(K) % 3, "target": jnp.linspace(-1, 1, K)}
    opt = optax.adam(1e-3)
    measures = ("dormant", "active", "features", "stable_rank", "feature_rank", "param_norm",
                "grad_norm", "churn", "hessian_max", "update_rank")  # fmt: skip
    from_linen = Probe(linen_apply, loss_of(linen_apply), opt, model=linen,
                       measures=measures, center="none")(variables, opt.init(variables), batch)  # fmt: skip
    from_nnx = Probe(nnx_apply, loss_of(nnx_apply), opt, measures=measures,
                     center="none")(state, opt.init(state), batch)  # fmt: skip
    layers = {"Dense_0": "linear1", "Dense_1": "linear2"}
    compared = 0
    for key, value in from_linen.items():
        if "/param_norm/" in key or "/grad_norm/" in key:  # NNX names kernel and bias leaves
            continue
        nnx_key = key
        for linen_name, nnx_name in layers.items():
            nnx_key = nnx_key.replace(linen_name, nnx_name)
        np.testing.assert_allclose(from_nnx[nnx_key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        compared += 1
    assert compared >= 15 and "dynamics/feature_rank/linear2" in from_nnx


def test_the_minimal_call_works_on_a_plain_function_and_names_its_layers():
    x, (_, linen_apply, variables), _, (plain_apply, plain) = models()
    batch = {"obs": x, "action": jnp.arange(K) % 3, "target": jnp.zeros(K)}
    opt = optax.sgd(0.1)
    out = Probe(plain_apply, loss_of(plain_apply), opt, center="none")(
        plain, opt.init(plain), batch
    )
    assert {"dynamics/feature_srank/w0", "dynamics/feature_srank/w1"} <= set(out)
    acts = capture_traced_activations(plain_apply, plain, x)
    np.testing.assert_allclose(acts["w0"], jnp.tanh(x @ plain["w0"]), rtol=1e-6)
    head = capture_traced_activations(plain_apply, plain, x, layers=["w2"])["w2"]
    np.testing.assert_allclose(head, plain_apply(plain, x), rtol=1e-6)  # a head: its output
    with pytest.raises(ValueError, match="unknown layer 'w9'.*expected one of w0, w1, w2"):
        capture_traced_activations(plain_apply, plain, x, layers=["w9"])
    with pytest.raises(ValueError, match="name the layers to read with layers="):
        capture_traced_activations(lambda p, obs: obs @ p["w0"], plain, x)
