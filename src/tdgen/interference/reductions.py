"""Output reductions: how a network's outputs at one state become the entry of the update matrix.

Appendix B.1 of the paper: Q-functions are vector-valued, so the change in a state's value is taken
over the max of the actions (the paper's default), their mean, a fixed action, or the action of the
transition; distributional heads are first reduced to their expected return; policies are compared
by the norm of the difference of their action probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tdgen.errors import InputError, unknown_name

REDUCTIONS = ("max", "mean", "action", "index", "expectation", "policy", "none")


class _NumpySoftmax:
    """numpy arrays (the torch instrument's outputs) are reduced with numpy, so the torch side
    never imports JAX; the same formulas as jax.nn.softmax."""

    @staticmethod
    def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


def _namespace(x: Any) -> tuple[Any, Any]:
    """(array module, nn module) for x: numpy for numpy arrays, JAX (imported then) otherwise."""
    if isinstance(x, np.ndarray):
        return np, _NumpySoftmax
    import jax
    import jax.numpy as jnp

    return jnp, jax.nn


@dataclass(frozen=True)
class Reduction:
    """A named output reduction with its extra arguments.

    `values(outputs, actions)` maps outputs of m states to per-state values: shape [m] for every
    reduction but "policy", whose values are action-probability vectors [m, A]. `difference(new,
    old)` is the update-matrix entry: new - old for scalars, ||new - old||_2 for "policy".
    Outputs are [m, A] ([m, A, atoms] for "expectation", [m] or [m, 1] for "none").
    """

    name: str
    action_index: int | None = None
    support: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.name not in REDUCTIONS:
            raise unknown_name("reduction", self.name, REDUCTIONS)
        if self.name == "index" and not isinstance(self.action_index, int | np.integer):
            raise InputError("reduce='index' needs action_index=<int>, the fixed action to read")
        if self.name == "expectation" and not self.support:
            raise InputError(
                "reduce='expectation' needs support=<atom values>, e.g. "
                "np.linspace(-10, 10, 51) for C51"
            )

    @property
    def is_vector(self) -> bool:
        return self.name == "policy"

    def check_outputs(self, shape: tuple[int, ...], m: int) -> None:
        """Raise a ValueError when apply_fn's output shape does not suit this reduction."""
        want = {
            "none": "[m] or [m, 1]",
            "expectation": "[m, actions, atoms]",
        }.get(self.name, "[m, actions]")
        ok = shape[:1] == (m,) and {
            "none": len(shape) == 1 or shape[1:] == (1,),
            "expectation": len(shape) == 3,
        }.get(self.name, len(shape) == 2)
        if not ok:
            raise InputError(
                f"apply_fn returned outputs of shape {shape} for {m} observations; "
                f"reduce={self.name!r} needs {want}"
            )
        if self.name == "index" and not 0 <= self.action_index < shape[1]:
            raise InputError(f"action_index={self.action_index} is outside [0, {shape[1]})")
        if self.name == "expectation" and len(self.support) != shape[2]:
            raise InputError(
                f"support has {len(self.support)} atoms but the outputs have {shape[2]}"
            )

    def values(self, outputs, actions=None):
        """Per-state values [m] (or probabilities [m, A]) of outputs [m, ...]: a jax.Array, or a
        numpy array computed with numpy (the torch instrument).

        outputs: [m, A] ([m, A, atoms] for "expectation", [m] or [m, 1] for "none"); actions:
        [m], read by "action" only. Returns [m], or [m, A] for "policy".
        """
        name, (xp, nn) = self.name, _namespace(outputs)
        if name == "none":
            return outputs.reshape(outputs.shape[0])
        if name == "policy":
            return nn.softmax(outputs, axis=-1)
        if name == "expectation":
            probs = nn.softmax(outputs, axis=-1)
            outputs = probs @ xp.asarray(self.support, outputs.dtype)
            return outputs.max(axis=-1)
        if name == "max":
            return outputs.max(axis=-1)
        if name == "mean":
            return outputs.mean(axis=-1)
        if name == "index":
            return outputs[:, self.action_index]
        return xp.take_along_axis(outputs, actions[:, None].astype(xp.int32), axis=1)[:, 0]

    def difference(self, new, old):
        """The update-matrix entry: new - old, or ||new - old||_2 over actions for "policy".

        new, old: values of `values`, [..., m] (or [..., m, A] for "policy"), broadcast together
        (e.g. new [c, m] against old [m]). Returns [..., m].
        """
        if self.is_vector:
            return _namespace(new)[0].linalg.norm(new - old, axis=-1)
        return new - old
