"""Figure 9 (appendix C.2): kernel TD and kernel MC with an RBF kernel on the circle MDP.

Circle of 50 states, one action `n -> n+1 mod 50`, reward 1 on leaving state 25 (paper 1-based);
updates on states 1-40 only, test states 41-50 move through `K(X_test, X_train)` (Theorem 4.2,
Eq. 16). RBF on the integer state coordinates with Euclidean distance: a circular distance makes the
Gaussian kernel indefinite, and then Monte Carlo diverges too. `V_0 = 0`.

Step size: the paper states none. We use `eta = step_fraction / lambda_max(K_train)` per
lengthscale, the same for TD and MC; `step_fraction < 2` is exactly the range where kernel MC on the
training states is stable, which the paper's MC panels (no divergence in 1500 steps) require.

Finding (the divergence claim does not hold here): with lengthscale 100, `K_train` has numerical
rank ~6 (condition number ~4e18). The TD iteration matrix `B = (gamma P - I)[train] K(X, X_train)`
has, in float, largest real eigenvalue ~1e-16 (numerical zero) and all others negative; a 200-digit
computation (mpmath, done offline) gives all 40 eigenvalues real and negative, from -0.392 down to
-5e-134. So continuous kernel TD is stable, and discrete TD is stable for every `eta < 2/0.392`,
i.e. far beyond the MC stability limit `2 / lambda_max(K_train) = 0.051`. Within MC-stable step sizes,
TD overshoots V^pi slowly (after thousands of steps) but does not diverge. The Eq. 51 form with
`K_train^-1` is numerically meaningless at this conditioning: it corrupts MC's test predictions
(~10x V^pi) as much as TD's, so it does not give "TD diverges, MC does not" either. The evidence of
the claim records these numbers for several step sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.errors import InputError
from tdgen.experiments.base import Claim, Experiment, Outcome, TheoryConfig
from tdgen.theory import kernels
from tdgen.theory.mdp import circle_mdp


@dataclass(frozen=True)
class Config(TheoryConfig):
    """Figure 9 settings (caption of Figure 9, appendix C.2); the whole figure costs < 1 s."""

    num_states: int = 50  # circle length; states 1..num_states (paper numbering)
    num_train: int = 40  # states 1..num_train are updated, the rest are test states
    reward_state: int = 25  # paper 1-based index of the single reward
    lengthscales: tuple[float, ...] = (0.01, 1.0, 100.0)  # RBF lengthscales, panel columns
    gammas: tuple[float, ...] = (0.5, 0.99)  # discounts, panel rows
    td_steps: tuple[int, ...] = (20, 100)  # TD update counts, one figure each
    mc_steps: int = 1500  # MC update count on every figure
    step_fraction: float = 1.0  # eta = step_fraction / lambda_max(K_train); MC stable iff < 2
    sweep_step_fractions: tuple[float, ...] = (0.25, 1.0, 1.9, 10.0, 100.0, 250.0)  # sensitivity
    sweep_steps: int = 2000  # TD/MC steps in the step-size sweep
    diverge_factor: float = (
        10.0  # "diverges": sup |V| > diverge_factor * sup |V^pi| (or non-finite)
    )
    bounded_factor: float = 2.0  # "does not diverge": sup |V| <= bounded_factor * sup |V^pi|
    fit_tol: float = 0.01  # "fits"/"about zero": within fit_tol * sup |V^pi|
    jump_miss: float = 0.5  # "misses the jump": fitted jump < jump_miss * true jump
    negligible_test: float = (
        0.1  # test error compared only where sup |V^pi(test)| >= this * sup|V^pi|
    )

    def __post_init__(self) -> None:
        if not 0 < self.num_train < self.num_states:
            raise InputError(f"num_train must lie in (0, num_states), got {self.num_train}")
        if not 1 <= self.reward_state <= self.num_states:
            raise InputError(f"reward_state is 1-based in [1, {self.num_states}]")
        if self.step_fraction <= 0:
            raise InputError(f"step_fraction must be positive, got {self.step_fraction}")

    @classmethod
    def quick(cls) -> Config:
        return cls(sweep_step_fractions=(0.25, 1.0, 1.9, 100.0, 250.0), sweep_steps=1000)

    @classmethod
    def paper(cls) -> Config:
        return cls()


def _key(gamma: float, lengthscale: float) -> str:
    return f"gamma={gamma:g},l={lengthscale:g}"


def _sup(V: np.ndarray) -> float:
    return float(np.max(np.abs(V))) if np.all(np.isfinite(V)) else float("inf")


def _setting(config: Config, gamma: float):
    mdp = circle_mdp(config.num_states, config.reward_state - 1, gamma)
    policy = np.zeros(config.num_states, dtype=int)
    return mdp.P_pi(policy), mdp.R_pi(policy), mdp.V_pi(policy)


def measure(config: Config) -> dict[str, Any]:
    """Every number of Figure 9: predictions per panel, spectra, step-size and test-form evidence."""
    x = np.arange(1, config.num_states + 1, dtype=float)
    train = np.arange(config.num_train)
    panels: dict[str, Any] = {}
    zeros = np.zeros(config.num_states)
    for gamma in config.gammas:
        P, R, V_pi = _setting(config, gamma)
        for lengthscale in config.lengthscales:
            K = kernels.rbf_kernel(x, x, lengthscale)
            lam_max = float(np.linalg.eigvalsh(K[np.ix_(train, train)]).max())
            eta = config.step_fraction / lam_max
            td = kernels.kernel_td(zeros, K, P, R, gamma, train, eta, max(config.td_steps))
            mc = kernels.kernel_mc(zeros, K, V_pi, train, eta, config.mc_steps)
            B_eig = np.linalg.eigvals(kernels.td_iteration_matrix(K, P, gamma, train))
            panels[_key(gamma, lengthscale)] = {
                "gamma": gamma,
                "lengthscale": lengthscale,
                "v_pi": V_pi,
                "step_size": eta,
                "td": {steps: td[steps] for steps in config.td_steps},
                "mc": mc[-1],
                "td_spectral_radius": float(np.max(np.abs(1 + eta * B_eig))),
                "td_flow_max_real_eigenvalue": float(B_eig.real.max()),
                "mc_spectral_radius": kernels.mc_spectral_radius(K, train, eta),
                "cond_K_train": float(np.linalg.cond(K[np.ix_(train, train)])),
            }
    return {
        "panels": panels,
        "train": train,
        "step_sweep": _step_sweep(config, x, train),
        "inverse_form": _inverse_form(config, x, train),
    }


def _long_setting(config: Config, x: np.ndarray):
    gamma, lengthscale = max(config.gammas), max(config.lengthscales)
    P, R, V_pi = _setting(config, gamma)
    return gamma, P, R, V_pi, kernels.rbf_kernel(x, x, lengthscale)


def _step_sweep(config: Config, x: np.ndarray, train: np.ndarray) -> list[dict[str, float]]:
    """TD and MC at the largest gamma and lengthscale for several step sizes."""
    gamma, P, R, V_pi, K = _long_setting(config, x)
    lam_max = float(np.linalg.eigvalsh(K[np.ix_(train, train)]).max())
    zeros, rows = np.zeros(len(x)), []
    for fraction in config.sweep_step_fractions:
        eta = fraction / lam_max
        td = kernels.kernel_td(zeros, K, P, R, gamma, train, eta, config.sweep_steps)
        mc = kernels.kernel_mc(zeros, K, V_pi, train, eta, config.sweep_steps)
        rows.append(
            {
                "step_fraction": fraction,
                "step_size": eta,
                "td_spectral_radius": kernels.td_spectral_radius(K, P, gamma, train, eta),
                "mc_spectral_radius": kernels.mc_spectral_radius(K, train, eta),
                "td_sup_ratio_100": _sup(td[min(100, config.sweep_steps)]) / _sup(V_pi),
                "td_sup_ratio_final": _sup(td[-1]) / _sup(V_pi),
                "mc_sup_ratio_final": _sup(mc[-1]) / _sup(V_pi),
            }
        )
    return rows


def _inverse_form(config: Config, x: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """The Eq. 51 test-state form (K_train^-1) at the largest gamma and lengthscale."""
    gamma, P, R, V_pi, K = _long_setting(config, x)
    eta = config.step_fraction / float(np.linalg.eigvalsh(K[np.ix_(train, train)]).max())
    zeros = np.zeros(len(x))
    td = kernels.kernel_td(zeros, K, P, R, gamma, train, eta, max(config.td_steps), "inverse")
    mc = kernels.kernel_mc(zeros, K, V_pi, train, eta, config.mc_steps, "inverse")
    return {
        "td_sup_ratio": _sup(td[-1]) / _sup(V_pi),
        "mc_sup_ratio": _sup(mc[-1]) / _sup(V_pi),
    }


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """The three claims of Figure 9, each from the measured numbers by the rule in its statement."""
    panels, train = measurements["panels"], np.asarray(measurements["train"])
    test = np.setdiff1d(np.arange(config.num_states), train)
    r = config.reward_state - 1
    g_hi, l_lo, l_hi = max(config.gammas), min(config.lengthscales), max(config.lengthscales)
    t_long = max(config.td_steps)

    long = panels[_key(g_hi, l_hi)]
    v_sup = _sup(long["v_pi"])
    td_ratio, mc_ratio = _sup(long["td"][t_long]) / v_sup, _sup(long["mc"]) / v_sup
    diverges = td_ratio > config.diverge_factor and mc_ratio <= config.bounded_factor
    claims = [
        Claim(
            "td_diverges_long_lengthscale",
            f"With gamma={g_hi:g} and lengthscale {l_hi:g}, kernel TD diverges (sup|V| after "
            f"{t_long} steps > {config.diverge_factor:g} x sup|V^pi|, or non-finite) while kernel MC "
            f"does not (sup|V| after {config.mc_steps} steps <= {config.bounded_factor:g} x "
            f"sup|V^pi|); eta = {config.step_fraction:g} / lambda_max(K_train).",
            diverges,
            {
                "td_sup_ratio": td_ratio,
                "mc_sup_ratio": mc_ratio,
                "step_size": long["step_size"],
                "td_spectral_radius": long["td_spectral_radius"],
                "td_flow_max_real_eigenvalue": long["td_flow_max_real_eigenvalue"],
                "mc_spectral_radius": long["mc_spectral_radius"],
                "cond_K_train": long["cond_K_train"],
                "step_sweep": measurements.get("step_sweep", []),
                "inverse_form_eq51": measurements.get("inverse_form", {}),
            },
        )
    ]

    short_evidence, short_ok = {}, True
    for gamma in config.gammas:
        p = panels[_key(gamma, l_lo)]
        tol = config.fit_tol * _sup(p["v_pi"])
        train_err = float(np.max(np.abs(p["mc"][train] - p["v_pi"][train])))
        test_pred = max(_sup(p["mc"][test]), _sup(p["td"][t_long][test]))
        short_ok &= train_err <= tol and test_pred <= tol
        short_evidence[f"gamma={gamma:g}"] = {
            "mc_max_train_error": train_err,
            "max_abs_test_prediction_td_mc": test_pred,
            "max_abs_v_pi_test": _sup(p["v_pi"][test]),
            "tolerance": tol,
        }
    claims.append(
        Claim(
            "short_lengthscale_fits_train_predicts_zero_on_test",
            f"With lengthscale {l_lo:g}, for every gamma: MC fits the training states "
            f"(max |V - V^pi| <= {config.fit_tol:g} x sup|V^pi|) and both TD ({t_long} steps) and "
            f"MC predict about zero on the test states (max |V| <= {config.fit_tol:g} x sup|V^pi|).",
            short_ok,
            short_evidence,
        )
    )

    mc_evidence, mc_ok, compared = {}, True, []
    for gamma in config.gammas:
        V_pi = panels[_key(gamma, l_hi)]["v_pi"]
        true_jump = V_pi[r] - V_pi[(r + 1) % config.num_states]
        errors = {
            f"l={ls:g}": float(np.mean((panels[_key(gamma, ls)]["mc"][test] - V_pi[test]) ** 2))
            for ls in config.lengthscales
        }
        jumps = {
            f"l={ls:g}": float(
                (lambda V: V[r] - V[(r + 1) % config.num_states])(panels[_key(gamma, ls)]["mc"])
                / true_jump
            )
            for ls in config.lengthscales
        }
        relevant = _sup(V_pi[test]) >= config.negligible_test * _sup(V_pi)
        lowest = min(errors, key=errors.get) == f"l={l_hi:g}"
        misses = jumps[f"l={l_hi:g}"] < config.jump_miss
        mc_ok &= misses and (lowest or not relevant)
        if relevant:
            compared.append(gamma)
        mc_evidence[f"gamma={gamma:g}"] = {
            "mc_test_mse": errors,
            "mc_jump_over_true_jump": jumps,
            "test_values_non_negligible": relevant,
        }
    mc_ok &= bool(compared)
    claims.append(
        Claim(
            "mc_long_lengthscale_generalises_but_misses_jump",
            f"Under MC ({config.mc_steps} steps), lengthscale {l_hi:g} has the lowest test MSE "
            f"against V^pi among {list(config.lengthscales)} for every gamma whose test values are "
            f"non-negligible (sup|V^pi(test)| >= {config.negligible_test:g} x sup|V^pi|; at least "
            f"one such gamma), and for every gamma its fitted jump V(r) - V(r+1) at the reward "
            f"state is < {config.jump_miss:g} x the true jump.",
            mc_ok,
            {"compared_gammas": compared, **mc_evidence},
        )
    )
    return claims


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """One figure per TD step count: rows gamma, columns lengthscale (the paper's layout)."""
    states = np.arange(1, config.num_states + 1)
    names = []
    with plots.style():
        for steps in config.td_steps:
            fig, axes = plots.figure(
                len(config.gammas), len(config.lengthscales), width=3.0, height=2.3
            )
            for i, gamma in enumerate(config.gammas):
                for j, ls in enumerate(config.lengthscales):
                    p, ax = measurements["panels"][_key(gamma, ls)], axes[i, j]
                    ax.axvspan(config.num_train + 0.5, config.num_states + 0.5, color="0.9", lw=0)
                    ax.plot(states, p["v_pi"], label=r"$V^\pi$")
                    td = np.clip(p["td"][steps], -1e6, 1e6)
                    ax.plot(states, td, label=f"TD ({steps} steps)")
                    ax.plot(states, p["mc"], label=f"MC ({config.mc_steps} steps)")
                    ax.set_title(rf"$\gamma$={gamma:g}, lengthscale {ls:g}")
                    ax.set_xlabel("state")
                    if j == 0:
                        ax.set_ylabel("value")
            axes[0, 0].legend(loc="upper left")
            fig.suptitle(
                f"Kernel TD ({steps} steps) vs MC, RBF kernel; shaded: test states "
                f"(eta = {config.step_fraction:g}/lambda_max(K_train))",
                fontsize=9,
            )
            names.append(plots.save(fig, out_dir / f"fig9_kernel_td_{steps}_steps.png"))

        sweep = measurements["step_sweep"]
        fig, axes = plots.figure(1, 2, width=3.4, height=2.6)
        etas = [row["step_size"] for row in sweep]
        axes[0, 0].plot(etas, [row["td_spectral_radius"] for row in sweep], "o-", label="TD")
        axes[0, 0].plot(etas, [row["mc_spectral_radius"] for row in sweep], "s--", label="MC")
        axes[0, 0].axhline(1.0, color="0.5", lw=0.8)
        axes[0, 0].set(
            xscale="log", yscale="log", xlabel="step size eta", ylabel="spectral radius of update"
        )
        axes[0, 0].legend()
        finite = lambda v: min(v, 1e12)  # noqa: E731
        axes[0, 1].plot(
            etas, [finite(row["td_sup_ratio_final"]) for row in sweep], "o-", label="TD"
        )
        axes[0, 1].plot(
            etas, [finite(row["mc_sup_ratio_final"]) for row in sweep], "s--", label="MC"
        )
        axes[0, 1].set(
            xscale="log",
            yscale="log",
            xlabel="step size eta",
            ylabel=rf"sup|V| / sup|V$^\pi$| after {config.sweep_steps} steps",
        )
        axes[0, 1].legend()
        fig.suptitle(
            rf"Step-size sensitivity, $\gamma$={max(config.gammas):g}, "
            f"lengthscale {max(config.lengthscales):g}",
            fontsize=9,
        )
        names.append(plots.save(fig, out_dir / "fig9_step_size_sweep.png"))
    return names


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Compute Figure 9, plot it, check its claims (deterministic: `seed` is unused)."""
    out_dir = Path(out_dir)
    measurements = measure(config)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    summary = {
        key: {
            "step_size": p["step_size"],
            "td_spectral_radius": p["td_spectral_radius"],
            "td_sup": {steps: _sup(v) for steps, v in p["td"].items()},
            "mc_sup": _sup(p["mc"]),
        }
        for key, p in measurements["panels"].items()
    }
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig9_kernel_td",
    paper_ref="Figure 9, Appendix C.2",
    description="Kernel TD vs MC with RBF kernels on the circle MDP, trained on 40 of 50 states",
    config_type=Config,
    run=run,
    kind="theory",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "measure", "run"]
