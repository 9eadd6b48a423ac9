"""One key, one definition: the same model, batch and optimiser state through every entry point
gives the same update rank under the same key (`tdgen.interference.keys`).

The case is chosen so that the two centrings disagree (a 6-32-3 MLP, 48 transitions, Adam warmed
by 20 steps, as in the report that two entry points once logged different numbers under one key):
a mix-up of the centrings fails here, not only a crash.
"""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents.probes import VALUE, Draw, ProbeTarget, ProbeView, make_probe
from tdgen.interference import Probe, keys, make_update_matrix, update_matrix, update_rank
from tdgen.interference.command import mlp_apply, rank_main, save_params, td_loss
from tdgen.interference.keys import CENTER_CHANGED, read_update_rank, update_rank_key

K, LR = 48, 1e-3


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        hidden = nn.relu(nn.Dense(32)(x.reshape(x.shape[0], -1)))  # Dense_0, as mlp_apply reads
        return nn.Dense(3)(hidden)


@pytest.fixture(scope="module")
def case():
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    batch = {
        "obs": jax.random.normal(keys[0], (K, 6)),
        "action": jax.random.randint(keys[1], (K,), 0, 3),
        "target": jax.random.normal(keys[2], (K,)),
    }
    params = MLP().init(keys[3], batch["obs"][:1])
    opt = optax.adam(LR)
    state = opt.init(params)
    for i in range(20):  # warm Adam's moments on other data
        obs = jax.random.normal(jax.random.fold_in(keys[4], i), (K, 6))
        grads = jax.grad(lambda p, o=obs: jnp.mean(mlp_apply(p, o) ** 2))(params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    loss = td_loss(mlp_apply, 0.99, batch)
    ranks = {
        center: int(
            update_rank(update_matrix(mlp_apply, params, loss, batch, opt, state, center=center))
        )  # fmt: skip
        for center in ("none", "drift")
    }
    assert ranks["none"] != ranks["drift"], ranks  # the case tells the centrings apart
    return params, opt, state, batch, loss, ranks


def entry_points(case, center, tmp_path):
    """{entry point: the rank it gives under update_rank_key(center)}."""
    params, opt, state, batch, loss, _ = case
    key = update_rank_key(center)
    probe = Probe(mlp_apply, loss, opt, measures=("update_rank",), center=center)
    both = Probe(mlp_apply, loss, opt, measures=("update_rank", "update_rank_drift"),
                 center="none")  # fmt: skip
    matrix = make_update_matrix(mlp_apply, loss, opt, center=center)
    agent_probe = make_probe(
        {VALUE: ProbeTarget(mlp_apply, loss, opt, reduce="max")},
        lambda _state, _data, _key: Draw(batch, batch, params, state, jnp.arange(K)),
        center=center, draws=1,
    )  # fmt: skip
    agent = agent_probe(ProbeView(params, state, jax.random.PRNGKey(1), 100), None, None)
    save_params(tmp_path / "params.msgpack", params, state)
    np.savez(tmp_path / "batch.npz", **{k: np.asarray(v) for k, v in batch.items()})
    command = rank_main(tmp_path / "params.msgpack", tmp_path / "batch.npz", out_dir=tmp_path,
                        lr=LR, center=center)  # fmt: skip
    return {
        "update_matrix": int(
            update_rank(update_matrix(mlp_apply, params, loss, batch, opt, state, center=center))
        ),  # fmt: skip
        "make_update_matrix": int(update_rank(matrix(params, state, batch))),
        "Probe": int(probe(params, state, batch)[key]),
        "Probe.jitted": int(probe.jitted(params, state, batch)[key]),
        "Probe(update_rank_drift)": int(both(params, state, batch)[key]),
        "agents": int(agent.metrics()[key]),
        "agents' probe file": int(
            read_update_rank(np.load(agent.save(tmp_path)), center, prefix="")
        ),  # fmt: skip
        "tdgen rank": int(command[key.removeprefix("interference/")]),
    }


@pytest.mark.parametrize("center", ["none", "drift"])
def test_every_jax_entry_point_gives_one_number_per_key(case, center, tmp_path, capsys):
    got = entry_points(case, center, tmp_path)
    assert set(got.values()) == {case[-1][center]}, got


def test_a_probe_without_center_is_the_papers_rank_and_warns_once(case):
    params, opt, state, batch, loss, ranks = case
    keys._warned.discard("tdgen.interference.Probe")
    with pytest.warns(FutureWarning, match="interference/update_rank_drift"):
        probe = Probe(mlp_apply, loss, opt, measures=("update_rank",))
    assert probe.center == "none"
    assert int(probe(params, state, batch)["interference/update_rank"]) == ranks["none"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Probe(mlp_apply, loss, opt, measures=("update_rank",))  # once per process
    assert "center='none'" in CENTER_CHANGED
    with pytest.raises(ValueError, match="unknown center 'drfit'"):
        Probe(mlp_apply, loss, opt, center="drfit")


def test_a_run_written_before_reads_its_drift_rank_under_the_plain_key():
    old = {"step": 100, "interference/update_rank": 7.0}  # a drift run before the keys split
    assert read_update_rank(old, "drift") == 7.0
    assert read_update_rank(old, "none") == 7.0
    assert read_update_rank({"interference/update_rank_drift": 3.0}, "none") is None
    assert update_rank_key("drift", "actor", random=True) == (
        "interference/actor_update_rank_drift_random"
    )


@pytest.mark.parametrize("center", ["none", "drift"])
def test_the_torch_entry_points_give_one_number_per_key(center):
    torch = pytest.importorskip("torch")
    from tdgen.interference.torch import Probe as TorchProbe
    from tdgen.interference.torch import update_matrix as torch_update_matrix

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    for _ in range(20):  # warm Adam's moments
        optimizer.zero_grad()
        net(torch.randn(K, 6)).pow(2).mean().backward()
        optimizer.step()
    batch = {"obs": torch.randn(K, 6), "action": torch.randint(0, 3, (K,)),
             "target": torch.randn(K)}  # fmt: skip

    def loss_fn(module, t):
        q = module(t["obs"][None])[0]
        return 0.5 * (q[t["action"]] - t["target"]) ** 2

    ranks = {c: int(update_rank(torch_update_matrix(net, optimizer, loss_fn, batch, center=c)))
             for c in ("none", "drift")}  # fmt: skip
    assert ranks["none"] != ranks["drift"], ranks
    key = update_rank_key(center)
    probe = TorchProbe(net, optimizer, loss_fn, measures=("update_rank",), center=center)
    both = TorchProbe(net, optimizer, loss_fn, measures=("update_rank", "update_rank_drift"),
                      center="none")  # fmt: skip
    assert int(probe(batch)[key]) == int(both(batch)[key]) == ranks[center]
    if center == "none":  # built without center=: the paper's rank, and the change said once
        keys._warned.discard("tdgen.interference.torch.Probe")
        with pytest.warns(FutureWarning, match="torch.Probe: center= was not given"):
            plain = TorchProbe(net, optimizer, loss_fn, measures=("update_rank",))
        assert plain.center == "none" and int(plain(batch)[key]) == ranks["none"]


def test_a_drift_probe_asked_for_both_ranks_computes_the_matrix_once(case, monkeypatch):
    params, opt, state, batch, loss, ranks = case
    calls = []
    real = Probe._update_matrix

    def counted(self, *args):
        calls.append(args[-1])
        return real(self, *args)

    monkeypatch.setattr(Probe, "_update_matrix", counted)
    probe = Probe(mlp_apply, loss, opt, measures=("update_rank", "update_rank_drift"),
                  center="drift")  # fmt: skip
    out = probe(params, state, batch)
    assert calls == ["drift"] and set(out) == {"interference/update_rank_drift"}
    assert int(out["interference/update_rank_drift"]) == ranks["drift"]
