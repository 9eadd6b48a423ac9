"""The table of measures: one row per measure, the single source of its name, keys and meaning.

Plain data (it imports neither JAX nor torch, so the torch side reads it without loading JAX).
Both Probes take their measure names and defaults from it, the agents' ``probe_measures`` their
choices and defaults, and the glossary page (`glossary_markdown`, docs/glossary.md) its text.
Adding a measure is one function on each side it exists on (the JAX one in `tdgen.interference.
suite`, its twin in `tdgen.interference.torch.probe`), one row here, and one test.
"""

from __future__ import annotations

from dataclasses import dataclass

# Settings both Probes default to (the JAX and torch functions take them from here).
HESSIAN_ITERATIONS = 20  # power-iteration steps of hessian_max
NTK_THRESHOLDS = (0.0, 0.001, 0.01)  # relative thresholds t of the NTKs' rank_{t}
FEATURE_RANK_EPS = 0.01  # InFeR's threshold on the singular values of Phi / sqrt(n)
# The plasticity probe of Lyle et al. 2023 (Sections 3.1, 5.1; Appendix A.2): 10 random target
# functions a + sin(10^5 f(x; omega_0)), each fitted for 2000 steps of the training optimiser.
PLASTICITY_STEPS = 2000  # optimiser steps on each probe target
PLASTICITY_TARGETS = 10  # random target functions, the loss averaged over them
PLASTICITY_FREQUENCY = 1e5  # the sine's frequency: targets effectively uniform at random


@dataclass(frozen=True)
class Measure:
    """One measure. ``keys``: the metric keys it writes ({tau}, {layer}: per threshold and
    layer). ``needs``: what the JAX Probe needs beyond parameters, optimiser state and batch
    ("model": activations of a Flax module; "init_params"; "init_fn": the network's initialiser,
    or a linen model to initialise). ``torch``: whether
    `tdgen.interference.torch.Probe` computes it; if not, ``torch_reason`` says why.
    ``probe_default``: in a Probe's default measures; ``agents``: an agent's ``probe_measures``
    may name it; ``agents_default``: agents log it unless told otherwise."""

    name: str
    keys: str
    definition: str
    threshold: str
    source: str
    needs: tuple[str, ...] = ()
    torch: bool = True
    torch_reason: str = ""
    probe_default: bool = True
    agents: bool = True
    agents_default: bool = False


MEASURES_TABLE: tuple[Measure, ...] = (
    Measure(
        "dormant",
        "dynamics/dormant_{tau}, dynamics/dormant_{tau}/{layer}",
        "Fraction of units whose score s_i = E|h_i(x)| / mean_j E|h_j(x)| (mean over the reference "
        "batch, normalised by the layer's mean) is at most tau; per layer and over all hidden "
        "layers. A conv channel is one unit.",
        "tau in 0, 0.025 (ReDo's), 0.1",
        "Sokar et al. 2023 (ReDo)",
        needs=("model",),
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "active",
        "dynamics/active, dynamics/active/{layer}",
        "Fraction of units with a positive activation on at least one reference input.",
        "activation > 0",
        "Lyle et al. 2022",
        needs=("model",),
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "features",
        "dynamics/feature_srank/{layer}, dynamics/feature_erank/{layer}, "
        "dynamics/feature_norm/{layer}",
        "Of the features Phi [n, d] of each layer: srank = min{r : sum_{i<=r} sigma_i / sum sigma "
        ">= 1 - delta}; erank = exp(entropy of sigma / sum sigma); norm = mean_x ||phi(x)||.",
        "delta = 0.01",
        "Kumar et al. 2021 (srank); Roy & Vetterli 2007 (erank)",
        needs=("model",),
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "stable_rank",
        "dynamics/feature_stable_rank/{layer}",
        "Stable rank of each layer's features: ||Phi||_F^2 / ||Phi||_2^2 (the squared singular "
        "values' sum over the largest), a smooth lower bound of the rank.",
        "none (a real number in [1, rank])",
        "Rudelson & Vershynin 2007; Sanyal et al. 2020",
        needs=("model",),
    ),  # fmt: skip
    Measure(
        "feature_rank",
        "dynamics/feature_rank/{layer}",
        "InFeR's feature rank: #{sigma(Phi / sqrt(n)) > eps}, the singular values of each layer's "
        "features scaled by the square root of the batch size.",
        f"eps = {FEATURE_RANK_EPS} (Probe setting feature_rank_eps)",
        "Lyle et al. 2022, Understanding and preventing capacity loss in RL",
        needs=("model",),
    ),  # fmt: skip
    Measure(
        "param_norm",
        "dynamics/param_norm, dynamics/param_norm/{layer}",
        "L2 norm of the parameters, in all and per layer.",
        "none",
        "Lyle et al. 2023",
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "init_distance",
        "dynamics/init_distance, dynamics/init_distance/{layer}, dynamics/init_distance_relative, "
        "dynamics/init_distance_relative/{layer}",
        "L2 distance of the parameters from the initial ones, ||theta - theta_0||, in all and per "
        "layer; relative: divided by ||theta_0|| (NaN for a layer initialised at zero).",
        "none",
        "Lyle et al. 2023; Kumar et al. 2023",
        needs=("init_params",),
        probe_default=False,
        agents=False,
    ),  # fmt: skip
    Measure(
        "grad_norm",
        "dynamics/grad_norm, dynamics/grad_norm/{layer}",
        "L2 norm of the gradient of the batch loss (the mean of the per-transition losses).",
        "none",
        "Lyle et al. 2023",
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "grad_noise",
        "dynamics/grad_noise_scale, dynamics/grad_coherence, dynamics/grad_variance, "
        "dynamics/per_sample_grad_norm",
        "From the per-transition gradients g_i and their mean g: variance tr Sigma = sum_i "
        "||g_i - g||^2 / (k - 1), noise scale tr Sigma / ||g||^2, coherence ||g|| / mean ||g_i|| "
        "and the mean per-sample norm mean ||g_i||.",
        "none",
        "McCandlish et al. 2018; Chatterjee 2020",
    ),  # fmt: skip
    Measure(
        "loss_ntk",
        "dynamics/loss_ntk/{statistic}",
        "Statistics of the loss NTK K = G G^T of the per-transition gradients: diagonal_mean, "
        "diagonal_std, off_diagonal_mean, the fractions of positive and negative entries "
        "(positive_frac, negative_frac) and rank_{t} = |{sigma : sigma / sigma_max > t}|.",
        "t in " + ", ".join(f"{t:g}" for t in NTK_THRESHOLDS),
        "Lyle et al. 2023 (Understanding plasticity)",
    ),  # fmt: skip
    Measure(
        "output_ntk",
        "dynamics/output_ntk/{statistic}",
        "The same statistics of the output NTK (gradients of the reduced output at the reference "
        "states).",
        "t in " + ", ".join(f"{t:g}" for t in NTK_THRESHOLDS),
        "Lyle et al. 2022 (this paper, Section 5)",
        torch=False,
        torch_reason="per-state output Jacobians not yet written for torch",
    ),  # fmt: skip
    Measure(
        "churn",
        "dynamics/churn",
        "Change of the outputs at the reference states after one optimiser step on the batch: "
        "greedy-action flip rate (value heads) or total variation of the policy (policy heads).",
        "none",
        "Schaul et al. 2022 (policy churn)",
        agents_default=True,
    ),  # fmt: skip
    Measure(
        "hessian_max",
        "dynamics/hessian_max_eigenvalue",
        "The largest-magnitude eigenvalue of the Hessian of the batch loss (the loss the "
        "optimiser sees, a TD target held fixed), by power iteration on Hessian-vector products.",
        f"iterations = {HESSIAN_ITERATIONS} (Probe setting hessian_iterations)",
        "Lewandowski et al. 2023 (curvature and plasticity)",
        probe_default=False,
    ),  # fmt: skip
    Measure(
        "plasticity",
        "dynamics/plasticity_probe_loss",
        "Lyle et al. 2023's probe of plasticity (Eq. 4-5, Section 3.1, Appendix A.2): from a copy "
        "of the parameters, the training optimiser (a fresh state) minimises the full-batch MSE "
        "mean_{x,j} (f(theta, x)_j - g(x)_j)^2 on the reference observations for T steps, with "
        "targets g(x) = a + sin(10^5 f(x; omega_0)), omega_0 a fresh initialisation of the same "
        "network, a the network's mean prediction; the loss at theta*_T, averaged over N targets. "
        "The paper's plasticity is b - this (b: the targets' variance), its plasticity loss the "
        "difference between two checkpoints. Costs N x T training steps: not a default.",
        f"T = {PLASTICITY_STEPS} steps, N = {PLASTICITY_TARGETS} targets (Probe settings "
        "plasticity_steps, plasticity_targets); frequency 10^5",
        "Lyle et al. 2023 (Understanding plasticity in neural networks, ICML)",
        needs=("init_fn",),
        probe_default=False,
        agents=False,
    ),  # fmt: skip
    Measure(
        "update_rank",
        "interference/update_rank",
        "Update rank (Section 5.1, Appendix B.1): singular values above eps times the largest, of "
        "the k x k update matrix A[i, j] = v(params_i, x_j) - v(params, x_j), params_i one step "
        "of the optimiser as it is on transition i alone (uncentred).",
        "eps = 0.1",
        "Lyle et al. 2022 (this paper)",
        agents=False,
    ),  # fmt: skip
    Measure(
        "update_rank_drift",
        "interference/update_rank_drift",
        "The update rank of the drift-centred matrix: every row minus the step the optimiser "
        "takes on a zero gradient (e.g. Adam's momentum).",
        "eps = 0.1",
        "tdgen (a variant of Appendix B.1)",
        probe_default=False,
        agents=False,
    ),  # fmt: skip
)

BY_NAME = {m.name: m for m in MEASURES_TABLE}
MEASURES = tuple(BY_NAME)  # every measure a Probe knows
DEFAULT_MEASURES = tuple(m.name for m in MEASURES_TABLE if m.probe_default)
UNIT_MEASURES = tuple(m.name for m in MEASURES_TABLE if "model" in m.needs)
TORCH_MEASURES = tuple(m.name for m in MEASURES_TABLE if m.torch)
AGENT_MEASURES = tuple(m.name for m in MEASURES_TABLE if m.agents)  # probe_measures choices
AGENT_DEFAULT_MEASURES = tuple(m.name for m in MEASURES_TABLE if m.agents_default)


def chosen_measures(measures, center: str) -> tuple[str, ...]:
    """``measures`` in order, less "update_rank_drift" where "update_rank" is drift-centred
    already (the same matrix under the same key: computed once)."""
    if center == "drift" and "update_rank" in measures:
        return tuple(m for m in measures if m != "update_rank_drift")
    return tuple(measures)


REDO_MAPPING = (
    "ReDo (Sokar et al. 2023; Dopamine's `labs/redo`) logs, per layer, the percentage of dormant "
    "neurons at tau = 0.025 (and 0.0 and 0.1). tdgen's `dynamics/dormant_0.025/{layer}` is that "
    "fraction for the same layer, in [0, 1] rather than percent (x 100 for ReDo's numbers); "
    "`dynamics/dormant_0.025` is over all hidden layers, ReDo's total."
)
SRANK_NAMES = (
    'Plasticine logs Kumar et al.\'s srank under the name "stable rank". In tdgen, `srank` '
    "(`dynamics/feature_srank/{layer}`) is Kumar et al.'s, and `stable_rank` "
    "(`dynamics/feature_stable_rank/{layer}`) is the stable rank proper, ||Phi||_F^2 / "
    "||Phi||_2^2: compare Plasticine's \"stable rank\" with tdgen's feature_srank."
)


def glossary_markdown() -> str:
    """The glossary page (docs/glossary.md), generated from the table: a summary table of names,
    keys and where each is computed, then one section per measure with its definition,
    threshold and source."""
    lines = [
        "# Glossary of measures",
        "",
        "Generated from `tdgen.interference.table` (`glossary_markdown()`); edit the table, not "
        "this page. Each key has one definition in every entry point: both Probes, the agents, "
        "`tdgen rank`, the SB3 callback.",
        "",
        "| measure | keys | torch | agents log it |",
        "|---|---|---|---|",
    ]
    sections = []
    for m in MEASURES_TABLE:
        torch = "yes" if m.torch else f"JAX only: {m.torch_reason}"
        agents = "by default" if m.agents_default else ("when asked" if m.agents else "see below")
        keys = ", ".join(f"`{k.strip()}`" for k in m.keys.split(","))
        lines.append(f"| `{m.name}` | {keys} | {torch.replace('|', chr(92) + '|')} | {agents} |")
        sections += ["", f"## `{m.name}`", "", m.definition, "",
                     f"- **Keys:** {keys}", f"- **Threshold:** {m.threshold}",
                     f"- **Source:** {m.source}", f"- **Torch:** {torch}",
                     f"- **Agents log it:** {agents}"]  # fmt: skip
    lines += [
        "",
        "Agents log the update rank at every probe, of the centring their `probe_center` names "
        "(`interference/[<network>_]update_rank[_drift][_random]`; `_random`: the same matrix of "
        "a freshly initialised network). `init_distance` needs the initial parameters, which runs "
        "do not keep; `plasticity` (thousands of training steps a probe) is not yet wired into "
        "the agents' probes.",
        *sections,
        "",
        "## Names in other libraries",
        "",
        f"- {REDO_MAPPING}",
        f"- {SRANK_NAMES}",
        "",
    ]
    return "\n".join(lines)
