import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from tdgen.experiments import fig3_value_update_rank as fig3

pytestmark = pytest.mark.slow


def tiny_config(**changes):
    """One DQN (MLP torso) on breakout, dense and zero reward, 1.5k frames: compiles in seconds."""
    values = dict(
        agents=("dqn",), num_seeds=1, frames=1_500, learning_starts=1_000, target_period=200,
        epsilon_decay_frames=500, probe_every=500, probe_k=16, probe_draws=2, log_every=500,
        late_probes=1, encoder="mlp",
    )  # fmt: skip
    return dataclasses.replace(fig3.Config.quick(), **{**values, **changes})


SEEDS = 6


def _spread(seed, probes, offset, noise):
    """Seed-to-seed spread of a rank curve: a per-seed offset (sd ``offset``) and per-probe noise
    (sd ``noise``), centred over seeds at every probe, so the mean over seeds is the curve given.
    The verdicts below come out the same for 200 of 200 draws of this spread, not for this draw
    alone."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, offset, (SEEDS, 1)) + rng.normal(0, noise, (SEEDS, probes))
    return x - x.mean(axis=0)


def _curve(ranks, random=3.0, seed=0):
    """``SEEDS`` seeds whose mean is the given per-probe ranks (random parameters at ``random``),
    each seed off it by its own offset (sd 0.25) and probe noise (sd 0.2; random parameters: 0.1
    and 0.1)."""
    ranks = np.asarray(ranks, dtype=float)
    return {
        "frames": [20_000 * (i + 1) for i in range(len(ranks))],
        "update_rank": (ranks + _spread(seed, len(ranks), 0.25, 0.2)).tolist(),
        "update_rank_random": (random + _spread(seed + 1_000, len(ranks), 0.1, 0.1)).tolist(),
        "return_frames": [10_000, 20_000],
        "episodic_return": [[0.4 + 0.1 * i, 3.0 + 0.2 * i] for i in range(SEEDS)],
    }


def _measurements(dense, zero):
    """Every agent and game of the quick preset; each curve its own independent seeds."""
    config = fig3.Config.quick()
    curves, seed = {}, 0
    for agent in config.agents:
        for game in config.games:
            curves[fig3.curve_key(agent, game, "dense")] = _curve(dense, seed=seed)
            curves[fig3.curve_key(agent, game, "zero")] = _curve(zero, seed=seed + 1)
            seed += 2
    return {"curves": curves}


def _config():
    return dataclasses.replace(fig3.Config.quick(), num_seeds=SEEDS)


RISING = [3.0, 4.0, 6.0, 8.0, 9.0]  # the measurement: 3 at initialisation, ~6.5-13 later
FLAT = [3.0, 3.5, 4.0, 4.0, 4.5]  # zeroed reward: ~4 against ~3 for random parameters


def _t(values):
    """Student's t interval of the mean of per-seed ``values`` (scipy)."""
    values = np.asarray(values)
    return stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))


def _welch(x, y):
    """Welch's interval of mean(x) - mean(y), written out (scipy's t quantile)."""
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(vx + vy)
    d = np.mean(x) - np.mean(y)
    return d - half, d + half


def test_claims_hold_with_the_effect():
    m = _measurements(RISING, FLAT)
    claims = fig3.check_claims(m, _config())
    assert [c.verdict for c in claims] == ["held", "held", "held"]
    rise = claims[0].checks["dqn/minatar/breakout"]
    assert rise["estimate"] == pytest.approx(8.5 - 3.0)  # last 2 probes minus the first, per seed
    table = claims[0].evidence["table"]["dqn/minatar/breakout/dense"]
    assert table["rank_at_initialisation"] == pytest.approx(3.0)
    assert table["rank_late"] == pytest.approx(8.5)  # mean of the last 2 probes over the seeds
    # The intervals, with the seed as the unit (late probes averaged within a seed).
    dense = np.array(m["curves"]["dqn/minatar/breakout/dense"]["update_rank"])
    zero = np.array(m["curves"]["dqn/minatar/breakout/zero"]["update_rank"])
    random = np.array(m["curves"]["dqn/minatar/breakout/zero"]["update_rank_random"])
    late = lambda x: x[:, -2:].mean(axis=1)  # noqa: E731
    assert np.ptp(late(dense) - dense[:, 0]) > 0.3  # the seeds differ in their rise
    assert (rise["n"], rise["method"]) == (SEEDS, "Student t")
    assert [rise["low"], rise["high"]] == pytest.approx(_t(late(dense) - dense[:, 0]))
    control = claims[1].checks["dqn/minatar/breakout"]
    assert [control["low"], control["high"]] == pytest.approx(_t(late(zero) - late(random)))
    assert -2.0 < control["low"] < control["high"] < 2.0
    gap = claims[2].checks["dqn/minatar/breakout"]
    assert gap["method"] == "Welch t" and gap["estimate"] == pytest.approx(8.5 - 4.25)
    assert [gap["low"], gap["high"]] == pytest.approx(_welch(late(dense), late(zero)))
    assert gap["low"] > 2.0


def test_claims_fail_without_the_effect():
    config = _config()
    # The dense run replaced by the zero-reward run: no rise, no separation (control still holds).
    claims = {c.id: c for c in fig3.check_claims(_measurements(FLAT, FLAT), config)}
    assert claims["dense_rank_rises_above_initialisation"].verdict == "did not hold"
    assert claims["dense_rank_above_zero_reward_rank"].verdict == "did not hold"
    assert claims["zero_reward_rank_stays_near_random_parameters"].verdict == "held"
    rise = claims["dense_rank_rises_above_initialisation"].checks["dqn/minatar/breakout"]
    assert rise["estimate"] == pytest.approx(4.25 - 3.0) and rise["high"] < 2.0
    # The zero-reward run rising like the dense one: the control fails.
    claims = {c.id: c for c in fig3.check_claims(_measurements(RISING, RISING), config)}
    assert claims["zero_reward_rank_stays_near_random_parameters"].verdict == "did not hold"
    assert claims["dense_rank_above_zero_reward_rank"].verdict == "did not hold"


def test_seeds_that_disagree_leave_the_claim_inconclusive():
    m = _measurements(RISING, FLAT)
    drop = np.asarray(RISING) - np.asarray(FLAT)
    for key, curve in m["curves"].items():
        if key.endswith("/dense"):  # half the seeds rise by ~5.5, the other half by ~1.25
            curve["update_rank"] = [list(np.asarray(r) - drop) if i % 2 else r
                                    for i, r in enumerate(curve["update_rank"])]  # fmt: skip
    claims = {c.id: c for c in fig3.check_claims(m, _config())}
    rise = claims["dense_rank_rises_above_initialisation"]
    assert rise.verdict == "inconclusive" and not rise.holds
    check = rise.checks["dqn/minatar/breakout"]
    assert check["low"] < 2.0 < check["high"]


def test_one_failing_agent_fails_the_claim():
    m = _measurements(RISING, FLAT)
    m["curves"]["c51/minatar/breakout/dense"] = _curve(FLAT, seed=99)
    claims = fig3.check_claims(m, _config())
    assert claims[0].verdict == "did not hold"
    assert claims[0].checks["dqn/minatar/breakout"]["verdict"] == "held"


def test_config_requires_a_probe_at_initialisation():
    with pytest.raises(ValueError, match="learning_starts"):
        dataclasses.replace(fig3.Config.quick(), learning_starts=30_000)


def test_paper_preset_builds_atari_tandem_configs():
    config = fig3.Config.paper()
    cfg = fig3.agent_config(config, "c51", config.games[0], "zero", 0)
    assert cfg.env.startswith("atari/") and cfg.reward == "zero"
    assert cfg.optimizer == "rmsprop" and cfg.centered and cfg.target_period == 120_000
    assert cfg.encoder == "nature" and cfg.probe_every == 100_000
    assert config.frames >= 50 * 100_000


def test_end_to_end_tiny_run_and_reuse(tmp_path):
    config = tiny_config()
    outcome = fig3.run(config, 0, tmp_path)
    assert [c.id for c in outcome.claims] == [
        "dense_rank_rises_above_initialisation",
        "zero_reward_rank_stays_near_random_parameters",
        "dense_rank_above_zero_reward_rank",
    ]
    for name in outcome.figures:
        assert (tmp_path / name).stat().st_size > 10_000
    table = outcome.summary["table"]
    assert table["dqn/minatar/breakout/dense"]["initialisation_probe_frames"] == 1_000
    run = tmp_path / "runs" / "dqn_minatar-breakout_zero_s0"
    assert json.loads((run / "config.json").read_text())["config"]["reward"] == "zero"
    assert len(list((run / "probes").glob("step_*.npz"))) == 3
    # A second run reuses the complete runs (metrics untouched) and gives the same numbers.
    before = (run / "metrics.jsonl").read_text()
    again = fig3.run(config, 0, tmp_path)
    assert (run / "metrics.jsonl").read_text() == before
    assert again.summary["table"] == table
    # A different config in the same directory is refused, not overwritten.
    with pytest.raises(ValueError, match="different run"):
        fig3.run(dataclasses.replace(config, probe_k=8), 0, tmp_path)
