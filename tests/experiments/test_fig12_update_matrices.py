import dataclasses

import numpy as np
import pytest

from tdgen.agents import ensure_run
from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import fig12_update_matrices as fig12

TRAINING = dict(
    frames=2_000, learning_starts=1_000, target_period=200, epsilon_decay_frames=500,
    probe_every=500, probe_k=16, probe_draws=2, log_every=500, encoder="mlp",
)  # fmt: skip


def test_diagonal_share_of_tabular_and_rank_one_matrices():
    assert fig12.diagonal_share(np.diag([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert fig12.diagonal_share(np.ones((4, 4))) == pytest.approx(0.25)


def _panel(logged, recomputed):
    return {"update_rank_logged": logged, "update_rank_recomputed": recomputed}


def test_claim_detects_a_mismatch_between_saved_and_logged_ranks():
    config = fig12.Config.quick()
    good = {"panels": {"dqn/minatar/breakout": _panel([2.5, 4.0], [2.5, 4.0])}}
    assert fig12.check_claims(good, config)[0].holds
    bad = {"panels": {**good["panels"], "c51/minatar/asterix": _panel([2.5, 4.0], [2.5, 5.0])}}
    assert not fig12.check_claims(bad, config)[0].holds


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
        show_frames=(1_000, 1_500), **{**TRAINING, "frames": 1_500, "probe_every": 500},
    )  # fmt: skip
    outcome = fig12.run(config, 0, fig12_dir)
    assert outcome.claims[0].holds, outcome.claims[0].evidence
    assert outcome.summary["dqn/minatar/breakout"]["reused"]  # longer fig3 run, same settings
    assert not outcome.summary["c51/minatar/breakout"]["reused"]
    assert not (fig12_dir / "runs" / "dqn_minatar-breakout_dense_s0").exists()
    assert (fig12_dir / "runs" / "c51_minatar-breakout_dense_s0" / "config.json").exists()
    for name in outcome.figures:
        assert (fig12_dir / name).stat().st_size > 10_000
