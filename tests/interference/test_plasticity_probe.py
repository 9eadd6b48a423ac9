"""The plasticity probe of Lyle et al. 2023 (`tdgen.interference.plasticity`, the table's
"plasticity" row): fitting fresh random targets from a copy of the parameters. A network whose
ReLU units are all dead fits them far worse than a fresh one of the same shape (the claim the
measure exists for); the probe changes nothing, is a function of its key, and its torch twin
gives the JAX number on the same weights and targets."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.errors import InputError
from tdgen.interference import Probe
from tdgen.interference.plasticity import fit_loss, plasticity_probe_loss, probe_targets

M, IN, HIDDEN, OUT = 32, 4, 64, 3
STEPS, TARGETS, LR = 100, 3, 1e-2
KEY = "dynamics/plasticity_probe_loss"


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(OUT, name="out")(nn.relu(nn.Dense(HIDDEN, name="hidden")(x)))


NET = MLP()
OBS = jax.random.normal(jax.random.PRNGKey(0), (M, IN))


def init_fn(key):
    return NET.init(key, OBS[:1])


def killed(params):
    """Every hidden ReLU unit dead on every input: its bias far below any pre-activation."""
    hidden = {**params["params"]["hidden"], "bias": params["params"]["hidden"]["bias"] - 100.0}
    return {"params": {**params["params"], "hidden": hidden}}


@functools.cache
def probe_loss():
    """The probe of the tests' budget, jitted once: (params, key) -> loss."""
    return jax.jit(lambda p, k: plasticity_probe_loss(NET.apply, p, OBS, k, init_fn,
                                                      optax.adam(LR), STEPS, TARGETS))  # fmt: skip


def mse(params, targets):
    return jnp.mean((NET.apply(params, OBS) - targets) ** 2)


def test_a_network_with_dead_units_fits_random_targets_worse_than_a_fresh_one():
    key = jax.random.PRNGKey(2)
    fresh = init_fn(jax.random.PRNGKey(1))
    dead = killed(fresh)
    assert float(jnp.abs(jax.nn.relu(OBS @ dead["params"]["hidden"]["kernel"]
                                     + dead["params"]["hidden"]["bias"])).max()) == 0.0  # fmt: skip
    fresh_loss, dead_loss = float(probe_loss()(fresh, key)), float(probe_loss()(dead, key))
    # the dead network can only move its output bias: it is left with the targets' variance
    # (about 1/2 for a + sin), while the fresh one fits most of it
    assert 0.3 < dead_loss < 0.7, dead_loss
    assert fresh_loss < 0.25 * dead_loss, (fresh_loss, dead_loss)
    # the claim can fail: training the fresh network on its own targets for the budget makes
    # it fit them, so a probe that returned the loss before training would not pass above
    goal = probe_targets(NET.apply, fresh, init_fn(jax.random.split(key, TARGETS)[0]), OBS)
    assert float(mse(fresh, goal)) > 2 * fresh_loss


def test_the_probe_changes_nothing_uses_a_fresh_optimiser_state_and_is_a_function_of_its_key():
    params = init_fn(jax.random.PRNGKey(1))
    opt = optax.adam(LR)
    warm = opt.init(params)
    for i in range(3):  # moments of other data, which the probe must not inherit
        grads = jax.grad(lambda p, i=i: mse(p, jnp.full((M, OUT), float(i))))(params)
        warm = opt.update(grads, warm, params)[1]
    before = jax.tree.map(np.array, (params, warm))
    probe = Probe(NET.apply, lambda p, t: 0.0, opt, measures=("plasticity",), center="none",
                  plasticity_steps=STEPS, plasticity_targets=TARGETS, init_fn=init_fn)  # fmt: skip
    batch = {"obs": OBS}
    key = jax.random.PRNGKey(7)
    first = float(probe.jitted(params, warm, batch, key=key)[KEY])
    jax.tree.map(np.testing.assert_array_equal, (params, warm), before)
    assert float(probe.jitted(params, opt.init(params), batch, key=key)[KEY]) == first
    assert float(probe.jitted(params, warm, batch, key=key)[KEY]) == first
    assert first == pytest.approx(float(probe_loss()(params, key)), rel=1e-6)
    assert float(probe.jitted(params, warm, batch, key=jax.random.PRNGKey(8))[KEY]) != first
    # a linen model initialises the targets itself (init_fn is then not needed); without a key
    # the targets are those of PRNGKey(plasticity_seed)
    linen = Probe(NET.apply, lambda p, t: 0.0, opt, model=NET, measures=("plasticity",),
                  center="none", plasticity_steps=STEPS, plasticity_targets=TARGETS,
                  plasticity_seed=5)  # fmt: skip
    default = float(linen.jitted(params, warm, batch)[KEY])
    assert default == pytest.approx(float(probe_loss()(params, jax.random.PRNGKey(5))), rel=1e-6)


def test_the_probe_says_what_it_needs():
    opt = optax.sgd(0.1)
    with pytest.raises(InputError, match="needs init_fn="):
        Probe(NET.apply, lambda p, t: 0.0, opt, measures=("plasticity",), center="none")
    with pytest.raises(InputError, match="plasticity_steps must be a positive integer"):
        Probe(NET.apply, lambda p, t: 0.0, opt, measures=("plasticity",), center="none",
              init_fn=init_fn, plasticity_steps=0)  # fmt: skip
    with pytest.raises(InputError, match="plasticity_targets must be a positive integer"):
        plasticity_probe_loss(NET.apply, {}, OBS, jax.random.PRNGKey(0), init_fn, opt, 10, 0)


def to_torch(params):
    torch = pytest.importorskip("torch")
    p = jax.tree.map(np.array, params["params"])
    module = torch.nn.Sequential(
        torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT)
    )
    with torch.no_grad():
        for layer, name in ((module[0], "hidden"), (module[2], "out")):
            layer.weight.copy_(torch.from_numpy(p[name]["kernel"].T.copy()))
            layer.bias.copy_(torch.from_numpy(p[name]["bias"]))
    return module


@pytest.mark.parametrize("optimizers", ["adam", "sgd"])
def test_the_torch_twin_fits_the_same_targets_to_the_same_loss(optimizers):
    torch = pytest.importorskip("torch")
    tp = pytest.importorskip("tdgen.interference.torch.plasticity")
    params, other = init_fn(jax.random.PRNGKey(1)), init_fn(jax.random.PRNGKey(3))
    module, target_module, obs = to_torch(params), to_torch(other), torch.from_numpy(np.array(OBS))
    # the targets' formula, at frequency 1 (at 10^5 the last bits of f decide the sine)
    want = probe_targets(NET.apply, params, other, OBS, frequency=1.0)
    got = tp.probe_targets(module, target_module, obs, frequency=1.0)
    np.testing.assert_allclose(got.numpy(), np.asarray(want), atol=1e-5)
    goal = probe_targets(NET.apply, params, other, OBS)  # the same targets on both sides
    jax_opt, torch_opt = {
        "adam": (optax.adam(LR), torch.optim.Adam(module.parameters(), lr=LR)),
        "sgd": (optax.sgd(0.1), torch.optim.SGD(module.parameters(), lr=0.1)),
    }[optimizers]
    want = float(fit_loss(NET.apply, params, OBS, goal, jax_opt, 50))
    state = {k: v.clone() for k, v in module.state_dict().items()}
    got = float(tp.fit_loss(module, torch_opt, obs, torch.from_numpy(np.array(goal)), 50))
    assert got == pytest.approx(want, abs=1e-4, rel=1e-4)
    assert want < 0.9 * float(mse(params, goal))  # it did train
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.items())
    assert not torch_opt.state  # the optimiser given is untouched


def test_the_torch_probe_logs_the_key_changes_nothing_and_tells_dead_from_fresh():
    torch = pytest.importorskip("torch")
    tt = pytest.importorskip("tdgen.interference.torch")
    batch = {"obs": torch.from_numpy(np.array(OBS)), "action": torch.zeros(M, dtype=torch.int64)}

    def loss(module, t):
        return module(t["obs"][None])[0, t["action"]] ** 2

    def probe(module, seed=0):
        opt = torch.optim.Adam(module.parameters(), lr=LR)
        state = {k: v.clone() for k, v in module.state_dict().items()}
        rng = torch.random.get_rng_state()
        out = tt.Probe(module, opt, loss, measures=("plasticity",), center="none",
                       plasticity_steps=STEPS, plasticity_targets=1,
                       plasticity_seed=seed)(batch)  # fmt: skip
        assert set(out) == {KEY}
        assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.items())
        assert torch.equal(rng, torch.random.get_rng_state()) and not opt.state
        return out[KEY]

    fresh = to_torch(init_fn(jax.random.PRNGKey(1)))
    dead = to_torch(killed(init_fn(jax.random.PRNGKey(1))))
    value = probe(fresh)
    assert probe(fresh) == value != probe(fresh, seed=1)  # a function of the seed
    dead_value = probe(dead)
    assert 0.3 < dead_value < 0.7 and value < 0.25 * dead_value, (value, dead_value)
