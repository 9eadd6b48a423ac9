"""The claim rules of `interventions_vs_interference` on synthetic per-seed numbers (no training):
each holds with the effect, does not hold without it or reversed, and is inconclusive with too
few seeds; Holm's correction on known p-values; one end-to-end smoke run (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from tdgen.experiments.base import HELD, INCONCLUSIVE, NOT_HELD
from tdgen.experiments.interventions_claims import (
    dead_units_claim,
    distillation_claim,
    holm,
    rank_gap_claim,
    returns_claim,
)

RNG = np.random.default_rng(0)
SEEDS = 6


def noise(scale=0.01, n=SEEDS):
    return RNG.normal(0.0, scale, n)


def test_dead_units_rule():
    baseline = 0.3 + noise()
    assert dead_units_claim(baseline, baseline - 0.2 + noise()).verdict == HELD
    assert dead_units_claim(baseline, baseline + 0.2 + noise()).verdict == NOT_HELD  # reversed
    assert dead_units_claim(baseline, baseline + noise(0.2)).verdict in (NOT_HELD, INCONCLUSIVE)
    assert dead_units_claim(baseline, baseline + 0.05 * (-1) ** np.arange(SEEDS)).verdict == (
        INCONCLUSIVE
    )  # absent: the interval straddles 0
    assert dead_units_claim([0.3], [0.1]).verdict == INCONCLUSIVE  # one seed: no interval


def test_rank_gap_rule():
    cells = [f"c{i}" for i in range(6)]
    rank = {c: i + noise(0.1) for i, c in enumerate(cells)}
    assert (
        rank_gap_claim(rank, {c: 2.0 * i + noise(0.1) for i, c in enumerate(cells)}).verdict == HELD
    )
    reversed_gap = {c: -2.0 * i + noise(0.1) for i, c in enumerate(cells)}
    assert rank_gap_claim(rank, reversed_gap).verdict == NOT_HELD
    # absent: the gap's order across cells is a fresh permutation per seed
    perms = np.array([RNG.permutation(6) for _ in range(SEEDS)]).T.astype(float)
    absent = rank_gap_claim(rank, dict(zip(cells, perms, strict=True)))
    assert absent.verdict in (INCONCLUSIVE, NOT_HELD)
    one = {c: np.array([float(i)]) for i, c in enumerate(cells)}
    assert rank_gap_claim(one, one).verdict == INCONCLUSIVE  # one seed: no interval


def test_distillation_rule():
    student = 3.0 + noise(0.3)
    assert (
        distillation_claim(student, {"redo": 3.0 + noise(0.3), "reset": 9 + noise()}).verdict
        == HELD
    )
    above = {"redo": 9.0 + noise(0.3), "reset": 12.0 + noise(0.3)}
    assert distillation_claim(student, above).verdict == NOT_HELD
    wide = {"redo": 3.5 + np.array([-4.0, 4.0, -4.0, 4.0, 4.0, 4.0])}  # mean above, interval wide
    assert distillation_claim(student, wide).verdict == INCONCLUSIVE
    assert distillation_claim([3.0], {"redo": [3.0]}).verdict == INCONCLUSIVE  # no interval


def test_holm_on_known_p_values():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    # sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 with the running maximum
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})
    assert holm({"a": 0.4, "b": 0.3}) == pytest.approx({"a": 0.6, "b": 0.6})
    assert np.isnan(holm({"a": float("nan"), "b": 0.01})["a"])
    assert holm({"a": float("nan"), "b": 0.01})["b"] == pytest.approx(0.02)  # NaN counts in m


def test_returns_rule_counts_and_corrects():
    baseline = 1.0 + noise(0.1)
    better = {"redo": 2.0 + noise(0.1), "reset": 1.0 + noise(0.1)}
    claim = returns_claim(baseline, better)
    assert claim.verdict == HELD and claim.evidence["comparisons"] == 2
    assert claim.evidence["p_improve_holm"]["redo"] < 0.05
    poi = claim.evidence["rliable"]["redo"]["probability_of_improvement"]
    assert poi[0] == 1.0 and poi[1] <= poi[0] <= poi[2]
    worse = {"redo": 0.0 + noise(0.1), "reset": 0.2 + noise(0.1)}
    assert returns_claim(baseline, worse).verdict == NOT_HELD
    mixed = {"redo": 0.0 + noise(0.1), "reset": 1.0 + noise(0.1)}  # absent for one, worse other
    assert returns_claim(baseline, mixed).verdict == INCONCLUSIVE
    assert returns_claim([1.0], {"redo": [2.0]}).verdict == INCONCLUSIVE  # one seed


def test_welch_p_without_spread_follows_the_sign():
    from tdgen.experiments.interventions_claims import welch_p

    assert welch_p([2.0, 2.0], [1.0, 1.0], "greater") == 0.0
    assert welch_p([2.0, 2.0], [1.0, 1.0], "less") == 1.0
    assert welch_p([1.0, 1.0], [1.0, 1.0], "greater") == 1.0
    assert np.isnan(welch_p([2.0], [1.0, 1.1], "greater"))


def test_holm_can_take_back_a_single_significant_comparison():
    """A small effect significant alone (p < 0.05) is not after correcting over many cells."""
    baseline = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.0])
    small = baseline + np.array([0.12, 0.05, 0.15, 0.1, 0.08, 0.11])
    cells = {"small": small, **{f"null{i}": baseline + noise(0.05) for i in range(12)}}
    claim = returns_claim(baseline, cells)
    assert claim.evidence["p_improve"]["small"] < 0.05
    assert claim.evidence["p_improve_holm"]["small"] >= 0.05
    assert claim.evidence["comparisons"] == 13


def test_registered_but_left_out_of_the_default_reproduce_set():
    from tdgen.experiments import default_experiment_names, experiment_kind, experiment_names

    name = "interventions_vs_interference"
    assert name in experiment_names() and experiment_kind(name) == "deep_rl"
    assert default_experiment_names() == [n for n in experiment_names() if n != name]


@pytest.mark.slow
@pytest.mark.timeout(900)  # mostly compilation: one DQN and one PPO program per cell
def test_smoke_run_end_to_end(tmp_path):
    from tdgen.experiments.interventions_vs_interference import Cells, Config, run

    # one MinAtar game per agent, the baseline and two interventions, one seed, a few iterations
    dqn = Cells("minatar/breakout", "minatar", 1_024, 512, learning_starts=256, buffer_size=1_024)
    ppo = Cells(
        "minatar/asterix",
        "minatar",
        2 * 8 * 16,
        8 * 16,
        num_levels=10,
        eval_steps=32,
        num_envs=8,
        num_steps=16,
    )
    config = Config(interventions=("redo", "layer_norm"), num_seeds=1, dqn=dqn, ppo=ppo,
                    probe_k=16, student_steps=40)  # fmt: skip
    outcome = run(config, 0, tmp_path)
    assert [c.id for c in outcome.claims] == [
        "redo_lowers_dead_units",
        "critic_update_rank_tracks_generalisation_gap",
        "some_intervention_matches_distillation_rank",
        "some_intervention_improves_return",
    ]
    assert (tmp_path / outcome.figures[0]).exists()
    assert set(outcome.summary["means"]["dqn"]) == {"baseline", "redo", "layer_norm"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interventions": ("redo", "rdo")}, r"interventions \['rdo'\] unknown"),
        ({"num_seeds": 0}, "num_seeds and late_probes must be at least 1"),
        ({"late_probes": 5}, "dqn.frames 20000 hold fewer than late_probes"),
    ],
)
def test_bad_config_is_one_line(change, message):
    from tdgen.errors import InputError
    from tdgen.experiments.interventions_vs_interference import Config

    with pytest.raises(InputError, match=message) as error:
        Config(**change)
    assert "\n" not in str(error.value)


@pytest.mark.slow  # builds ProcGen agents (envpool), no training
def test_a_cell_the_agent_refuses_is_left_out_of_the_plan_with_its_reason(tmp_path):
    """ReDo cannot recycle IMPALA's residual blocks: on ProcGen its PPO cell is refused, in the
    agent's own words, and the plan keeps every other run."""
    from tdgen.experiments.interventions_vs_interference import (
        Cells,
        Config,
        planned_runs,
        refusal,
        seed_group,
    )

    ppo = Cells("procgen/bigfish", "procgen", 2 * 64 * 256, 64 * 256, num_levels=10)
    config = Config(interventions=("redo", "layer_norm"), num_seeds=2, ppo=ppo)
    (redo_run, _) = seed_group(config, "ppo", "redo", 0, tmp_path)
    assert "impala" in refusal("ppo", redo_run.config)
    assert refusal("ppo", seed_group(config, "ppo", "layer_norm", 0, tmp_path)[0].config) is None
    planned = {(run.agent, run.name) for run in planned_runs(config, 0, tmp_path)}
    assert len(planned) == 2 * (3 + 2) and not any(
        agent == "ppo" and "redo" in name for agent, name in planned
    )
    assert not list(tmp_path.iterdir())  # nothing written
