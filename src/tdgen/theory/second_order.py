"""The second-order (implicit-regularisation) term of discrete TD steps (Observation 4.2, app. A.2).

A small tanh MLP `V_theta` with flat parameters `theta` `[p]` evaluates the states' feature vectors
`X` `[S, d]`; `P` `[S, S]` is `P^pi`, `R` `[S]` is `R^pi`. Then

- `td_map` is the semi-gradient TD field `f(theta) = grad V^T [(gamma P - I) V + R]` (Eq. 18), and
  `theta <- theta + alpha f(theta)` is the discrete update (Eq. 17);
- backward-error analysis (Barrett & Dherin 2021): the flow `dtheta/dt = f + alpha g` whose time-alpha
  map matches one step to O(alpha^3) has `alpha f + alpha^2 g + (alpha^2 / 2) J_f f = alpha f`, so
  `g = -(1/2) J_f f`, where `J_f` is the Jacobian of `f` *including* the bootstrap target's dependence
  on `theta` (the `gamma P` part). Hence, writing the modified flow as the paper's Eq. 20,
  `dtheta/dt = f + (alpha/2) f1`, forces `f1 = -J_f f`.
- `J_f f` splits exactly into the two terms printed in Eq. 19 (Eq. 37-39):
  `J_f f = (1/2) grad ||grad TD(theta)||^2 + gamma (grad V^T P grad V) f`, with
  `TD(theta) = (1/2)||V_theta - stop(T^pi V_theta)||^2`. So the paper's decomposition is right, but
  Eq. 19 as printed is `+J_f f`: with it, Eq. 20 has the wrong sign. The consistent statement is
  `f1 = -[(1/2) grad ||grad TD||^2 + gamma (grad V^T P grad V) f]`, i.e. the discrete iterates follow
  gradient *descent* on the gradient-norm penalty (the "penalty" reading of the text), plus
  `-(alpha gamma / 2) grad V^T P grad V f`. (The proof's Eq. 32-33 also writes alpha^2/2 for alpha/2.)
  `paper_eq19` returns the printed expression; `f1_closed_form` and `f1_jvp` return `-J_f f`.

Precision: every function here runs inside `jax.enable_x64(True)` (a context manager, never a
global flag) on float64 arrays, because the step-size slopes need errors down to ~1e-9 and the flows
are integrated with rtol ~1e-11. Results come back as float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

from tdgen.errors import InputError


def num_params(sizes: Sequence[int]) -> int:
    """Number of weights and biases of an MLP with layer widths `sizes` (input first, output 1)."""
    return int(sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:], strict=True)))


def init_mlp_params(sizes: Sequence[int], seed: int, bias_scale: float = 0.1) -> np.ndarray:
    """Flat float64 parameters: LeCun-normal weights, N(0, bias_scale^2) biases; `[p]`.

    Non-zero biases keep the tanh units away from their symmetric point, so the Hessian term of
    `J_f` is not degenerate at initialisation.
    """
    rng = np.random.default_rng(seed)
    chunks = []
    for m, n in zip(sizes[:-1], sizes[1:], strict=True):
        chunks.append(rng.standard_normal(m * n) / np.sqrt(m))
        chunks.append(bias_scale * rng.standard_normal(n))
    return np.concatenate(chunks).astype(np.float64)


def mlp_value(theta: jnp.ndarray, X: jnp.ndarray, sizes: tuple[int, ...]) -> jnp.ndarray:
    """`V_theta(X)` `[S]` of a tanh MLP with linear output; `theta` `[p]`, `X` `[S, d]`."""
    h, start = X, 0
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        W = theta[start : start + m * n].reshape(m, n)
        b = theta[start + m * n : start + m * n + n]
        start += m * n + n
        h = h @ W + b
        if i < len(sizes) - 2:
            h = jnp.tanh(h)
    return h[:, 0]


def _values(theta, problem, sizes):
    return mlp_value(theta, problem["X"], sizes)


def _td_error(theta, problem, sizes):
    """`delta = (gamma P - I) V + R` `[S]`."""
    V = _values(theta, problem, sizes)
    return problem["R"] + problem["gamma"] * problem["P"] @ V - V


def _td_map(theta, problem, sizes):
    """Eq. 18: `f = grad V^T delta`, as a vector-Jacobian product `[p]`."""
    V, vjp = jax.vjp(lambda th: _values(th, problem, sizes), theta)
    delta = problem["R"] + problem["gamma"] * problem["P"] @ V - V
    return vjp(delta)[0]


def _jf_f(theta, problem, sizes):
    """`J_f f` by one forward-mode product through `f` (target not stopped)."""
    f = lambda th: _td_map(th, problem, sizes)  # noqa: E731
    return jax.jvp(f, (theta,), (f(theta),))[1]


def _grad_norm_penalty_grad(theta, problem, sizes):
    """`(1/2) grad ||grad TD(theta)||^2` with the TD target `T^pi V_theta` stopped (Eq. 39)."""
    V = _values(theta, problem, sizes)
    target = jax.lax.stop_gradient(problem["R"] + problem["gamma"] * problem["P"] @ V)

    def penalty(th):
        td_grad = jax.grad(lambda t: 0.5 * jnp.sum((_values(t, problem, sizes) - target) ** 2))(th)
        return 0.5 * jnp.sum(td_grad**2)

    return jax.grad(penalty)(theta)


def _gamma_term(theta, problem, sizes):
    """`gamma (grad V^T P grad V) f` `[p]` (second term of Eq. 19)."""
    values = lambda th: _values(th, problem, sizes)  # noqa: E731
    f = _td_map(theta, problem, sizes)
    _, Gf = jax.jvp(values, (theta,), (f,))
    _, vjp = jax.vjp(values, theta)
    return problem["gamma"] * vjp(problem["P"] @ Gf)[0]


def _modified_field(theta, alpha, problem, sizes):
    """Eq. 20 with the consistent sign: `f + (alpha/2) f1 = f - (alpha/2) J_f f`."""
    f = lambda th: _td_map(th, problem, sizes)  # noqa: E731
    f0, jf_f = jax.jvp(f, (theta,), (f(theta),))
    return f0 - 0.5 * alpha * jf_f


def _iterate(theta0, alpha, num_steps, problem, sizes):
    """Discrete TD iterates (Eq. 17) `[num_steps + 1, p]`."""

    def _td_step(theta, _):
        theta = theta + alpha * _td_map(theta, problem, sizes)
        return theta, theta

    _, thetas = jax.lax.scan(_td_step, theta0, None, length=num_steps)
    return jnp.concatenate([theta0[None], thetas])


def _gradient_alignment(theta, problem, sizes):
    """Eq. 41 and its parts with `g(x) = grad V(x)`, uniform over the S states.

    Returns `[objective, mean g.g, mean g.(P g), mean cos(g(x), (P g)(x))]`; the objective is
    `mean_x [g(x).g(x) - gamma g(x).(P g)(x)]`.
    """
    G = jax.jacrev(lambda th: _values(th, problem, sizes))(theta)
    PG = problem["P"] @ G
    norm = jnp.mean(jnp.sum(G * G, axis=1))
    dot = jnp.mean(jnp.sum(G * PG, axis=1))
    cos = jnp.mean(
        jnp.sum(G * PG, axis=1)
        / (jnp.linalg.norm(G, axis=1) * jnp.linalg.norm(PG, axis=1) + 1e-300)
    )
    return jnp.stack([norm - problem["gamma"] * dot, norm, dot, cos])


_JITTED = {
    name: jax.jit(fn, static_argnames="sizes")
    for name, fn in {
        "values": _values,
        "td_error": _td_error,
        "value_jacobian": lambda theta, problem, sizes: jax.jacrev(_values)(theta, problem, sizes),
        "td_map": _td_map,
        "jf_f": _jf_f,
        "grad_norm_penalty_grad": _grad_norm_penalty_grad,
        "gamma_term": _gamma_term,
        "modified_field": _modified_field,
        "gradient_alignment": _gradient_alignment,
    }.items()
}
_JITTED["iterate"] = jax.jit(_iterate, static_argnames=("sizes", "num_steps"))
_JITTED["alignment_objective_grad"] = jax.jit(
    jax.grad(lambda th, problem, sizes: _gradient_alignment(th, problem, sizes)[0]),
    static_argnames="sizes",
)


@dataclass(frozen=True, eq=False)
class TDSystem:
    """Semi-gradient TD on a finite MDP with a tanh MLP; numpy in, float64 numpy out.

    `features` `[S, d]`, `P` `[S, S]` (row-stochastic `P^pi`), `R` `[S]`, `gamma` in [0, 1), `sizes`
    the hidden widths (input `d` and output 1 are added). Every state is updated (sum over states).
    """

    features: np.ndarray
    P: np.ndarray
    R: np.ndarray
    gamma: float
    hidden_sizes: tuple[int, ...] = (16, 16)

    def __post_init__(self) -> None:
        X = np.asarray(self.features, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        P = np.asarray(self.P, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        S = X.shape[0]
        if P.shape != (S, S):
            raise InputError(f"P must be [S, S] = {(S, S)} to match features, got {P.shape}")
        if R.shape != (S,):
            raise InputError(f"R must be [S] = ({S},), got {R.shape}")
        if not np.allclose(P.sum(axis=1), 1.0, atol=1e-8) or np.any(P < 0):
            raise InputError("P must be row-stochastic (non-negative rows summing to 1)")
        if not 0.0 <= float(self.gamma) < 1.0:
            raise InputError(f"gamma must lie in [0, 1), got {self.gamma}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise InputError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        object.__setattr__(self, "features", X)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        with jax.enable_x64(True):  # device copies stay float64 outside the context
            problem = {
                "X": jnp.asarray(X),
                "P": jnp.asarray(P),
                "R": jnp.asarray(R),
                "gamma": jnp.asarray(self.gamma, dtype=jnp.float64),
            }
        object.__setattr__(self, "_problem", problem)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.features.shape[1], *self.hidden_sizes, 1)

    @property
    def num_params(self) -> int:
        return num_params(self.sizes)

    def init_params(self, seed: int, bias_scale: float = 0.1) -> np.ndarray:
        return init_mlp_params(self.sizes, seed, bias_scale)

    def _call(self, name: str, theta: np.ndarray, *args, **kwargs) -> np.ndarray:
        with jax.enable_x64(True):
            theta = jnp.asarray(theta, dtype=jnp.float64)
            args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in args)
            out = _JITTED[name](theta, *args, problem=self._problem, sizes=self.sizes, **kwargs)
            return np.asarray(out, dtype=np.float64)

    def values(self, theta: np.ndarray) -> np.ndarray:
        """`V_theta` `[S]`."""
        return self._call("values", theta)

    def value_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """`grad_theta V` `[S, p]`."""
        return self._call("value_jacobian", theta)

    def td_error(self, theta: np.ndarray) -> np.ndarray:
        """`(gamma P - I) V_theta + R` `[S]`."""
        return self._call("td_error", theta)

    def f(self, theta: np.ndarray) -> np.ndarray:
        """The semi-gradient TD field of Eq. 18 `[p]`."""
        return self._call("td_map", theta)

    def discrete_step(self, theta: np.ndarray, alpha: float) -> np.ndarray:
        """One update of Eq. 17: `theta + alpha f(theta)`."""
        return np.asarray(theta, dtype=np.float64) + alpha * self.f(theta)

    def iterate(self, theta0: np.ndarray, alpha: float, num_steps: int) -> np.ndarray:
        """`num_steps` updates of Eq. 17 from `theta0`: `[num_steps + 1, p]` (row 0 is theta0)."""
        return self._call("iterate", theta0, alpha, num_steps=int(num_steps))

    def grad_norm_penalty_grad(self, theta: np.ndarray) -> np.ndarray:
        """First term of Eq. 19: `(1/2) grad ||grad TD(theta)||^2`, target stopped `[p]`."""
        return self._call("grad_norm_penalty_grad", theta)

    def gamma_term(self, theta: np.ndarray) -> np.ndarray:
        """Second term of Eq. 19: `gamma (grad V^T P grad V) f` `[p]`."""
        return self._call("gamma_term", theta)

    def paper_eq19(self, theta: np.ndarray) -> np.ndarray:
        """Eq. 19 exactly as printed (sum of its two terms); equals `+J_f f`."""
        return self.grad_norm_penalty_grad(theta) + self.gamma_term(theta)

    def f1_closed_form(self, theta: np.ndarray) -> np.ndarray:
        """`f1` such that Eq. 20, `f + (alpha/2) f1`, is the modified flow: minus Eq. 19."""
        return -self.paper_eq19(theta)

    def f1_jvp(self, theta: np.ndarray) -> np.ndarray:
        """`f1 = -J_f f` by a Jacobian-vector product through `f`."""
        return -self._call("jf_f", theta)

    def f1_discrete_difference(self, theta: np.ndarray, alpha: float) -> np.ndarray:
        """`f1` from two discrete steps: `theta_2 = theta_0 + 2 alpha f + alpha^2 J_f f + O(alpha^3)`.

        Returns `-(theta_2 - theta_0 - 2 alpha f(theta_0)) / alpha^2`; its error is O(alpha).
        """
        theta_2 = self.iterate(theta, alpha, 2)[-1]
        return -(theta_2 - theta - 2 * alpha * self.f(theta)) / alpha**2

    def modified_field(self, theta: np.ndarray, alpha: float) -> np.ndarray:
        """Right-hand side of Eq. 20, `f + (alpha/2) f1` (alpha = 0: the first-order flow, Eq. 18)."""
        return self._call("modified_field", theta, alpha)

    def gradient_alignment(self, theta: np.ndarray) -> dict[str, float]:
        """Eq. 41 objective and its parts for `g(x) = grad V(x)`, uniform weight over states.

        `objective = mean_x [g.g - gamma g.(P g)]`, `grad_norm = mean_x g.g`,
        `successor_dot = mean_x g.(P g)`, `successor_cosine = mean_x cos(g(x), (P g)(x))`.
        """
        out = self._call("gradient_alignment", theta)
        keys = ("objective", "grad_norm", "successor_dot", "successor_cosine")
        return dict(zip(keys, (float(v) for v in out), strict=True))

    def alignment_objective_grad(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of the Eq. 41 objective w.r.t. theta `[p]`."""
        return self._call("alignment_objective_grad", theta)


def integrate_flow(
    system: TDSystem,
    theta0: np.ndarray,
    times: np.ndarray,
    alpha: float = 0.0,
    rtol: float = 1e-11,
    atol: float = 1e-12,
    method: str = "DOP853",
) -> np.ndarray:
    """Integrate `dtheta/dt = f + (alpha/2) f1` (alpha = 0: Eq. 18; else Eq. 20) `[len(times), p]`.

    scipy `solve_ivp` (default DOP853, order 8) with the given `rtol`/`atol`, from t = 0 to
    `max(times)`, evaluated at `times` by dense output-free `t_eval`.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or np.any(times < 0) or np.any(np.diff(times) < 0):
        raise InputError("times must be a non-decreasing 1-D array of non-negative times")
    if alpha < 0:
        raise InputError(f"alpha must be >= 0, got {alpha}")
    rhs = partial(_flow_rhs, system, float(alpha))
    solution = scipy.integrate.solve_ivp(
        rhs,
        (0.0, float(times[-1])),
        np.asarray(theta0, dtype=np.float64),
        method=method,
        t_eval=times,
        rtol=rtol,
        atol=atol,
    )
    if not solution.success:
        raise RuntimeError(f"flow integration failed: {solution.message}")
    return solution.y.T


def _flow_rhs(system: TDSystem, alpha: float, _t: float, theta: np.ndarray) -> np.ndarray:
    return system.modified_field(theta, alpha)


__all__ = [
    "TDSystem",
    "init_mlp_params",
    "integrate_flow",
    "mlp_value",
    "num_params",
]
