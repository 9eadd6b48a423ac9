"""Per-piece timing of tdgen's IMPALA PPO minibatch step on XLA:CPU (used by procgen_update.py).

Each piece is a jitted sub-function timed alone at ``PROFILE_BATCH`` samples (a quarter of the
preset's 2,048 minibatch, to fit a loaded machine; times scale about linearly in the batch):
the loss forward, value_and_grad, the clip+Adam step, and per layer shape each convolution's
forward and forward+backward (both lowerings, and XLA's convolution in NCHW), and each max-pool
(reduce_window against the max of 9 strided slices).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tdgen.nets.layers import im2col, max_pool_slices

PROFILE_BATCH = 512
# (H, W, C_in, C_out, count in the network): IMPALA [16, 32, 32] on 64x64x3
CONV_SHAPES = ((64, 64, 3, 16, 1), (32, 32, 16, 16, 4), (32, 32, 16, 32, 1), (16, 16, 32, 32, 4),
               (8, 8, 32, 32, 4))  # fmt: skip
POOL_SHAPES = ((64, 64, 16), (32, 32, 32), (16, 16, 32))


def _ms(fn, *args, steps: int) -> float:
    from procgen_update import _seconds

    jitted = jax.jit(fn)
    return 1e3 * _seconds(lambda: jax.block_until_ready(jitted(*args)), steps)


def _conv(impl: str):
    def fn(x, w):
        if impl == "xla":
            return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
        if impl == "nchw":
            return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))  # fmt: skip
        kh, kw, c, o = w.shape
        return im2col(x, (kh, kw), (1, 1), "SAME") @ w.reshape(kh * kw * c, o)

    return fn


def _grad_of(fn):
    return jax.grad(lambda *a: jnp.sum(fn(*a) ** 2), argnums=tuple(range(2)))


def _step_pieces(ppo, n: int, steps: int) -> dict[str, float]:
    """ms of the loss forward, value_and_grad and clip + Adam at ``n`` samples."""
    from procgen_update import fake_batch

    mb = jax.tree.map(jnp.asarray, fake_batch(n, 1))
    params, opt_state = ppo.init(jax.random.PRNGKey(0), mb["obs"][:1])

    def loss(p):
        return ppo.loss(p, mb)[0]

    grads = jax.grad(loss)(params)
    return {
        "loss forward": _ms(loss, params, steps=steps),
        "value_and_grad": _ms(jax.value_and_grad(loss), params, steps=steps),
        "clip + Adam": _ms(ppo.optimizer.update, grads, opt_state, params, steps=steps),
    }


def profile(steps: int) -> None:
    from procgen_update import MINIBATCH, jax_agent

    n = PROFILE_BATCH
    rng = np.random.default_rng(0)
    print(f"per-piece ms at {n} samples (x{MINIBATCH // n} for the 2,048 minibatch)")
    for variant in ("xla/reduce_window", "im2col/reduce_window", "xla/slices", "im2col/slices"):
        conv, pool = variant.split("/")
        ppo = jax_agent(pool_impl=pool, conv_impl=conv)
        for name, ms in _step_pieces(ppo, n, steps).items():
            print(f"  {variant:21s} {name:24s} {ms:9.1f}")
    print("convolutions (per layer; total = per layer x count):")
    for h, w, c, o, count in CONV_SHAPES:
        for impl in ("xla", "nchw", "im2col"):
            shape = (n, c, h, w) if impl == "nchw" else (n, h, w, c)
            wshape = (o, c, 3, 3) if impl == "nchw" else (3, 3, c, o)
            x = jnp.asarray(rng.normal(size=shape), jnp.float32)
            k = jnp.asarray(rng.normal(size=wshape), jnp.float32)
            fwd = _ms(_conv(impl), x, k, steps=steps)
            both = _ms(_grad_of(_conv(impl)), x, k, steps=steps)
            print(f"  {h}x{w}x{c}->{o} x{count} {impl:7s} forward {fwd:8.1f}  fwd+bwd {both:8.1f}")
    print("max-pool 3x3 s2 SAME:")
    for h, w, c in POOL_SHAPES:
        x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
        for name, fn in (("reduce_window", lambda v: nn.max_pool(v, (3, 3), (2, 2), "SAME")),
                         ("slices", max_pool_slices)):  # fmt: skip
            fwd = _ms(fn, x, steps=steps)
            both = _ms(jax.grad(lambda v, f=fn: jnp.sum(f(v) ** 2)), x, steps=steps)
            print(f"  {h}x{w}x{c} {name:14s} forward {fwd:8.1f}  fwd+bwd {both:8.1f}")
