"""The generalisation gap between training and test levels: Eq. 6 of the paper (Sections 2, 6.2).

Sign convention of Eq. 6: gap = E_train[return] - E_test[return], so a positive gap means the
policy does worse on the test levels than on the levels it was trained on, and a smaller gap is
better generalisation (Figure 6 compares the PPO teacher's gap with its distilled student's).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from tdgen.errors import InputError
from tdgen.evaluate.robustness import plain_dict


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GeneralizationGap:
    """Means and standard errors of train and test returns and of their difference (scalars).

    gap = train_mean - test_mean (Eq. 6). Standard errors use the sample standard deviation
    (ddof=1) and are NaN from a single value. gap_stderr combines the two as independent samples,
    or, when `paired`, is the standard error of the per-entry differences train[i] - test[i].
    """

    train_mean: jax.Array
    train_stderr: jax.Array
    test_mean: jax.Array
    test_stderr: jax.Array
    gap: jax.Array
    gap_stderr: jax.Array
    paired: bool = dataclasses.field(default=False, metadata={"static": True})

    def as_dict(self) -> dict[str, float | bool]:
        """Plain Python numbers, for result.json."""
        return plain_dict(self)


def generalization_gap(train_returns, test_returns, *, paired: bool = False) -> GeneralizationGap:
    """Eq. 6 from returns [n_train] on training levels and [n_test] on test levels.

    Each entry is one independent estimate: an episode's return, or one seed's mean return (pass
    per-seed means for error bars across seeds). paired=True says entry i of both arrays comes
    from the same agent (e.g. seed i evaluated on both level sets); they must then have equal
    length, and the gap's error uses the differences, removing the between-seed variance.
    Jit-compatible (paired is static).
    """
    train, test = _returns(train_returns, "train_returns"), _returns(test_returns, "test_returns")
    if paired and train.shape != test.shape:
        raise InputError(
            f"paired returns need equal lengths, got {train.shape[0]} train and {test.shape[0]} test"
        )
    train_stderr, test_stderr = stderr(train), stderr(test)
    independent = jnp.sqrt(train_stderr**2 + test_stderr**2)
    gap_stderr = stderr(train - test) if paired else independent
    return GeneralizationGap(
        train_mean=jnp.mean(train),
        train_stderr=train_stderr,
        test_mean=jnp.mean(test),
        test_stderr=test_stderr,
        gap=jnp.mean(train) - jnp.mean(test),
        gap_stderr=gap_stderr,
        paired=paired,
    )


def stderr(x: jax.Array) -> jax.Array:
    """Standard error of the mean of x [n]: std(ddof=1) / sqrt(n); NaN when n = 1."""
    n = x.shape[0]
    if n < 2:
        return jnp.full((), jnp.nan, x.dtype)
    return jnp.std(x, ddof=1) / jnp.sqrt(n)


def _returns(returns, name: str) -> jax.Array:
    returns = jnp.asarray(returns)
    if returns.ndim != 1 or returns.shape[0] == 0:
        raise InputError(
            f"{name} must be a non-empty 1-D array of returns, got shape {returns.shape}"
        )
    if not jnp.issubdtype(returns.dtype, jnp.floating):
        returns = returns.astype(jnp.float32)
    return returns
