"""Robustness of a policy to Gaussian input noise: the perturbation axis of Figure 5 (Section 6.1).

Section 6.1 tracks "whether the network takes the same action under a Gaussian perturbation to its
input as in the unperturbed observation", and Figure 5's axes are the l1 distance between the
policy on the clean and on the perturbed batch. `robustness` reports both, per noise scale sigma,
plus a scale-free l1 (`standardized_l1`, see `Robustness`).

Units. Observations go through `tdgen.nets.scale_observation` first, as inside every tdgen network:
uint8 pixels become float32 in [0, 1], float planes (MinAtar) stay as they are. Noise is added
there, so sigma is in the units the network sees (sigma = 0.1 on Atari frames is 25.5 grey levels)
and `logits_fn` receives float32 inputs already in those units (tdgen networks leave floats as is).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.errors import InputError
from tdgen.nets.layers import scale_observation

LogitsFn = Callable[[jax.Array], jax.Array]
"""A policy function: observations [n, ...] -> logits [n, num_actions] (Q-values for value agents)."""

DEFAULT_CHUNK = 256


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Robustness:
    """Per-noise-scale means over states; every field is [num_scales].

    action_agreement: fraction of states whose greedy action (argmax) is unchanged.
    policy_l1: mean ||softmax(l / T) - softmax(l' / T)||_1, l clean and l' perturbed logits,
        T = `temperature`; Figure 5's axis. It depends on the scale of the outputs: a Q-network
        with small action gaps has a nearly uniform softmax and looks robust for that reason alone.
    standardized_l1: the same l1 with T set per state to the standard deviation of the clean
        logits over actions. Multiplying the outputs by any c > 0 (or adding any per-input offset,
        such as a dueling network's V) leaves it unchanged, so a Q-network, a value-distilled
        student and a behaviour-cloned student compare on one axis. We prefer it to a rank
        correlation (Spearman, Kendall) over actions, which counts an order flip between two
        near-tied, never-chosen actions as much as a flip of the greedy action and is
        discrete, with ties, for few actions; here mass moves only where the policy puts it.
        A state whose clean logits are all equal keeps T = 1.
    """

    scales: jax.Array
    action_agreement: jax.Array
    policy_l1: jax.Array
    standardized_l1: jax.Array
    temperature: float = dataclasses.field(default=1.0, metadata={"static": True})

    def as_dict(self) -> dict[str, list[float] | float]:
        """Plain Python numbers, for result.json."""
        return plain_dict(self)


def robustness(
    logits_fn: LogitsFn,
    obs,
    scales,
    key: jax.Array,
    *,
    temperature: float = 1.0,
    clip: tuple[float, float] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Robustness:
    """Agreement and policy distance between inputs obs and obs + sigma * N(0, I), per sigma.

    obs: [n, ...] observations (uint8 pixels or float planes); scales: [S] values of sigma >= 0 in
    network input units (module docstring). clip=(low, high) clips perturbed inputs to that range,
    e.g. (0.0, 1.0) for pixels. Scale 0 is the clean input itself: agreement exactly 1, l1 exactly 0.

    Each state i gets one noise draw, from `fold_in(key, i)`, shared by all scales (common
    random numbers: curves over sigma are smooth, and results do not depend on chunk_size). States
    are processed `chunk_size` at a time and scales one after another, so memory holds one chunk.
    Jit-compatible; temperature, clip and chunk_size are static. Pass a network as
    `jax.tree_util.Partial(apply_fn, params)` to trace params rather than bake them in as constants
    (one compilation for every checkpoint); a plain callable is static, keyed by identity.
    """
    obs, scales = jnp.asarray(obs), jnp.asarray(scales)
    n = check_batch(obs, "obs")
    check_range("scales", scales, low=0.0, high=None)
    if not float(temperature) > 0.0:
        raise InputError(f"temperature must be positive, got {temperature}")
    if clip is not None:
        clip = (float(clip[0]), float(clip[1]))
        if not clip[0] < clip[1]:
            raise InputError(f"clip must be (low, high) with low < high, got {clip}")
    chunk = check_chunk_size(chunk_size)
    fn = as_partial(logits_fn)
    return _robustness(fn, obs, scales, key, float(temperature), clip, min(chunk, n))


@jax.jit(static_argnums=(4, 5, 6))
def _robustness(logits_fn, obs, scales, key, temperature, clip, chunk) -> Robustness:
    def per_chunk(start):
        x = scale_observation(jax.lax.dynamic_slice_in_dim(obs, start, chunk))
        noise = state_noise(key, start + jnp.arange(chunk), x.shape[1:])
        clean = policy_logits(logits_fn, x)
        spread = jnp.std(clean, axis=-1, keepdims=True)
        spread = jnp.where(spread > 0, spread, 1.0)

        def per_scale(sigma):
            noisy = x + sigma * noise
            if clip is not None:
                noisy = jnp.clip(noisy, *clip)
            logits = policy_logits(logits_fn, noisy)
            same = jnp.argmax(logits, -1) == jnp.argmax(clean, -1)
            l1 = policy_l1(clean, logits, temperature), policy_l1(clean, logits, spread)
            # Scale 0 is exact, whatever rounding a second pass through the network brings.
            clean_input = sigma == 0
            return same | clean_input, *(jnp.where(clean_input, 0.0, d) for d in l1)

        return jax.tree.map(jnp.transpose, jax.lax.map(per_scale, scales))  # each [chunk, S]

    same, l1, standardized = map_in_chunks(per_chunk, obs.shape[0], chunk)
    return Robustness(
        scales=scales,
        action_agreement=jnp.mean(same, axis=0, dtype=jnp.float32),
        policy_l1=jnp.mean(l1, axis=0),
        standardized_l1=jnp.mean(standardized, axis=0),
        temperature=temperature,
    )


def state_noise(key: jax.Array, index: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """N(0, I) noise [len(index), *shape], state i's drawn from fold_in(key, i) alone."""

    def draw(i):  # flat: a [h, w, c] draw compiles about twice as slowly on CPU
        return jax.random.normal(jax.random.fold_in(key, i), (math.prod(shape),))

    return jax.vmap(draw)(index).reshape((len(index), *shape))


def as_partial(logits_fn: LogitsFn) -> jax.tree_util.Partial:
    """logits_fn as a pytree (a jit argument): Partials keep their array arguments traced."""
    if isinstance(logits_fn, jax.tree_util.Partial):
        return logits_fn
    if not callable(logits_fn):
        raise InputError(f"logits_fn must be callable, got {type(logits_fn).__name__}")
    return jax.tree_util.Partial(logits_fn)


def policy_l1(logits_a, logits_b, temperature) -> jax.Array:
    """||softmax(a / T) - softmax(b / T)||_1 per row of a, b [n, A]; T a scalar or [n, 1]. In [0, 2]."""
    p = jax.nn.softmax(logits_a / temperature, axis=-1)
    q = jax.nn.softmax(logits_b / temperature, axis=-1)
    # Equal rows give exactly 0: XLA may round two softmaxes of one row apart (e.g. one hoisted
    # out of a loop and vectorised differently).
    return jnp.where(jnp.all(logits_a == logits_b, axis=-1), 0.0, jnp.sum(jnp.abs(p - q), axis=-1))


def policy_logits(logits_fn: LogitsFn, x: jax.Array) -> jax.Array:
    """logits_fn(x) as float32 [n, num_actions]; raises if it returns another shape."""
    logits = jnp.asarray(logits_fn(x))
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise InputError(
            f"logits_fn must map obs [n, ...] to logits [n, num_actions]; "
            f"for n={x.shape[0]} it returned shape {logits.shape}"
        )
    return logits.astype(jnp.float32)


def map_in_chunks(fn, n: int, chunk: int):
    """fn(start) on rows start..start+chunk of n, one chunk after another; outputs joined to [n, ...].

    fn returns arrays with a leading axis of length chunk. The last chunk is shifted back to end at
    row n instead of padded, so every call sees a full chunk (one compilation, no copy of the
    inputs); its rows already covered are dropped.
    """
    num = -(-n // chunk)
    starts = jnp.minimum(jnp.arange(num) * chunk, n - chunk)
    out = jax.lax.map(fn, starts)  # leaves [num, chunk, ...]
    overlap = num * chunk - n
    return jax.tree.map(
        lambda y: jnp.concatenate([y[:-1].reshape((-1,) + y.shape[2:]), y[-1, overlap:]]), out
    )


def check_chunk_size(chunk_size) -> int:
    """chunk_size as a positive int; raises otherwise."""
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    return int(chunk_size)


def check_batch(obs: jax.Array, name: str) -> int:
    """The batch size n of obs [n, ...]; raises if obs has no leading axis or is empty."""
    if obs.ndim < 1 or obs.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty batch [n, ...], got shape {obs.shape}")
    return obs.shape[0]


def check_range(name: str, values: jax.Array, low: float, high: float | None) -> None:
    """values must be 1-D, non-empty and in [low, high]; checked when concrete (not under jit)."""
    if values.ndim != 1 or values.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
    try:
        concrete = np.asarray(values, dtype=np.float64)
    except jax.errors.TracerArrayConversionError:
        return
    bad = ~np.isfinite(concrete) | (concrete < low)
    if high is not None:
        bad |= concrete > high
    if bad.any():
        bound = f"in [{low:g}, {high:g}]" if high is not None else f"finite and >= {low:g}"
        raise InputError(f"{name} must be {bound}, got {concrete[bad][0]:g}")


def plain_dict(result) -> dict:
    """A result dataclass as Python numbers and lists (JSON-ready).

    float32 values print as their shortest decimal (0.882, not 0.8820000290870667).
    """
    out = {}
    for field in dataclasses.fields(result):
        value = np.asarray(getattr(result, field.name))
        if value.dtype == np.float32:
            value = value.astype(str).astype(np.float64)
        out[field.name] = value.tolist()
    return out
