"""Observation 4.2 (section 4.3, appendix A.2): the second-order flow of discrete TD steps.

A tanh MLP on the circle MDP (features (cos, sin) of each state's angle) is trained by expected
semi-gradient TD over all states (Eq. 17). We integrate the first-order flow (Eq. 18) and the
modified flow `f + (alpha/2) f1` (Eq. 20, with `f1 = -J_f f`: see `tdgen.theory.second_order` for the
sign analysis; the paper's Eq. 19 as printed is `+J_f f`) with scipy's DOP853 at rtol 1e-11,
atol 1e-12 in float64, and compare with the discrete iterates at `t = n alpha`.

What is tested (Observation 4.2 writes `O((n alpha)^3)`, which at fixed `T = n alpha` says nothing
about alpha; the backward-error statement it rests on is a local error O(alpha^3) per step):
- local (one step, t = alpha): first-order error ~ alpha^2, modified ~ alpha^3;
- global (fixed horizon T, n = T / alpha steps): first-order error ~ alpha, modified ~ alpha^2.
Slopes are least-squares fits of log error on log alpha over the sweep's alphas <= `fit_max_alpha`
(the asymptotic range; larger alphas are measured and reported but not fitted).

Corollary A.1 says the second-order term implicitly minimises Eq. 41,
`E_x[g(x).g(x) - gamma g(x).(P g)(x)]` with `g(x) = grad_theta V(x)` (uniform over states here): i.e.
smaller gradient norms relative to the alignment of each state's gradient with its successor's.
We measure this objective at T on the discrete iterates, the first-order flow and the modified flow,
and the rate `<grad Eq41, (alpha/2) f1>` (split into the two terms of Eq. 19) along the trajectory.

Finding (quick preset, inits 0 and 1): the objective at T is lower with the correction for every
alpha, but Eq. 41 *rises* during training on all three paths (the correction only slows that), the
mean successor cosine goes slightly *up* (so "less alignment" is not what Eq. 41 measures), and the
instantaneous rate is not of one sign along the run; which Eq. 19 term lowers it differs by init.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.errors import InputError
from tdgen.experiments.base import Claim, Experiment, Outcome, TheoryConfig
from tdgen.theory.mdp import circle_mdp
from tdgen.theory.second_order import TDSystem, integrate_flow


@dataclass(frozen=True)
class Config(TheoryConfig):
    """Observation 4.2 settings; the paper gives none, so these are small and stated here."""

    num_states: int = 10  # circle MDP length (one action, s -> s+1 mod n)
    reward_state: int = 5  # 0-based state paying reward 1 on leaving it
    gamma: float = 0.9  # discount
    hidden_sizes: tuple[int, ...] = (16, 16)  # tanh MLP widths; input (cos, sin), output 1
    num_inits: int = 2  # network initialisations (seeds seed, seed+1, ...), each checked
    horizon: float = 2.0  # T = n alpha, the fixed time at which global errors are compared
    alphas: tuple[float, ...] = (0.04, 0.02, 0.01, 0.005, 0.0025)  # step sizes swept
    fit_max_alpha: float = 0.02  # slopes are fitted on alphas <= this (asymptotic range)
    num_checkpoints: int = 10  # times k T / num_checkpoints at which trajectories are compared
    rtol: float = 1e-11  # solve_ivp (DOP853) relative tolerance
    atol: float = 1e-12  # solve_ivp absolute tolerance
    slope_first_global: tuple[float, float] = (0.8, 1.2)  # accepted range, first-order, fixed T
    slope_modified_global: tuple[float, float] = (1.8, 2.3)  # accepted range, modified, fixed T
    slope_first_local: tuple[float, float] = (1.8, 2.3)  # accepted range, first-order, one step
    slope_modified_local: tuple[float, float] = (2.8, 3.3)  # accepted range, modified, one step

    def __post_init__(self) -> None:
        if not 0 <= self.reward_state < self.num_states:
            raise InputError(f"reward_state must lie in [0, num_states={self.num_states})")
        if sum(a <= self.fit_max_alpha for a in self.alphas) < 2:
            raise InputError("alphas needs at least two values <= fit_max_alpha to fit a slope")
        for alpha in self.alphas:
            steps = self.horizon / (self.num_checkpoints * alpha)
            if alpha <= 0 or abs(steps - round(steps)) > 1e-9:
                raise InputError(
                    f"alphas: horizon / num_checkpoints = {self.horizon / self.num_checkpoints:g} "
                    f"must be a whole number of steps of alpha = {alpha:g}"
                )

    @classmethod
    def paper(cls) -> Config:
        return cls(num_inits=4, alphas=(0.04, 0.02, 0.01, 0.005, 0.0025, 0.00125))


def make_system(config: Config) -> TDSystem:
    """The circle MDP with (cos, sin) state features and the config's MLP."""
    mdp = circle_mdp(config.num_states, config.reward_state, config.gamma)
    policy = np.zeros(config.num_states, dtype=int)
    angle = 2 * np.pi * np.arange(config.num_states) / config.num_states
    features = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return TDSystem(features, mdp.P_pi(policy), mdp.R_pi(policy), config.gamma, config.hidden_sizes)


def _alignment_rates(system: TDSystem, theta: np.ndarray, alpha: float) -> dict[str, float]:
    """d(Eq. 41)/dt due to the correction (alpha/2) f1 and to each of its two terms."""
    grad_q = system.alignment_objective_grad(theta)
    penalty, gamma_term = system.grad_norm_penalty_grad(theta), system.gamma_term(theta)
    return {
        "correction": float(grad_q @ (-0.5 * alpha * (penalty + gamma_term))),
        "penalty_term": float(grad_q @ (-0.5 * alpha * penalty)),
        "gamma_term": float(grad_q @ (-0.5 * alpha * gamma_term)),
        "first_order": float(grad_q @ system.f(theta)),
    }


def measure_init(system: TDSystem, theta0: np.ndarray, config: Config) -> dict[str, Any]:
    """Trajectories, errors and Eq. 41 statistics for one initialisation and every alpha."""
    T, k = config.horizon, config.num_checkpoints
    times = np.linspace(0.0, T, k + 1)
    rows = []
    for alpha in config.alphas:
        n = int(round(T / alpha))
        stride = n // k
        discrete = system.iterate(theta0, alpha, n)[::stride]
        first = integrate_flow(system, theta0, times, 0.0, config.rtol, config.atol)
        modified = integrate_flow(system, theta0, times, alpha, config.rtol, config.atol)
        one_step = np.array([0.0, alpha])
        step = system.discrete_step(theta0, alpha)
        first_1 = integrate_flow(system, theta0, one_step, 0.0, config.rtol, config.atol)[-1]
        modified_1 = integrate_flow(system, theta0, one_step, alpha, config.rtol, config.atol)[-1]
        paths = {"discrete": discrete, "first_order": first, "modified": modified}
        rows.append(
            {
                "alpha": alpha,
                "steps": n,
                "times": times,
                "error_first": np.linalg.norm(discrete - first, axis=1),
                "error_modified": np.linalg.norm(discrete - modified, axis=1),
                "value_error_first": _value_error(system, discrete, first),
                "value_error_modified": _value_error(system, discrete, modified),
                "local_error_first": float(np.linalg.norm(step - first_1)),
                "local_error_modified": float(np.linalg.norm(step - modified_1)),
                "alignment": {
                    name: [system.gradient_alignment(theta) for theta in path]
                    for name, path in paths.items()
                },
                "td_error_norm": [float(np.linalg.norm(system.td_error(t))) for t in discrete],
                "rates": [_alignment_rates(system, theta, alpha) for theta in discrete[:-1]],
            }
        )
    return {"rows": rows, "param_norm": float(np.linalg.norm(theta0))}


def _value_error(system: TDSystem, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [np.max(np.abs(system.values(x) - system.values(y))) for x, y in zip(a, b, strict=True)]
    )


def measure(config: Config, seed: int) -> dict[str, Any]:
    """Every number of the experiment, per initialisation seed."""
    system = make_system(config)
    inits = {}
    for i in range(config.num_inits):
        theta0 = system.init_params(seed + i)
        inits[str(seed + i)] = measure_init(system, theta0, config)
        inits[str(seed + i)]["ntk_max_eigenvalue"] = _ntk_max_eigenvalue(system, theta0)
    return {"inits": inits, "num_params": system.num_params}


def _ntk_max_eigenvalue(system: TDSystem, theta: np.ndarray) -> float:
    """Largest eigenvalue of grad V grad V^T at theta: alpha * this says how large a step is."""
    G = system.value_jacobian(theta)
    return float(np.linalg.eigvalsh(G @ G.T).max())


def fit_slope(alphas: np.ndarray, errors: np.ndarray) -> float:
    """Least-squares slope of log(error) on log(alpha)."""
    return float(np.polyfit(np.log(alphas), np.log(errors), 1)[0])


def _slopes(rows: list[dict[str, Any]], config: Config) -> dict[str, float]:
    fit = [r for r in rows if r["alpha"] <= config.fit_max_alpha + 1e-15]
    alphas = np.array([r["alpha"] for r in fit])
    return {
        "global_first": fit_slope(alphas, [r["error_first"][-1] for r in fit]),
        "global_modified": fit_slope(alphas, [r["error_modified"][-1] for r in fit]),
        "local_first": fit_slope(alphas, [r["local_error_first"] for r in fit]),
        "local_modified": fit_slope(alphas, [r["local_error_modified"] for r in fit]),
    }


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    return bool(bounds[0] <= value <= bounds[1])


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Claims (a) tracking, (b) step-size slopes, (c) Eq. 41 direction, by the stated rules."""
    inits = measurements["inits"]
    track_ok, track_ev = True, {}
    slope_ok, slope_ev = True, {}
    align_ok, align_ev = True, {}
    for name, m in inits.items():
        rows = m["rows"]
        ratios = {}
        for r in rows:
            first, modified = np.asarray(r["error_first"][1:]), np.asarray(r["error_modified"][1:])
            track_ok &= bool(np.all(modified < first))
            ratios[f"alpha={r['alpha']:g}"] = {
                "error_first_at_T": float(first[-1]),
                "error_modified_at_T": float(modified[-1]),
                "max_ratio_modified_over_first": float(np.max(modified / first)),
            }
        track_ev[f"init={name}"] = ratios

        slopes = _slopes(rows, config)
        slope_ok &= (
            _inside(slopes["global_first"], config.slope_first_global)
            and _inside(slopes["global_modified"], config.slope_modified_global)
            and _inside(slopes["local_first"], config.slope_first_local)
            and _inside(slopes["local_modified"], config.slope_modified_local)
        )
        all_alphas = np.array([r["alpha"] for r in rows])
        slope_ev[f"init={name}"] = {
            **slopes,
            "global_first_all_alphas": fit_slope(all_alphas, [r["error_first"][-1] for r in rows]),
            "global_modified_all_alphas": fit_slope(
                all_alphas, [r["error_modified"][-1] for r in rows]
            ),
            "alpha_times_ntk_max_eigenvalue": [
                float(a * m.get("ntk_max_eigenvalue", np.nan)) for a in all_alphas
            ],
        }

        per_alpha = {}
        for r in rows:
            q = {k: v[-1]["objective"] for k, v in r["alignment"].items()}
            cos = {k: v[-1]["successor_cosine"] for k, v in r["alignment"].items()}
            align_ok &= q["modified"] < q["first_order"] and q["discrete"] < q["first_order"]
            rates = r["rates"]
            per_alpha[f"alpha={r['alpha']:g}"] = {
                "eq41_at_T": q,
                "successor_cosine_at_T": cos,
                "eq41_at_0": r["alignment"]["discrete"][0]["objective"],
                "mean_rate_correction": float(np.mean([x["correction"] for x in rates])),
                "mean_rate_penalty_term": float(np.mean([x["penalty_term"] for x in rates])),
                "mean_rate_gamma_term": float(np.mean([x["gamma_term"] for x in rates])),
                "fraction_rate_correction_negative": float(
                    np.mean([x["correction"] < 0 for x in rates])
                ),
            }
        align_ev[f"init={name}"] = per_alpha

    fit_alphas = [a for a in config.alphas if a <= config.fit_max_alpha]
    return [
        Claim(
            "modified_flow_tracks_discrete_iterates",
            "For every initialisation, alpha and checkpoint t = k T/"
            f"{config.num_checkpoints} (k >= 1, T = {config.horizon:g}), the parameter distance "
            "from the discrete TD iterates (Eq. 17) to the modified flow (Eq. 20) is smaller than "
            "to the first-order flow (Eq. 18).",
            track_ok,
            track_ev,
        ),
        Claim(
            "error_slopes_match_observation_4_2",
            f"Fitted on alphas {fit_alphas} for every initialisation: at fixed T = "
            f"{config.horizon:g}, the log-log slope of the first-order flow's error lies in "
            f"{list(config.slope_first_global)} and the modified flow's in "
            f"{list(config.slope_modified_global)}; after one step (t = alpha) they lie in "
            f"{list(config.slope_first_local)} and {list(config.slope_modified_local)}.",
            slope_ok,
            slope_ev,
        ),
        Claim(
            "correction_lowers_eq41_objective",
            "Corollary A.1 direction: for every initialisation and alpha, the Eq. 41 objective "
            "mean_x[g.g - gamma g.(P g)] (g = grad_theta V, uniform over states) at T is lower on "
            "the modified flow and on the discrete iterates than on the first-order flow.",
            align_ok,
            align_ev,
        ),
    ]


_PATH_STYLE = {  # colour, line style, marker: readable in greyscale
    "discrete": (plots.COLORS[0], "-", ""),
    "first_order": (plots.COLORS[1], "-", "o"),
    "modified": (plots.COLORS[2], "--", "s"),
}


def _alpha_axis(ax, alphas: np.ndarray) -> None:
    ax.set(xscale="log", yscale="log", xlabel=r"step size $\alpha$")
    ax.set_xticks(alphas, [f"{a:g}" for a in alphas], minor=False)
    ax.set_xticks([], minor=True)


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """Errors vs alpha (global, local), error vs time, Eq. 41 and successor cosine vs time."""
    name, m = next(iter(measurements["inits"].items()))
    rows = m["rows"]
    alphas = np.array([r["alpha"] for r in rows])
    with plots.style():
        fig, axes = plots.figure(2, 3, width=3.0, height=2.5)
        for ax, first_key, modified_key, title, ylabel in (
            (
                axes[0, 0],
                "error_first",
                "error_modified",
                "global error, every init (dotted: slopes 1, 2)",
                rf"$\|\theta_n - \theta(n\alpha)\|$ at $n\alpha$={config.horizon:g}",
            ),
            (
                axes[0, 1],
                "local_error_first",
                "local_error_modified",
                "error after one step (dotted: slopes 2, 3)",
                r"$\|\theta_1 - \theta(\alpha)\|$",
            ),
        ):
            for i, mi in enumerate(measurements["inits"].values()):
                for key, path in ((first_key, "first_order"), (modified_key, "modified")):
                    color, ls, marker = _PATH_STYLE[path]
                    errs = [np.asarray(r[key]).reshape(-1)[-1] for r in mi["rows"]]
                    label = "first-order flow" if path == "first_order" else "modified flow"
                    ax.plot(
                        alphas,
                        errs,
                        color=color,
                        ls=ls,
                        marker=marker,
                        label=label if i == 0 else None,
                        alpha=1.0 if i == 0 else 0.5,
                    )
            local = first_key.startswith("local")
            for key, order in ((first_key, 1 + local), (modified_key, 2 + local)):
                ref = np.asarray(rows[1][key]).reshape(-1)[-1]
                ax.plot(alphas, ref * (alphas / alphas[1]) ** order, ":", color="0.5")
            _alpha_axis(ax, alphas)
            ax.set(ylabel=ylabel, title=title)
            ax.legend()
        ax = axes[0, 2]
        r0 = rows[0]
        for key, path in (("error_first", "first_order"), ("error_modified", "modified")):
            color, ls, marker = _PATH_STYLE[path]
            ax.plot(
                r0["times"][1:],
                np.asarray(r0[key])[1:],
                color=color,
                ls=ls,
                marker=marker,
                label="first-order flow" if path == "first_order" else "modified flow",
            )
        ax.set(yscale="log", xlabel=r"time $t = n\alpha$", ylabel="distance to discrete iterate")
        ax.set_title(rf"error along the run, $\alpha$={r0['alpha']:g}, init {name}")
        ax.legend()
        for ax, key, ylabel in (
            (axes[1, 0], "objective", r"Eq. 41: E[$g^\top g - \gamma g^\top Pg$]"),
            (axes[1, 1], "successor_cosine", r"E[cos($g(x)$, $(Pg)(x)$)]"),
        ):
            for path, (color, ls, marker) in _PATH_STYLE.items():
                values = [a[key] for a in r0["alignment"][path]]
                ax.plot(
                    r0["times"],
                    values,
                    color=color,
                    ls=ls,
                    marker=marker,
                    lw=2.5 if path == "discrete" else 1.2,
                    label=path.replace("_", "-"),
                )
            ax.set(xlabel=r"time $t = n\alpha$", ylabel=ylabel)
            ax.set_title(rf"$g = \nabla_\theta V$; $\alpha$={r0['alpha']:g}, init {name}")
            ax.legend()
        ax = axes[1, 2]
        for r in rows:
            ax.plot(r["times"], r["td_error_norm"], label=rf"$\alpha$={r['alpha']:g}")
        ax.set(xlabel=r"time $t = n\alpha$", ylabel=r"$\|(\gamma P - I)V + R\|$")
        ax.set_title("TD error of the discrete iterates")
        ax.legend()
        fig.suptitle(
            f"Observation 4.2: discrete TD vs first-order and modified flows (circle MDP, "
            f"{config.num_states} states, tanh MLP {list(config.hidden_sizes)})",
            fontsize=9,
        )
        return [plots.save(fig, out_dir / "obs42_second_order_dynamics.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Measure, plot and check Observation 4.2 for `num_inits` initialisations from `seed`."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    measurements = measure(config, seed)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    summary = {
        "num_params": measurements["num_params"],
        "slopes": {k: _slopes(m["rows"], config) for k, m in measurements["inits"].items()},
        "seconds_measure_and_plot": time.perf_counter() - start,
    }
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="obs42_second_order_dynamics",
    paper_ref="Observation 4.2, Section 4.3",
    description="Discrete TD vs first-order and modified (alpha/2 f1) flows for a tanh MLP",
    config_type=Config,
    run=run,
    kind="theory",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "fit_slope", "make_system", "measure", "run"]
