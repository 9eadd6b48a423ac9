"""Shrink-and-perturb, plasticity injection and Normalize-and-Project as pure functions, and every
event under jax.jit and jax.vmap over seeds."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents.interventions.base import Context
from tdgen.agents.interventions.normalize_project import NormalizeProject, projected_norms
from tdgen.agents.interventions.plasticity_injection import (
    PlasticityInjection,
    injected_apply,
)
from tdgen.agents.interventions.redo import ReDo
from tdgen.agents.interventions.reset import Reset
from tdgen.agents.interventions.shrink_perturb import ShrinkPerturb
from tdgen.errors import InputError
from tdgen.nets import make_network

OBS = jax.random.normal(jax.random.key(7), (16, 5))
MINATAR_OBS = (jax.random.uniform(jax.random.key(3), (8, 10, 10, 2)) < 0.3).astype(jnp.float32)


def context(net, obs, optimizer=None):
    return Context.of(net, obs, optimizer or optax.adam(1e-3))


def loss(apply, params, obs):
    return sum(jnp.mean((o - 1.0) ** 2) for o in jax.tree.leaves(apply(params, obs)))


def train(ctx, params, state, obs, steps, apply=None, after_step=None):
    """``steps`` jitted optimiser steps on a regression of every output towards 1."""
    apply = apply or ctx.apply

    def step(_, carry):
        params, state = carry
        grads = jax.grad(lambda p: loss(apply, p, obs))(params)
        updates, state = ctx.optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (after_step(params) if after_step else params), state

    return jax.jit(lambda p, s: jax.lax.fori_loop(0, steps, step, (p, s)))(params, state)


def started(net, obs, seed=0):
    """A context, fresh parameters and an optimiser state with non-zero moments."""
    ctx = context(net, obs)
    params = jax.jit(ctx.init_params)(jax.random.key(seed))
    state = ctx.optimizer.init(params)
    noise = jax.random.uniform(jax.random.key(seed + 100), (), minval=0.5, maxval=1.0)
    return ctx, params, jax.tree.map(lambda x: x + noise if x.dtype == jnp.float32 else x, state)


def assert_trees_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_shrink_perturb_with_lambda_1_and_sigma_0_is_the_identity_bit_for_bit():
    ctx, params, state = started(make_network("minatar", "q", 3, channels=4, hidden_size=8),
                                 MINATAR_OBS)  # fmt: skip
    identity = ShrinkPerturb(lam=1.0, sigma=0.0)
    run = jax.jit(lambda p, s, k: identity.fire(p, s, None, k, MINATAR_OBS, ctx))
    new, new_state, _, _ = run(params, state, jax.random.key(1))
    assert_trees_equal(new, params)
    assert_trees_equal(new_state, state)
    key = jax.random.key(2)
    sp = ShrinkPerturb.warm_start(period=10)
    new, new_state, _, _ = sp.fire(params, state, None, key, MINATAR_OBS, ctx)
    expected = jax.tree.map(lambda p, f: 0.4 * p + 0.1 * f, params, ctx.init_params(key))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new, expected)
    assert all(not np.any(m) for m in jax.tree.leaves(new_state[0].mu))  # fresh optimiser


def test_injection_keeps_the_outputs_and_then_only_the_new_head_trains():
    net = make_network("mlp", "q+value", 3, hidden_sizes=(8, 8), obs_ndim=1)
    ctx, params, state = started(net, OBS)
    pi = PlasticityInjection(period=4)
    memory = pi.init_memory(params, jax.random.key(0), ctx)
    before = injected_apply(ctx, params, memory, OBS)
    assert_trees_equal(before, ctx.apply(params, OBS))  # no injection yet: the plain network

    run = jax.jit(lambda p, s, m, k: pi.fire(p, s, m, k, OBS, ctx))
    new, new_state, memory, logged = run(params, state, memory, jax.random.key(1))
    assert int(logged["interventions/plasticity_injection/injected"]) == 1
    after = injected_apply(ctx, new, memory, OBS)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), after, before)
    fresh = ctx.init_params(jax.random.key(1))["params"]
    for name in new["params"]:
        if name != "encoder":  # the trainable head is fresh, the old one frozen in memory
            assert_trees_equal(new["params"][name], fresh[name])
            assert_trees_equal(memory["frozen_heads"][name], fresh[name])
            assert_trees_equal(memory["old_heads"][name], params["params"][name])
            assert all(not np.any(m) for m in jax.tree.leaves(new_state[0].mu["params"][name]))
    assert_trees_equal(new["params"]["encoder"], params["params"]["encoder"])

    apply = lambda p, o: injected_apply(ctx, p, memory, o)  # noqa: E731

    def loss_of_memory(m):
        return loss(lambda p, o: injected_apply(ctx, p, m, o), new, OBS)

    memory_grad = jax.jit(jax.grad(loss_of_memory))(memory | {"injected": jnp.zeros(())})
    assert all(not np.any(g) for g in jax.tree.leaves(memory_grad))  # the frozen parts are frozen
    head_grad = jax.jit(jax.grad(lambda p: loss(apply, p, OBS)))(new)["params"]
    features = ctx.features(new, OBS)
    heads = {k: v for k, v in new["params"].items() if k != "encoder"}

    def eq1(heads):  # Eq. 1 written out: old + new - frozen, three affine heads on phi(x)
        def dense(p):
            return features @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]

        return sum(
            jnp.mean((dense(memory["old_heads"][k]) + dense(h) - dense(memory["frozen_heads"][k])
                      - 1.0) ** 2)
            for k, h in heads.items()
        )  # fmt: skip

    direct = jax.jit(jax.grad(eq1))(heads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 {k: head_grad[k] for k in direct}, direct)  # fmt: skip
    trained, _ = train(ctx, new, new_state, OBS, steps=3, apply=apply)
    for name in trained["params"]:
        changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), trained["params"][name],
                               new["params"][name])  # fmt: skip
        assert all(jax.tree.leaves(changed)), name  # the encoder and the new head learn

    again = run(new, new_state, memory, jax.random.key(2))  # fires again: injects only once
    assert_trees_equal(again[:3], (new, new_state, memory))
    assert int(again[3]["interventions/plasticity_injection/injected"]) == 0


class NormalisedMLP(nn.Module):
    """Dense -> LayerNorm -> relu twice, then a linear head (written out, flax's LayerNorm)."""

    @nn.compact
    def __call__(self, x):
        for width in (16, 16):
            x = nn.relu(nn.LayerNorm()(nn.Dense(width)(x)))
        return nn.Dense(3)(x)


def test_normalize_project_keeps_each_normalised_layers_norm_after_arbitrary_updates():
    assert NormalizeProject().network_options() == {"norm": "layer"}
    minatar = make_network("minatar", "q", 3, channels=4, hidden_size=8, norm="layer")
    npj = NormalizeProject()
    for net, obs in ((NormalisedMLP(), OBS), (minatar, MINATAR_OBS)):
        ctx = context(net, obs, optax.adam(0.1))  # large steps: the norms would drift
        params = ctx.init_params(jax.random.key(0))
        memory = npj.init_memory(params, jax.random.key(0), ctx)
        project = functools.partial(npj.after_step, memory=memory)
        initial = projected_norms(params, memory)
        assert len(initial) == 2 and not any("head" in name for name in initial)
        raw, _ = train(ctx, params, ctx.optimizer.init(params), obs, steps=5)
        projected, _ = train(ctx, params, ctx.optimizer.init(params), obs, steps=5,
                             after_step=project)  # fmt: skip
        drift = [abs(float(projected_norms(raw, memory)[k] / initial[k]) - 1) for k in initial]
        assert max(drift) > 0.01  # without the projection the norms move
        for name, norm in projected_norms(projected, memory).items():
            np.testing.assert_allclose(norm, initial[name], rtol=1e-5)
        flat = jax.tree_util.tree_leaves_with_path(projected["params"])
        untouched = [path for path, _ in flat if "kernel" not in str(path[-1])
                     or not any(str(p.key) in str(initial) for p in path[:-1])]  # fmt: skip
        assert untouched  # biases, LayerNorm scales and the head are left to the optimiser
    with pytest.raises(InputError, match="norm='layer'"):
        plain = make_network("mlp", "q", 3, hidden_sizes=(8, 8))
        npj.init_memory(plain.init(jax.random.key(0), OBS[:1]), jax.random.key(0),
                        context(plain, OBS))  # fmt: skip


EVENTS = [
    (ReDo(tau=0.1), "minatar"),
    (Reset(layers=2), "mlp"),
    (ShrinkPerturb(lam=0.5, sigma=0.5, reset_optimizer=True), "minatar"),
    (PlasticityInjection(period=1), "mlp"),
]


@pytest.mark.parametrize("event,encoder", EVENTS, ids=lambda e: getattr(e, "name", e))
def test_every_event_fires_under_jit_and_under_vmap_over_seeds(event, encoder):
    if encoder == "mlp":
        net, obs = make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1), OBS
    else:
        net, obs = make_network("minatar", "q", 3, channels=4, hidden_size=8), MINATAR_OBS
    ctx = context(net, obs)
    seeds = [started(net, obs, seed)[1:] for seed in (0, 1)]
    memories = [event.init_memory(p, jax.random.key(0), ctx) for p, _ in seeds]
    keys = jax.random.split(jax.random.key(5), 2)

    def fire(p, s, m, k):
        return event.fire(p, s, m, k, obs, ctx)

    one = [jax.jit(fire)(p, s, m, k) for (p, s), m, k in zip(seeds, memories, keys, strict=True)]
    stack = lambda *xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    params, states = stack(*[p for p, _ in seeds]), stack(*[s for _, s in seeds])
    batched = jax.jit(jax.vmap(fire))(params, states, stack(*memories), keys)
    for i in (0, 1):
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-6),
                     batched, one[i])  # fmt: skip


def test_the_projection_runs_under_jit_and_vmap_over_seeds():
    net = make_network("mlp", "q", 3, hidden_sizes=(8, 8), norm="layer")
    ctx = context(net, OBS)
    npj = NormalizeProject()
    params = [ctx.init_params(jax.random.key(s)) for s in (0, 1)]
    memory = [npj.init_memory(p, jax.random.key(0), ctx) for p in params]
    moved = [jax.tree.map(lambda x: 3.0 * x, p) for p in params]
    stack = lambda *xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    batched = jax.jit(jax.vmap(npj.after_step))(stack(*moved), stack(*memory))
    for i in (0, 1):
        one = jax.jit(npj.after_step)(moved[i], memory[i])
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-6), batched, one)
        for name, norm in projected_norms(one, memory[i]).items():
            np.testing.assert_allclose(norm, projected_norms(params[i], memory[i])[name], rtol=1e-5)
