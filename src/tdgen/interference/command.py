"""`tdgen rank`: the update rank and heatmap of a saved network on a saved batch of transitions.

Files:
  params (.msgpack)  flax.serialization msgpack (no pickle) of a dict
                       {"params": <the tree apply_fn receives>,
                        "opt_state": <optional: optax state, as flax.serialization.to_state_dict>}
                     written by `save_params(path, params, opt_state)`. Without "opt_state" the
                     optimiser starts from its initial state.
  batch (.npz)       numpy arrays with leading axis k: obs [k, ...], action [k] (int) and either
                     target [k] (regression of Q(obs, action) onto target) or reward [k],
                     next_obs [k, ...], done [k] (one-step TD: r + gamma (1 - done) max Q(next_obs),
                     the target from the same parameters, held fixed).
Model: only the built-in "mlp" for now, a ReLU MLP on flattened observations whose layers are
read from the params: {"Dense_0": {"kernel", "bias"}, ..., "Dense_n"} (flax nn.Dense naming,
optionally under a top-level "params" key). Other networks: pass `apply_fn` from Python.
"""

from __future__ import annotations

from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tdgen.interference.plot import plot_singular_values, plot_update_matrix
from tdgen.interference.rank import effective_dimension, identity_distance, srank, update_rank
from tdgen.interference.reductions import unknown_name
from tdgen.interference.update_matrix import update_matrix

OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "rmsprop": optax.rmsprop}
MODELS = ("mlp",)


def save_params(path, params, opt_state=None) -> None:
    """Write the params file `rank_main` reads (msgpack, no pickle)."""
    tree = {"params": flax.serialization.to_state_dict(params)}
    if opt_state is not None:
        tree["opt_state"] = flax.serialization.to_state_dict(opt_state)
    Path(path).write_bytes(flax.serialization.msgpack_serialize(tree))


def mlp_apply(params, obs):
    """ReLU MLP over flattened observations, layers Dense_0 ... Dense_n read from params."""
    params = params.get("params", params)
    names = sorted(params, key=lambda name: int(name.rsplit("_", 1)[-1]))
    x = obs.reshape(obs.shape[0], -1)
    for i, name in enumerate(names):
        x = x @ params[name]["kernel"] + params[name]["bias"]
        if i < len(names) - 1:
            x = jax.nn.relu(x)
    return x


def rank_main(
    params_path,
    batch_path,
    *,
    out_dir=".",
    model="mlp",
    apply_fn=None,
    optimizer="adam",
    lr=1e-4,
    gamma=0.99,
    reduce="max",
    action_index=None,
    center="none",
    method="exact",
    eps=0.1,
    chunk_size=None,
) -> dict:
    """Print the update rank of the saved network on the saved batch; write heatmap + spectrum.

    Returns the metrics (also printed): update_rank, srank, effective_dimension (entropy),
    identity_distance, k, and the paths of the two figures written to out_dir.
    """
    if apply_fn is None:
        if model not in MODELS:
            raise unknown_name("model", model, MODELS)
        apply_fn = mlp_apply
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, tuple(OPTIMIZERS))
    raw = flax.serialization.msgpack_restore(Path(params_path).read_bytes())
    if not isinstance(raw, dict) or "params" not in raw:
        raise ValueError(
            f"{params_path}: expected a msgpack dict with a 'params' entry "
            "(write it with tdgen.interference.command.save_params)"
        )
    params = jax.tree.map(jnp.asarray, raw["params"])
    opt = OPTIMIZERS[optimizer](lr)
    opt_state = opt.init(params)
    if "opt_state" in raw:
        opt_state = flax.serialization.from_state_dict(opt_state, raw["opt_state"])
    with np.load(batch_path) as data:
        batch = {key: jnp.asarray(data[key]) for key in data.files}
    A = update_matrix(
        apply_fn,
        params,
        td_loss(apply_fn, gamma, batch),
        batch,
        opt,
        opt_state,
        reduce=reduce,
        action_index=action_index,
        center=center,
        method=method,
        chunk_size=chunk_size,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "k": int(A.shape[0]),
        "update_rank": int(update_rank(A, eps)),
        "srank": int(srank(A)),
        "effective_dimension": float(effective_dimension(A)),
        "identity_distance": float(identity_distance(A)) if A.shape[0] == A.shape[1] else None,
        "heatmap": str(out / "update_matrix.png"),
        "spectrum": str(out / "singular_values.png"),
    }
    title = f"k={metrics['k']}, update rank {metrics['update_rank']}"
    plot_update_matrix(A, title=title).savefig(metrics["heatmap"], dpi=150)
    plot_singular_values(A, eps).savefig(metrics["spectrum"], dpi=150)
    print(f"update rank (eps={eps}): {metrics['update_rank']} of k={metrics['k']}")
    for name in ("srank", "effective_dimension", "identity_distance"):
        print(f"{name}: {metrics[name]}")
    print(f"wrote {metrics['heatmap']} and {metrics['spectrum']}")
    return metrics


def td_loss(apply_fn, gamma, batch):
    """Squared error of Q(obs, action) to `target`, or to the one-step TD target."""
    needed = {"obs", "action"} | (
        {"target"} if "target" in batch else {"reward", "next_obs", "done"}
    )
    missing = sorted(needed - set(batch))
    if missing:
        raise ValueError(
            f"batch file lacks {', '.join(missing)}: it needs obs, action and "
            "either target or reward, next_obs, done"
        )

    def loss_fn(params, t):
        q = apply_fn(params, t["obs"][None])[0, t["action"].astype(jnp.int32)]
        if "target" in t:
            target = t["target"]
        else:
            bootstrap = apply_fn(params, t["next_obs"][None])[0].max()
            target = t["reward"] + gamma * (1.0 - t["done"]) * bootstrap
        return 0.5 * (q - jax.lax.stop_gradient(target)) ** 2

    return loss_fn
