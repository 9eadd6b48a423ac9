import dataclasses
import json

import numpy as np
import pytest

from tdgen.experiments import dyn_metrics_vs_update_rank as dyn
from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import fig4_actor_critic_update_rank as fig4

pytestmark = pytest.mark.slow

CELLS = ("dqn/g/dense", "dqn/g/zero", "c51/g/dense", "ppo/g/actor", "daac/g/critic")


def _runs(rank, srank, dormant, seeds=3):
    """Per-seed probe series with the given update ranks and measures (others random)."""
    rng = np.random.default_rng(0)
    runs = []
    for s in range(seeds):
        measures = {name: list(rng.normal(size=len(rank))) for name in dyn.MEASURES}
        measures[dyn.SRANK] = list(np.asarray(srank[s], float))
        measures[dyn.DORMANT] = list(np.asarray(dormant[s], float))
        runs.append({"frames": list(range(len(rank))), "update_rank": list(rank),
                     "measures": measures})  # fmt: skip
    return runs


RANK = [2.0, 3.0, 5.0, 6.0, 8.0, 9.0]


def _measurements(srank, dormant):
    return {"cells": {cell: _runs(RANK, srank, dormant) for cell in CELLS}}


def test_spearman_is_rank_correlation_and_undefined_on_constant_series():
    assert dyn.spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert dyn.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(dyn.spearman([1, 2, 3, 4], [5, 5, 5, 5]))
    assert np.isnan(dyn.spearman([1, 2], [1, 2]))  # too short


def test_claims_hold_when_the_measures_track_the_rank():
    srank = [np.array(RANK) * 3 + s for s in range(3)]  # monotone in the rank, every seed
    dormant = [-np.array(RANK) + 0.1 * s for s in range(3)]
    claims = {c.id: c for c in dyn.check_claims(_measurements(srank, dormant), dyn.Config())}
    assert claims["feature_srank_tracks_update_rank"].holds
    assert claims["dormant_units_track_update_rank_inversely"].holds
    cell = claims["feature_srank_tracks_update_rank"].evidence["cells"]["dqn/g/dense"]
    assert cell["mean"] == pytest.approx(1.0) and cell["low"] == pytest.approx(1.0)
    check = claims["feature_srank_tracks_update_rank"].checks["dqn/g/dense"]  # in the report
    assert check["verdict"] == "held" and check["low"] == pytest.approx(1.0)
    assert claims["dormant_units_track_update_rank_inversely"].verdict == "held"


def test_claims_fail_for_an_uncorrelated_measure():
    # srank is a permutation of the ranks unrelated to them; dormant units are constant (undefined)
    rng = np.random.default_rng(1)
    srank = [rng.permutation(len(RANK)).astype(float) for _ in range(3)]
    while abs(np.mean([dyn.spearman(s, RANK) for s in srank])) > 0.3:
        srank = [rng.permutation(len(RANK)).astype(float) for _ in range(3)]
    dormant = [np.zeros(len(RANK))] * 3
    claims = {c.id: c for c in dyn.check_claims(_measurements(srank, dormant), dyn.Config())}
    srank_claim = claims["feature_srank_tracks_update_rank"]
    assert not srank_claim.holds and srank_claim.evidence["supporting"] == 0
    dormant_claim = claims["dormant_units_track_update_rank_inversely"]
    assert not dormant_claim.holds
    assert dormant_claim.evidence["cells"]["dqn/g/dense"]["defined"] == 0
    assert dormant_claim.verdict == "did not hold"  # undefined cells count against the claim
    # the opposite sign does not support a claim either
    reversed_srank = [-np.array(RANK) for _ in range(3)]
    claims = dyn.check_claims(_measurements(reversed_srank, dormant), dyn.Config())
    assert not claims[0].holds


@pytest.mark.timeout(600)
def test_a_tiny_run_reuses_the_figure_runs_and_reads_their_probes(tmp_path):
    """Trains Figure 3's and Figure 4's tiny runs once, for this experiment and Figure 4's own
    end-to-end check."""
    value = dataclasses.replace(
        fig3.Config.quick(), agents=("dqn",), num_seeds=2, frames=1_536, learning_starts=512,
        target_period=256, epsilon_decay_frames=512, probe_every=256, probe_k=16,
        probe_draws=1, log_every=512, late_probes=1, encoder="mlp",
    )  # fmt: skip
    actor_critic = dataclasses.replace(
        fig4.Config.quick(), games=fig4.Config.quick().games[:1], num_seeds=2, frames=1_024, probe_every=256, probe_k=16,
        probe_draws=1, early_probes=1, encoder="mlp", num_envs=4, num_steps=64,
    )  # fmt: skip
    # Figure 3's own folder already holds its runs: they are read, not trained again
    fig3.measure(value, 0, tmp_path / "fig3_value_update_rank")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "fig3_value_update_rank").rglob("*.npz")}
    config = dataclasses.replace(dyn.Config.quick(), value=value, actor_critic=actor_critic,
                                 reps=200)  # fmt: skip
    outcome = dyn.run(config, 0, tmp_path / "dyn_metrics_vs_update_rank")
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "fig3_value_update_rank").rglob("*.npz")}
    assert before == after
    assert (
        tmp_path / "fig4_actor_critic_update_rank" / "runs" / "ppo_minatar-space_invaders_s1"
    ).is_dir()
    assert outcome.figures == ["dyn_metrics_vs_update_rank.png"]
    assert (tmp_path / "dyn_metrics_vs_update_rank" / outcome.figures[0]).stat().st_size > 0
    ids = [c.id for c in outcome.claims]
    assert ids == ["feature_srank_tracks_update_rank", "dormant_units_track_update_rank_inversely"]
    evidence = outcome.claims[0].evidence
    assert evidence["cells_total"] == 2 + 4  # dqn dense/zero; ppo, daac x actor, critic
    assert (
        outcome.summary["probes_per_run"]["dqn/minatar/breakout/dense"] == 6
    )  # 256..1536 (k transitions stored by 256)
    json.dumps(outcome.summary)
    # Figure 4 end to end on the runs trained above: its claims, its figure, a JSON summary.
    fig4_dir = tmp_path / "fig4_actor_critic_update_rank"
    figure = fig4.run(actor_critic, seed=0, out_dir=fig4_dir)
    assert [c.id for c in figure.claims] == [
        "daac_critic_highest_early", "daac_critic_above_ppo_critic_early", "actors_lowest_early",
        "daac_actor_below_ppo_actor_early",
    ]  # fmt: skip
    assert (fig4_dir / figure.figures[0]).stat().st_size > 10_000
    json.dumps(figure.summary)  # serialisable
    with pytest.raises(ValueError, match="early_probes"):
        dataclasses.replace(actor_critic, early_probes=5)
