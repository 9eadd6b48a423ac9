"""Every measure on a zero batch (all-zero observations and targets) is finite, or NaN where its
docstring says the quantity is undefined."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen.interference import (
    active_units,
    capture_activations,
    distance_from_init,
    dormant_units,
    feature_statistics,
    gradient_gram,
    gradient_noise,
    gradient_norm,
    loss_ntk,
    ntk_statistics,
    parameter_norms,
    policy_churn,
)
from tdgen.nets.factory import make_network

UNDEFINED_ON_ZERO_GRADIENTS = {"grad_noise_scale", "grad_coherence"}


def test_every_measure_on_a_zero_batch():
    net = make_network("minatar", "q", 3)
    obs = jnp.zeros((4, 10, 10, 4))
    batch = {"obs": obs, "action": jnp.zeros(4, jnp.int32), "target": jnp.zeros(4)}
    variables = net.init(jax.random.PRNGKey(0), obs)  # zero biases: every output is 0

    def loss_fn(params, t):
        return 0.5 * (net.apply(params, t["obs"][None])[0, t["action"]] - t["target"]) ** 2

    acts = capture_activations(net, variables, obs)
    out = {}
    out.update(dormant_units(acts))
    out.update(active_units(acts))
    out.update(feature_statistics(acts))
    out.update(parameter_norms(variables))
    out.update(distance_from_init(variables, variables))
    out.update(gradient_norm(loss_fn, variables, batch))
    Kmat = loss_ntk(loss_fn, variables, batch)
    out.update({f"ntk/{k}": v for k, v in ntk_statistics(Kmat).items()})
    out.update(gradient_noise(Kmat))
    out.update(
        {
            f"out_ntk/{k}": v
            for k, v in ntk_statistics(gradient_gram(net.apply, variables, batch)).items()
        }
    )
    opt = optax.adam(1e-3)
    out["churn"] = policy_churn(net.apply, variables, loss_fn, batch, opt, opt.init(variables), obs)

    for name, value in out.items():
        finite = bool(np.isfinite(np.asarray(value)))
        assert finite or name in UNDEFINED_ON_ZERO_GRADIENTS, name
    assert float(out["dormant_0"]) == 1.0 and float(out["active"]) == 0.0  # all units zero
    assert int(out["feature_srank/encoder/Dense_0"]) == 0
    assert float(out["grad_norm"]) == 0.0 and int(out["ntk/rank_0"]) == 0
    assert np.isnan(out["grad_noise_scale"]) and np.isnan(out["grad_coherence"])
    assert float(out["churn"]) == 0.0
