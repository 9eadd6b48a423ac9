"""`tdgen rank` end to end: a saved MLP and a saved batch give a rank and two figures."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.interference.command import rank_main, save_params

pytestmark = pytest.mark.slow


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        return nn.Dense(3)(x)


def plain_update_rank(variables, opt, opt_state, batch, gamma=0.99, eps=0.1, drift=False):
    """The command's update rank written out: the optimiser's step on one transition's squared
    TD error (its target held fixed), with ``drift`` minus its step on a zero gradient, read as
    the change of max_a Q at every observation; the rank by numpy's SVD."""
    model, batch = MLP(), jax.tree.map(jnp.asarray, batch)

    def loss(p, t):
        q = model.apply(p, t["obs"][None])[0, t["action"]]
        bootstrap = model.apply(p, t["next_obs"][None])[0].max()
        target = t["reward"] + gamma * (1 - t["done"]) * bootstrap
        return 0.5 * (q - jax.lax.stop_gradient(target)) ** 2

    offset = opt.update(jax.tree.map(jnp.zeros_like, variables), opt_state, variables)[0]
    offset = offset if drift else jax.tree.map(jnp.zeros_like, offset)
    base = model.apply(variables, batch["obs"]).max(-1)

    def row(t):
        step = opt.update(jax.grad(loss)(variables, t), opt_state, variables)[0]
        moved = optax.apply_updates(variables, jax.tree.map(jnp.subtract, step, offset))
        return model.apply(moved, batch["obs"]).max(-1) - base

    s = np.linalg.svd(np.asarray(jax.jit(jax.vmap(row))(batch), np.float64), compute_uv=False)
    return int(np.sum(s > eps * s[0]))


def test_rank_command_writes_figures(tmp_path, capsys):
    k = 12
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.normal(size=(k, 2, 3)).astype(np.float32),
        "action": rng.integers(0, 3, k),
        "reward": rng.normal(size=k).astype(np.float32),
        "next_obs": rng.normal(size=(k, 2, 3)).astype(np.float32),
        "done": np.zeros(k, np.float32),
    }
    np.savez(tmp_path / "batch.npz", **batch)
    variables = MLP().init(jax.random.PRNGKey(0), batch["obs"][:1])
    opt = optax.adam(1e-3)
    state = opt.update(jax.tree.map(np.ones_like, variables), opt.init(variables), variables)[1]
    save_params(tmp_path / "params.msgpack", variables, state)

    paths = (tmp_path / "params.msgpack", tmp_path / "batch.npz")
    drifted = rank_main(*paths, out_dir=tmp_path / "drift", lr=1e-3, center="drift")
    assert "update_rank" not in drifted  # the drift-centred rank has a name of its own
    assert drifted["update_rank_drift"] == plain_update_rank(variables, opt, state, batch,
                                                             drift=True)  # fmt: skip
    assert "update rank drift (eps=0.1)" in capsys.readouterr().out
    metrics = rank_main(*paths, out_dir=tmp_path / "out", lr=1e-3)
    assert metrics["update_rank"] == plain_update_rank(variables, opt, state, batch)
    assert "update rank (eps=0.1)" in capsys.readouterr().out
    for key in ("heatmap", "spectrum"):
        assert (tmp_path / "out" / metrics[key].split("/")[-1]).stat().st_size > 1000

    np.savez(tmp_path / "bad.npz", obs=batch["obs"], action=batch["action"])
    with pytest.raises(ValueError, match="bad.npz lacks done, next_obs, reward"):
        rank_main(tmp_path / "params.msgpack", tmp_path / "bad.npz", out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown model 'cnn'"):
        rank_main(tmp_path / "params.msgpack", tmp_path / "batch.npz", model="cnn")
