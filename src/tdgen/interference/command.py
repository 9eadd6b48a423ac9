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

from tdgen.errors import InputError, make_dir, read_msgpack, read_npz, unknown_name
from tdgen.interference.keys import update_rank_name
from tdgen.interference.plot import plot_singular_values, plot_update_matrix
from tdgen.interference.rank import effective_dimension, identity_distance, srank, update_rank
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

    Returns the metrics (also printed): update_rank (update_rank_drift with center="drift": one
    name per definition, tdgen.interference.keys), srank, effective_dimension (entropy),
    identity_distance, k, and the paths of the two figures written to out_dir.
    """
    if apply_fn is None:
        if model not in MODELS:
            raise unknown_name("model", model, MODELS)
        apply_fn = mlp_apply
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, tuple(OPTIMIZERS))
    params_what = "a msgpack dict with a 'params' entry (tdgen.interference.command.save_params)"
    raw = read_msgpack(params_path, params_what)
    if not isinstance(raw, dict) or not isinstance(raw.get("params"), dict):
        raise InputError(f"{params_path}: expected {params_what}")
    try:
        params = jax.tree.map(jnp.asarray, raw["params"])
    except (TypeError, ValueError):
        raise InputError(f"{params_path}: its params are not all arrays") from None
    opt = OPTIMIZERS[optimizer](lr)
    opt_state = opt.init(params)
    if "opt_state" in raw:
        try:
            opt_state = flax.serialization.from_state_dict(opt_state, raw["opt_state"])
        except (KeyError, ValueError, TypeError) as error:
            raise InputError(f"{params_path}: its opt_state does not fit {optimizer} on these "
                             f"params ({error})") from None  # fmt: skip
    batch_what = "an .npz of obs, action and either target or reward, next_obs, done"
    batch = {k: jnp.asarray(v) for k, v in read_npz(batch_path, batch_what).items()}
    check_batch(batch_path, batch, params_path, params if apply_fn is mlp_apply else None)
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
    out = make_dir(out_dir, "the folder of the heatmaps")
    rank_name = update_rank_name(center)
    metrics = {
        "k": int(A.shape[0]),
        rank_name: int(update_rank(A, eps)),
        "srank": int(srank(A)),
        "effective_dimension": float(effective_dimension(A)),
        "identity_distance": float(identity_distance(A)) if A.shape[0] == A.shape[1] else None,
        "heatmap": str(out / "update_matrix.png"),
        "spectrum": str(out / "singular_values.png"),
    }
    title = f"k={metrics['k']}, update rank {metrics[rank_name]}"
    plot_update_matrix(A, title=title).savefig(metrics["heatmap"], dpi=150)
    plot_singular_values(A, eps).savefig(metrics["spectrum"], dpi=150)
    print(f"{rank_name.replace('_', ' ')} (eps={eps}): {metrics[rank_name]} of k={metrics['k']}")
    for name in ("srank", "effective_dimension", "identity_distance"):
        print(f"{name}: {metrics[name]}")
    print(f"wrote {metrics['heatmap']} and {metrics['spectrum']}")
    return metrics


def check_batch(batch_path, batch, params_path, mlp_params=None) -> None:
    """InputError naming the file unless ``batch`` has the arrays `td_loss` needs, one leading
    axis k >= 2, integer actions, and (with the built-in MLP's ``mlp_params``) observations of
    the width and actions in the range of the network's layers."""
    needed = {"obs", "action"} | (
        {"target"} if "target" in batch else {"reward", "next_obs", "done"}
    )
    missing = sorted(needed - set(batch))
    if missing:
        raise InputError(f"{batch_path} lacks {', '.join(missing)}: a batch needs obs, action and "
                         "either target or reward, next_obs, done")  # fmt: skip
    sizes = {key: batch[key].shape[0] if batch[key].ndim else None for key in needed}
    if len(set(sizes.values())) != 1 or None in sizes.values() or sizes["obs"] < 2:
        raise InputError(f"{batch_path}: arrays need one leading axis k >= 2, got {sizes}")
    if not jnp.issubdtype(batch["action"].dtype, jnp.integer):
        raise InputError(f"{batch_path}: action must be integers, got {batch['action'].dtype}")
    if mlp_params is None:
        return
    layers = mlp_params.get("params", mlp_params)
    try:
        names = sorted(layers, key=lambda name: int(name.rsplit("_", 1)[-1]))
        kernels = [np.shape(layers[name]["kernel"]) for name in names]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{params_path}: expected MLP params {{'Dense_0': {{'kernel', 'bias'}}, "
                         f"...}}, got entries {sorted(layers)}") from None  # fmt: skip
    width = int(np.prod(batch["obs"].shape[1:]))
    if not kernels or any(len(k) != 2 for k in kernels) or kernels[0][0] != width:
        raise InputError(f"{params_path}: its first kernel {kernels[:1]} does not take the "
                         f"{width} inputs of {batch_path}'s obs {batch['obs'].shape[1:]}")  # fmt: skip
    actions = kernels[-1][1]
    if int(batch["action"].min()) < 0 or int(batch["action"].max()) >= actions:
        raise InputError(f"{batch_path}: actions must lie in [0, {actions}) for {params_path}'s "
                         f"{actions} outputs")  # fmt: skip


def td_loss(apply_fn, gamma, batch):
    """Squared error of Q(obs, action) to `target`, or to the one-step TD target."""
    needed = {"obs", "action"} | (
        {"target"} if "target" in batch else {"reward", "next_obs", "done"}
    )
    missing = sorted(needed - set(batch))
    if missing:
        raise InputError(
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
