"""Parameter and gradient statistics: norms, distance from initialisation, the loss NTK.

`loss_fn(params, transition) -> scalar` is the per-transition loss of update_matrix.py; the
training loss is taken to be its mean over the batch. Per-sample gradients g_i = grad loss_i are
stacked as J [k, P]; the empirical NTK of the per-sample losses is K = J J^T [k, k] (as in
Dopamine labs' network statistics, google/dopamine, labs/moes full_rainbow_moe_agent.py), and
every gradient-noise statistic is a function of K, so J is formed once and never kept.
Layers are the parent paths of parameter leaves ("encoder/Conv_0" holds its kernel and bias;
a leading "params" collection is dropped; a top-level leaf is its own layer).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from tdgen.errors import InputError, unknown_name
from tdgen.interference.im2col import conv_as_matmul
from tdgen.interference.rank import singular_values
from tdgen.interference.table import NTK_THRESHOLDS
from tdgen.interference.update_matrix import CONVS, check_batch, check_chunk_size


def layer_name(path) -> str:
    """'encoder/Conv_0' for the leaf params/encoder/Conv_0/kernel; 'w1' for a top-level leaf."""
    keys = [str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path]
    if len(keys) > 1 and keys[0] == "params":
        keys = keys[1:]
    return "/".join(keys[:-1]) or keys[-1]


def _layer_sq_norms(tree) -> dict[str, jax.Array]:
    out: dict[str, jax.Array] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = layer_name(path)
        out[name] = out.get(name, 0.0) + jnp.sum(jnp.square(jnp.asarray(leaf, jnp.float32)))
    if not out:
        raise InputError("params have no array leaves")
    return out


def _norms(prefix: str, tree) -> dict[str, jax.Array]:
    sq = _layer_sq_norms(tree)
    out = {prefix: jnp.sqrt(sum(sq.values()))}
    out.update({f"{prefix}/{name}": jnp.sqrt(v) for name, v in sq.items()})
    return out


def parameter_norms(params) -> dict[str, jax.Array]:
    """||theta||_2, total ("param_norm") and per layer ("param_norm/{layer}").

    params: a pytree of arrays (P parameters in all). Returns {"param_norm": ...,
    "param_norm/{layer}": ...} of 0-d float32 arrays (shape []).
    """
    return _norms("param_norm", params)


def distance_from_init(params, init_params) -> dict[str, jax.Array]:
    """||theta - theta_0||_2 and ||theta - theta_0|| / ||theta_0||, total and per layer.

    Plasticine's "weight difference" (and Lyle et al. 2023's distance from initialisation).
    params, init_params: pytrees of the same structure (P parameters). Returns {"init_distance",
    "init_distance/{layer}", "init_distance_relative", "init_distance_relative/{layer}"} of 0-d
    float32 arrays (shape []); the relative distance of a layer initialised at exactly zero is NaN
    (no scale to divide by).
    """
    if jax.tree.structure(params) != jax.tree.structure(init_params):
        raise InputError("params and init_params have different tree structures")
    diff = jax.tree.map(jnp.subtract, params, init_params)
    dist, base = _norms("init_distance", diff), _norms("", init_params)
    out = dict(dist)
    for key, value in dist.items():
        scale = base[key[len("init_distance") :]]
        rel = "init_distance_relative" + key[len("init_distance") :]
        out[rel] = jnp.where(scale > 0, value / jnp.where(scale > 0, scale, 1.0), jnp.nan)
    return out


def gradient_norm(loss_fn, params, batch) -> dict[str, jax.Array]:
    """||grad (1/k) sum_i loss_i||_2 of the training loss, total ("grad_norm") and per layer.

    batch: a pytree whose leaves are [k, ...]. Returns {"grad_norm": ..., "grad_norm/{layer}": ...}
    of 0-d float32 arrays.
    """
    check_batch(batch)
    grads = jax.grad(lambda p: jnp.mean(jax.vmap(loss_fn, (None, 0))(p, batch)))(params)
    return _norms("grad_norm", grads)


def per_sample_gradients(loss_fn, params, batch, chunk_size: int = 8, conv: str = "matmul"):
    """J [k, P]: the flattened gradient of each transition's loss.

    batch: a pytree whose leaves are [k, ...]. Returns J [k, P], one row per transition.
    chunk_size transitions are vectorised together (jax.lax.map's batch_size); conv="matmul"
    computes convolutions as im2col matmuls (im2col.py), "native" keeps XLA's. Measured on
    XLA:CPU at k = 128: chunks of 8 with matmul convolutions took 0.93 s (Nature CNN) and
    0.05 s (MinAtar) against 1.36 s and 0.09 s fully vmapped with native convolutions.
    """
    k = check_batch(batch)
    check_chunk_size(chunk_size)
    if conv not in CONVS:
        raise unknown_name("conv", conv, CONVS)
    loss = conv_as_matmul(loss_fn) if conv == "matmul" else loss_fn
    return jax.lax.map(
        lambda t: ravel_pytree(jax.grad(loss)(params, t))[0], batch, batch_size=min(chunk_size, k)
    )


def loss_ntk(loss_fn, params, batch, chunk_size: int = 8, conv: str = "matmul") -> jax.Array:
    """K[i, j] = <grad loss_i, grad loss_j>, the empirical NTK of the per-sample losses [k, k].

    batch: a pytree whose leaves are [k, ...]. Returns K = J J^T [k, k] (J: per_sample_gradients).
    """
    J = per_sample_gradients(loss_fn, params, batch, chunk_size, conv)
    return J @ J.T


def ntk_statistics(K, thresholds: Sequence[float] = NTK_THRESHOLDS) -> dict[str, jax.Array]:
    """Dopamine labs' summaries of an empirical NTK K [k, k] (network statistics, labs/moes).

    diagonal_mean, diagonal_std; off_diagonal_mean = sum_{i != j} K_ij / (k (k - 1)) (NaN for
    k = 1); positive_frac / negative_frac = fraction of all k^2 entries > 0 / < 0; and, for each
    threshold t, rank_{t} = |{sigma : sigma / sigma_max > t}|, which Dopamine calls
    "entk_srank_t" (a relative threshold, like update_rank, not Kumar et al.'s srank); 0 for an
    all-zero K. Returns {"diagonal_mean", ..., "rank_{t}"} of 0-d arrays (the ranks int32).
    """
    K = jnp.asarray(K, jnp.float32)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise InputError(f"expected a non-empty square NTK [k, k], got shape {K.shape}")
    k = K.shape[0]
    diag = jnp.diag(K)
    s = singular_values(K)
    out = {
        "diagonal_mean": diag.mean(),
        "diagonal_std": diag.std(),
        "off_diagonal_mean": (K.sum() - diag.sum()) / (k * (k - 1)) if k > 1 else jnp.nan,
        "positive_frac": jnp.mean(K > 0),
        "negative_frac": jnp.mean(K < 0),
    }
    for t in thresholds:
        rank = jnp.sum(s > t * s[0]) if t > 0 else jnp.sum(s > 0)
        out[f"rank_{t:g}"] = jnp.where(s[0] > 0, rank, 0)
    return out


def gradient_noise(K) -> dict[str, jax.Array]:
    """Gradient-noise statistics of the per-sample gradients, from their NTK K = J J^T [k, k].

    Returns {name: 0-d float32 array} for the names below.

    With g_bar = (1/k) sum_i g_i (the training-loss gradient):
      grad_norm                 ||g_bar|| = sqrt(1^T K 1) / k
      per_sample_grad_norm      (1/k) sum_i ||g_i|| = mean sqrt(K_ii)
      grad_variance             tr Sigma = sum_i ||g_i - g_bar||^2 / (k - 1)   (NaN for k = 1)
      grad_noise_scale          tr Sigma / ||g_bar||^2, the simple noise scale B_simple of
                                McCandlish et al. (2018, "An empirical model of large-batch
                                training", Eq. 2.8); NaN when g_bar = 0
      grad_coherence            ||g_bar|| / mean ||g_i|| in [0, 1]: 1 when all per-sample
                                gradients point one way; NaN when every g_i = 0
    """
    K = jnp.asarray(K, jnp.float32)
    k = K.shape[0]
    mean_sq = jnp.maximum(K.sum(), 0.0) / k**2
    per_sample = jnp.sqrt(jnp.maximum(jnp.diag(K), 0.0))
    variance = (jnp.trace(K) - k * mean_sq) / (k - 1) if k > 1 else jnp.nan
    norm = jnp.sqrt(mean_sq)
    return {
        "grad_norm": norm,
        "per_sample_grad_norm": per_sample.mean(),
        "grad_variance": variance,
        "grad_noise_scale": jnp.where(
            mean_sq > 0, variance / jnp.where(mean_sq > 0, mean_sq, 1), jnp.nan
        ),
        "grad_coherence": jnp.where(
            per_sample.sum() > 0,
            norm / jnp.where(per_sample.sum() > 0, per_sample.mean(), 1),
            jnp.nan,
        ),
    }
