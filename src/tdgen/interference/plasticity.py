"""The direct plasticity probe of Lyle et al. 2023 ("Understanding plasticity in neural networks",
ICML 2023; Eq. 4-5, Sections 3.1 and 5.1, Appendix A.2): from a copy of the current parameters,
fit fresh random targets for a fixed budget of optimiser steps and report the final loss. A
network that has lost plasticity fits them worse.

The targets are g(x) = a + sin(10^5 f(x; omega_0)): omega_0 a fresh initialisation of the same
network and a the network's mean prediction (the offset keeps a fresh network, whose outputs sit
near zero, from being favoured); the high frequency makes g effectively a uniformly random
function of the input. The loss l(theta) = mean_{x, j} (f(theta, x)_j - g(x)_j)^2 is the MSE
over the observations X (one full batch, as the paper's replay inputs) and all outputs j; it is
minimised by the training optimiser from a fresh state for T steps, and l(theta*_T) is averaged
over N targets. The paper's plasticity is P(theta) = b - that average (b: the targets' variance)
and its plasticity loss P(theta_t) - P(theta_0): both follow from this number at two checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from tdgen.errors import InputError
from tdgen.interference.table import PLASTICITY_FREQUENCY, PLASTICITY_STEPS, PLASTICITY_TARGETS


def check_budget(steps, targets) -> None:
    """An InputError naming the setting unless both are positive integers (before tracing)."""
    for name, value in (("plasticity_steps", steps), ("plasticity_targets", targets)):
        if not (isinstance(value, int) and value >= 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def probe_targets(apply_fn, params, target_params, obs, frequency=PLASTICITY_FREQUENCY):
    """g(x) = a + sin(frequency * f(x; target_params)) at the observations obs [m, ...], with a
    the mean of f(x; params) over states and outputs (Section 3.1).

    Returns targets of apply_fn's output shape, e.g. [m, A].
    """
    offset = jnp.mean(apply_fn(params, obs))
    return offset + jnp.sin(frequency * apply_fn(target_params, obs))


def fit_loss(apply_fn, params, obs, targets, optimizer: optax.GradientTransformation, steps: int):
    """The MSE to ``targets`` after ``steps`` full-batch steps of ``optimizer`` (from a fresh
    state) on the MSE of apply_fn(params, obs [m, ...]) to targets (apply_fn's output shape).

    Returns the 0-d loss at the final parameters. ``params`` is not changed (a pure function).
    """

    def loss(p):
        return jnp.mean(jnp.square(apply_fn(p, obs) - targets))

    def train_step(carry, _):
        p, state = carry
        updates, state = optimizer.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (fitted, _), _ = jax.lax.scan(train_step, (params, optimizer.init(params)), None, length=steps)
    return loss(fitted)


def plasticity_probe_loss(
    apply_fn,
    params,
    obs,
    key: jax.Array,
    init_fn: Callable[[jax.Array], object],
    optimizer: optax.GradientTransformation,
    steps: int = PLASTICITY_STEPS,
    targets: int = PLASTICITY_TARGETS,
    frequency: float = PLASTICITY_FREQUENCY,
) -> jax.Array:
    """E_l[l(theta*_T)] of Lyle et al. 2023 (module docstring): the mean over ``targets`` random
    target functions (from init_fn(k) -> fresh params, k split from ``key``) of the loss after
    ``steps`` steps of ``optimizer`` from a copy of ``params``.

    apply_fn(params, obs [m, ...]) -> outputs, e.g. [m, A]. Returns a 0-d jax.Array (>= 0; lower:
    more plastic). Deterministic given key; params are not changed. The targets are fitted one
    after the other (lax.map), so memory is that of one fit.
    """
    check_budget(steps, targets)
    if jnp.ndim(obs) < 1 or jnp.shape(obs)[0] < 1:
        raise InputError(f"the plasticity probe needs observations [m, ...], got {jnp.shape(obs)}")

    def one(k):
        g = probe_targets(apply_fn, params, init_fn(k), obs, frequency)
        return fit_loss(apply_fn, params, obs, jax.lax.stop_gradient(g), optimizer, steps)

    return jnp.mean(jax.lax.map(one, jax.random.split(key, targets)))


__all__ = ["check_budget", "fit_loss", "plasticity_probe_loss", "probe_targets"]
