"""Interventions as config strings: parsed to their classes with typed settings, and every bad
input refused in one line naming the setting."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents.interventions import (
    INTERVENTIONS,
    KINDS,
    Context,
    InFeR,
    ReDo,
    ShrinkPerturb,
    parse_interventions,
)
from tdgen.agents.interventions.applied import Applied, network_options
from tdgen.agents.interventions.catalogue import catalogue_markdown, field_docs
from tdgen.agents.train import SEED_AXIS
from tdgen.errors import InputError
from tdgen.nets import make_network


def test_every_registered_intervention_has_a_kind_a_source_and_parses_by_name():
    for name, cls in INTERVENTIONS.items():
        assert cls.name == name and cls.kind in KINDS and cls.source, name
        (built,) = parse_interventions([name])
        assert built == cls()


def test_settings_take_their_fields_types():
    redo, snp, infer = parse_interventions(
        ["redo:tau=0.1,period=500", "shrink_perturb:lam=0.4,sigma=0.1,reset_optimizer=true",
         "infer:num_features=8"]
    )  # fmt: skip
    assert redo == ReDo(tau=0.1, period=500) and isinstance(redo.period, int)
    assert snp == ShrinkPerturb(lam=0.4, sigma=0.1, reset_optimizer=True)
    assert infer == InFeR(num_features=8) and isinstance(infer.num_features, int)


def test_network_options_combine_and_conflicts_are_refused():
    assert network_options(parse_interventions(["layer_norm", "normalize_project", "crelu"])) == {
        "norm": "layer",
        "activation": "crelu",
    }
    with pytest.raises(InputError, match="'crelu' and 'fourier' both set the network's activation"):
        parse_interventions(["crelu", "fourier"])


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["rdo"], "unknown intervention 'rdo': did you mean 'redo'"),
        (["redo:taus=1"], "did you mean 'tau'"),
        (["redo:period=0"], "redo period must be >= 1"),
        (["redo:period=1.5"], "period='1.5' is not an integer"),
        (["redo:tau=low"], "tau='low' is not a number"),
        (["shrink_perturb:reset_optimizer=yes"], "reset_optimizer='yes' is not true or false"),
        (["redo:tau=-0.1"], "redo tau must be >= 0"),
        (["reset:layers=0"], "reset layers must be >= 1"),
        (["reset:period=0"], "reset period must be >= 1"),
        (["shrink_perturb:sigma=-1"], "lam and sigma must be >= 0"),
        (["plasticity_injection:period=0"], "plasticity_injection period must be >= 1"),
        (["infer:num_heads=0"], "infer num_heads must be >= 1"),
        (["infer:alpha=-1"], "infer alpha must be >= 0"),
        (["infer:num_features=0"], "infer num_features must be >= 1"),
        (["parseval:lam=-1"], "parseval lam must be >= 0"),
        (["parseval:scale=0"], "parseval scale must be > 0"),
        (["trac:s_init=0"], "trac s_init and eps must be > 0"),
        (["weight_decay:wd=-1"], "weight_decay wd must be >= 0"),
        (["l2_init:lam=-1"], "l2_init lam must be >= 0"),
        (["redo:period"], "write settings as field=value"),
        (["trac:betas=1"], "cannot be set from the command line"),
        (["redo", "redo"], "'redo' is given twice"),
    ],
)
def test_bad_specs_are_one_line_input_errors(specs, message):
    with pytest.raises(InputError, match=message) as error:
        parse_interventions(specs)
    assert "\n" not in str(error.value)


def test_the_catalogue_page_is_generated_from_the_registry():
    page = Path(__file__).parents[3] / "docs" / "interventions" / "catalogue.md"
    # regenerate: python -m tdgen.agents.interventions.catalogue docs/interventions/catalogue.md
    assert page.read_text() == catalogue_markdown()
    for cls in INTERVENTIONS.values():  # every setting explains itself
        assert set(field_docs(cls)) == {f.name for f in dataclasses.fields(cls)}


def test_an_event_in_a_vmapped_seed_group_stays_a_branch_and_fires_as_alone():
    net = make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1)
    obs = jax.random.normal(jax.random.PRNGKey(1), (16, 5))
    applied = Applied.bind(
        parse_interventions(["redo:tau=0.5,period=2"]), Context.of(net, obs, optax.adam(1e-3))
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    params, memory = jax.vmap(applied.init)(keys)
    opt_state = jax.vmap(applied.optimizer.init)(params)

    def step(p, s, m, key, updates):
        return applied.after_update(p, s, m, key, obs, updates)

    args = (params, opt_state, memory, keys, jnp.array([2, 2]))
    group = jax.vmap(step, axis_name=SEED_AXIS)
    # vmap without the seed axis turns the cond into a select that runs the event every update
    assert "cond[" in str(jax.make_jaxpr(group)(*args))
    assert "cond[" not in str(jax.make_jaxpr(jax.vmap(step))(*args))
    for updates, fires in ((2, True), (3, False)):
        out = group(*args[:4], jnp.array([updates, updates]))
        for i in range(2):
            alone = step(*jax.tree.map(lambda x, i=i: x[i], args[:4]), jnp.int32(updates))
            jax.tree.map(
                lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-6), out, alone
            )
        assert (out[3]["interventions/redo/recycled"] > 0).all() == fires


def test_redo_refuses_an_activation_with_two_outputs_per_unit():
    for activation in ("crelu", "fourier"):
        net = make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1, activation=activation)
        with pytest.raises(InputError, match=f"leave out redo or {activation}"):
            ReDo().check(net)
    ReDo().check(make_network("mlp", "q", 3, hidden_sizes=(8, 8), obs_ndim=1))
