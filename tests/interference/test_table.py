"""The table of measures drives both Probes, the agents' choices and the glossary; the measures it
added have closed forms: stable rank, InFeR's feature rank, the Hessian's top eigenvalue."""

import ast
import re
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents.probes import VALUE, Draw, ProbeTarget, ProbeView, make_probe
from tdgen.interference import (
    Probe,
    feature_rank,
    hessian_max_eigenvalue,
    stable_rank,
)
from tdgen.interference.suite import JAX_MEASURES
from tdgen.interference.table import (
    AGENT_DEFAULT_MEASURES,
    MEASURES,
    MEASURES_TABLE,
    TORCH_MEASURES,
    glossary_markdown,
)
from tdgen.runs.config import DEFAULT_PROBE_MEASURES, PROBE_MEASURES, probe_measures

ROOT = Path(__file__).parents[2]


def test_every_row_has_its_jax_function_and_torch_twin_or_a_reason():
    assert set(JAX_MEASURES) == set(MEASURES)
    assert all(m.torch or m.torch_reason for m in MEASURES_TABLE)
    pytest.importorskip("torch")
    from tdgen.interference.torch.probe import TORCH_MEASURES as TWINS

    assert set(TWINS) == set(TORCH_MEASURES)


def test_the_table_is_plain_data_and_derives_the_agents_choices_and_the_glossary():
    source = (ROOT / "src" / "tdgen" / "interference" / "table.py").read_text()
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name.split(".")[0] in {"jax", "torch", "tdgen"}}
    assert ",".join(AGENT_DEFAULT_MEASURES) == DEFAULT_PROBE_MEASURES
    assert "hessian_max" in PROBE_MEASURES and "update_rank" not in PROBE_MEASURES
    with pytest.raises(ValueError, match="did you mean 'stable_rank'"):
        probe_measures("stable_rnk")
    # docs/glossary.md is the generated page: regenerate it with glossary_markdown()
    assert (ROOT / "docs" / "glossary.md").read_text() == glossary_markdown()
    assert "dormant_0.025/{layer}" in glossary_markdown() and "Plasticine" in glossary_markdown()
    page = glossary_markdown().splitlines()
    rows = [line for line in page if line.startswith("| `")]
    assert len(rows) == len(MEASURES_TABLE)  # one row each, 4 cells (a "|" in a cell escaped)
    assert all(len(re.split(r"(?<!\\)\|", row.strip())) - 2 == 4 for row in rows), rows
    for m in MEASURES_TABLE:  # and a section each, with its definition, threshold and source
        at = page.index(f"## `{m.name}`")
        assert page[at + 2] == m.definition and f"- **Source:** {m.source}" in page[at : at + 9]


def test_stable_rank_and_feature_rank_have_their_closed_forms():
    phi = jnp.diag(jnp.array([3.0, 2.0, 1.0]))
    assert float(stable_rank(phi)) == pytest.approx((9 + 4 + 1) / 9)
    assert float(stable_rank(jnp.ones((4, 3)))) == pytest.approx(1.0)  # rank one
    assert float(stable_rank(jnp.zeros((4, 3)))) == 0.0
    n = 4  # singular values of Phi / sqrt(n) are 1, 0.02, 0.005: two above eps = 0.01
    phi = jnp.sqrt(n) * jnp.zeros((n, 3)).at[:3, :3].set(jnp.diag(jnp.array([1.0, 0.02, 0.005])))
    assert int(feature_rank(phi)) == 2
    assert int(feature_rank(phi, eps=0.001)) == 3
    with pytest.raises(ValueError, match="eps must be positive"):
        feature_rank(phi, eps=0.0)


def quadratic(eigenvalues, seed=0):
    """loss(theta, t) = theta^T A theta / 2 for every transition: Hessian A, of these eigenvalues."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    A = jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)
    return (lambda theta, t: 0.5 * theta @ A @ theta), {"obs": jnp.zeros((3, 1))}


def test_the_hessians_top_eigenvalue_of_a_quadratic_is_its_largest_in_magnitude():
    loss, batch = quadratic([5.0, 2.0, -1.0, 0.5])
    theta = jnp.ones(4)
    assert float(hessian_max_eigenvalue(loss, theta, batch, iterations=60)) == pytest.approx(
        5.0, rel=1e-5
    )
    loss, batch = quadratic([1.0, -3.0, 0.2])  # power iteration finds the largest magnitude
    assert float(hessian_max_eigenvalue(loss, theta[:3], batch, iterations=60)) == pytest.approx(
        -3.0, rel=1e-5
    )
    with pytest.raises(ValueError, match="positive integer"):
        hessian_max_eigenvalue(loss, theta[:3], batch, iterations=0)


def test_a_td_losss_hessian_holds_the_bootstrapped_target_fixed():
    """Linear Q with a stop-gradient TD target: the loss the optimiser sees has Hessian
    mean_i phi_i phi_i^T (the target's dependence on w is not differentiated)."""
    rng = np.random.default_rng(1)
    phi, phi_next = rng.standard_normal((16, 5)), rng.standard_normal((16, 5))
    batch = {"phi": jnp.asarray(phi, jnp.float32), "next": jnp.asarray(phi_next, jnp.float32),
             "reward": jnp.asarray(rng.standard_normal(16), jnp.float32)}  # fmt: skip

    def td_loss(w, t):
        target = jax.lax.stop_gradient(t["reward"] + 0.9 * t["next"] @ w)
        return 0.5 * (t["phi"] @ w - target) ** 2

    want = np.linalg.eigvalsh(phi.T @ phi / 16).max()
    got = hessian_max_eigenvalue(td_loss, jnp.ones(5), batch, iterations=200)
    assert float(got) == pytest.approx(want, rel=1e-4)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(16)(x)))


def mlp_problem():
    """The MLP, a batch of 12 transitions, its parameters, a per-transition loss and SGD."""
    net = MLP()
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batch = {"obs": jax.random.normal(keys[0], (12, 4)),
             "action": jax.random.randint(keys[1], (12,), 0, 3)}  # fmt: skip
    params = net.init(keys[2], batch["obs"])

    def loss(p, t):
        return 0.5 * net.apply(p, t["obs"][None])[0, t["action"]] ** 2

    return net, batch, params, loss, optax.sgd(0.1)


def test_agents_log_the_new_measures_as_the_probe_computes_them():
    net, batch, params, loss, opt = mlp_problem()
    state = opt.init(params)
    new = ("stable_rank", "feature_rank", "hessian_max")
    probe = make_probe(
        {VALUE: ProbeTarget(net.apply, loss, opt, reduce="max", model=net)},
        lambda *_: Draw(batch, batch, params, state, jnp.arange(12)),
        center="none", draws=1, measures=",".join(new),
    )  # fmt: skip
    logged = probe(ProbeView(params, state, jax.random.PRNGKey(1), 10), None, None).metrics()
    want = Probe(net.apply, loss, opt, model=net, measures=new, center="none")(params, state, batch)
    assert {k for k in logged if k.startswith("dynamics/")} == set(want)
    for key, value in want.items():
        assert logged[key] == pytest.approx(float(value), rel=1e-6), key


def _key_patterns(measure) -> list[re.Pattern]:
    """The table's keys of ``measure`` as regexes ({layer}: a module path, {tau} and {t}: a
    number, {statistic}: a name)."""
    fill = {"{layer}": r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*", "{tau}": r"[0-9.]+",
            "{statistic}": r"[a-z_]+(?:_[0-9.]+)?"}  # fmt: skip
    patterns = []
    for key in (k.strip() for k in measure.keys.split(",")):
        text = re.escape(key)
        for slot, regex in fill.items():
            text = text.replace(re.escape(slot), regex)
        patterns.append(re.compile(text + "$"))
    return patterns


def test_every_key_a_probe_logs_is_one_the_table_declares():
    """One definition per metric name: each measure's logged keys, and no other, match its row's
    `keys`; and each declared key is logged (the glossary is generated from these rows)."""
    net, batch, params, loss, opt = mlp_problem()
    for measure in MEASURES_TABLE:
        probe = Probe(net.apply, loss, opt, model=net, measures=(measure.name,), center="none")
        logged = set(probe(params, opt.init(params), batch, init_params=params))
        patterns = _key_patterns(measure)
        stray = sorted(k for k in logged if not any(p.match(k) for p in patterns))
        assert not stray, f"{measure.name} logs keys its row does not declare: {stray}"
        unlogged = [p.pattern for p in patterns if not any(p.match(k) for k in logged)]
        assert not unlogged, f"{measure.name} declares keys it never logs: {unlogged}"
