"""XLA:CPU convolution gradients inside a loop body: JAX's own against `tdgen.nets.conv`.

    .venv/bin/python benchmarks/conv_in_loop.py [--batch 64] [--scan 2]

The gradient of the Figure 6 ProcGen student's loss (IMPALA CNN [16, 32, 32] + 256 policy, 64x64x3,
``--batch`` samples) is timed jitted alone and inside a lax.scan of ``--scan`` SGD steps (what a
distillation segment or PPO's minibatch scan compiles), with the `xla` Conv lowering as tdgen had
it (`lax.conv_general_dilated` differentiated by JAX) and as it is now (`conv_nhwc`: both
gradients as NHWC/HWIO convolutions), and with `im2col`. Each row also lists the dimension labels
of the compiled program's convolutions: labels other than ``b01f_01io->b01f`` are convolutions
XLA:CPU does not hand to its Eigen kernel (jax-ml/jax#12868).
"""

from __future__ import annotations

import argparse
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import tdgen.nets.layers as layers
from tdgen.nets import make_network
from tdgen.nets.conv import NHWC, conv_nhwc


def jax_conv(x, kernel, strides, padding):
    """The `xla` lowering before `conv_nhwc`: JAX differentiates XLA's convolution itself."""
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=NHWC)


LOWERINGS = {"xla, JAX's gradient": ("xla", jax_conv), "xla, conv_nhwc": ("xla", conv_nhwc),
             "im2col": ("im2col", conv_nhwc)}  # fmt: skip


def timed(fn, *args) -> tuple[float, float, set[str]]:
    """(compile seconds, run seconds after a warm-up run, convolution dimension labels)."""
    tick = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - tick
    jax.block_until_ready(compiled(*args))
    tick = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    labels = set(re.findall(r"dim_labels=([^,\s]+)", compiled.as_text()))
    return compile_s, time.perf_counter() - tick, labels


def programs(net, scan: int):
    """(the loss gradient, ``scan`` SGD steps on it in a lax.scan) of ``net``, as f(params, obs)."""

    def loss(p, obs):
        return -jnp.mean(jax.nn.log_softmax(net.apply(p, obs)))

    def loop(p, obs):
        def step(p, _):
            return jax.tree.map(lambda a, b: a - 1e-3 * b, p, jax.grad(loss)(p, obs)), None

        return lax.scan(step, p, None, length=scan)[0]

    return jax.grad(loss), loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="samples per gradient")
    parser.add_argument("--scan", type=int, default=2, help="SGD steps in the scanned loop")
    args = parser.parse_args()
    obs = np.random.default_rng(0).integers(0, 256, (args.batch, 64, 64, 3), np.uint8)
    obs = jnp.asarray(obs)
    print(f"jax {jax.__version__}, batch {args.batch}, scan of {args.scan}")
    print(f"{'lowering':>22s} {'where':>6s} {'compile s':>9s} {'s/grad':>8s}  labels")
    for name, (impl, conv) in LOWERINGS.items():
        layers.conv_nhwc = conv  # what Conv(impl="xla") calls
        net = make_network("impala", "policy", 15, conv_impl=impl)
        params = net.init(jax.random.PRNGKey(0), obs[:1])

        grad, loop = programs(net, args.scan)
        for where, fn, per in (("alone", grad, 1), ("scan", loop, args.scan)):
            compile_s, run_s, labels = timed(fn, params, obs)
            print(f"{name:>22s} {where:>6s} {compile_s:9.1f} {run_s / per:8.2f}  "
                  f"{', '.join(sorted(labels)) or '-'}", flush=True)  # fmt: skip
    layers.conv_nhwc = conv_nhwc


if __name__ == "__main__":
    main()
