import dataclasses

import numpy as np
import pytest

from tdgen.agents import ensure_run
from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import fig12_update_matrices as fig12

pytestmark = pytest.mark.slow

TRAINING = dict(
    frames=2_000, learning_starts=1_000, target_period=200, epsilon_decay_frames=500,
    probe_every=500, probe_k=16, probe_draws=2, log_every=500, encoder="mlp",
)  # fmt: skip


def test_diagonal_share_of_tabular_and_rank_one_matrices():
    assert fig12.diagonal_share(np.diag([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert fig12.diagonal_share(np.ones((4, 4))) == pytest.approx(0.25)


def _panel(trained, random, seeds=2):
    """Diagonal shares per shown frame (20k, 40k, 60k), the second seed offset by +0.02."""
    return {"diagonal_share": [[v + 0.02 * s for v in trained] for s in range(seeds)],
            "diagonal_share_random": [list(random)] * seeds}  # fmt: skip


def _measurements(trained, random, other=None):
    config = fig12.Config.quick()
    panels = {f"{a}/{g}": _panel(trained, random) for a in config.agents for g in config.games}
    if other:
        panels.update(other)
    return {"panels": panels}


RANDOM = [0.05, 0.05, 0.05]  # a fresh network's updates spread over every transition


def test_claim_holds_when_trained_updates_concentrate_on_the_diagonal():
    config = fig12.Config.quick()
    # The first shown frame is initialisation (trained == random there): not read by the claim.
    (claim,) = fig12.check_claims(_measurements([0.05, 0.30, 0.40], RANDOM), config)
    assert claim.verdict == "held"
    check = claim.checks["dqn (pooled over 4 games)"]
    assert check["estimate"] == pytest.approx(0.35 - 0.05 + 0.01)  # 40k and 60k, both seeds


def test_claim_fails_without_the_effect():
    config = fig12.Config.quick()
    # Trained updates spread over the batch more than a random network's: the gap is negative.
    (claim,) = fig12.check_claims(_measurements([0.05, 0.02, 0.01], RANDOM), config)
    assert claim.verdict == "did not hold"
    # One agent overfits, the other not: the claim (both agents) does not hold.
    c51 = {f"c51/{g}": _panel([0.05, 0.02, 0.01], RANDOM) for g in config.games}
    (claim,) = fig12.check_claims(_measurements([0.05, 0.30, 0.40], RANDOM, c51), config)
    assert claim.checks["dqn (pooled over 4 games)"]["verdict"] == "held"
    assert claim.verdict == "did not hold"


def test_config_needs_a_shown_frame_after_initialisation():
    with pytest.raises(ValueError, match="after learning_starts"):
        dataclasses.replace(fig12.Config.quick(), show_frames=(20_000,))


def test_show_frames_must_be_probed():
    with pytest.raises(ValueError, match="show_frames"):
        dataclasses.replace(fig12.Config.quick(), show_frames=(30_000,))


def test_end_to_end_reuses_figure3_runs_and_trains_the_rest(tmp_path):
    fig3_dir, fig12_dir = tmp_path / "fig3_value_update_rank", tmp_path / "fig12_update_matrices"
    # A longer Figure 3 run of DQN with the same settings (the runs fig3 writes).
    fig3_config = dataclasses.replace(fig3.Config.quick(), **TRAINING)
    name = fig3.run_name("dqn", "minatar/breakout", "dense", 0)
    fig3_cfg = fig3.agent_config(fig3_config, "dqn", "minatar/breakout", "dense", 0)
    ensure_run("dqn", fig3_cfg, fig3_dir / "runs" / name)
    config = dataclasses.replace(
        fig12.Config.quick(), games=("minatar/breakout",), agents=("dqn", "c51"),
        show_frames=(1_000, 1_500), num_seeds=1,
        **{**TRAINING, "frames": 1_500, "probe_every": 500},
    )  # fmt: skip
    outcome = fig12.run(config, 0, fig12_dir)
    assert [c.id for c in outcome.claims] == ["updates_concentrate_on_the_diagonal_early"]
    # Bookkeeping: the heatmaps show what was measured (ranks recomputed from the saved matrices
    # equal the logged ranks), in every panel and seed.
    for panel in outcome.summary.values():
        np.testing.assert_array_equal(panel["update_rank_recomputed"], panel["update_rank_logged"])
    assert outcome.summary["dqn/minatar/breakout"]["reused"] == [True]  # longer fig3 run
    assert outcome.summary["c51/minatar/breakout"]["reused"] == [False]
    assert not (fig12_dir / "runs" / "dqn_minatar-breakout_dense_s0").exists()
    assert (fig12_dir / "runs" / "c51_minatar-breakout_dense_s0" / "config.json").exists()
    for name in outcome.figures:
        assert (fig12_dir / name).stat().st_size > 10_000
