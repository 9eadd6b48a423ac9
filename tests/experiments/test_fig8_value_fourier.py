import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tdgen.experiments import fig3_value_update_rank as fig3
from tdgen.experiments import fig8_value_fourier as fig8
from tdgen.experiments import fig12_update_matrices as fig12
from tdgen.theory.spectral import fourier_spectrum

pytestmark = pytest.mark.slow

K = 64


def _sparse_rewards(rng, n):
    return (rng.random((n, K)) < 0.1).astype(float)


def _discounted_returns(rewards, gamma=0.95):
    values = np.zeros_like(rewards)
    running = np.zeros(len(rewards))
    for t in reversed(range(K)):
        running = rewards[:, t] + gamma * running
        values[:, t] = running
    return values


def _spectra(windows):
    return np.asarray([fourier_spectrum(w) for w in windows]).reshape(len(windows), K // 2 + 1)


def _run(values, rewards):
    """One run (seed) of a game: its windows' value and reward spectra."""
    return {"value_spectrum": _spectra(values), "reward_spectrum": _spectra(rewards)}


def _measurements(runs):
    """Three games, each with these runs: one (value windows, reward windows) pair per seed."""
    games = ("minatar/a", "minatar/b", "minatar/c")
    return {"games": {g: {"runs": [_run(v, r) for v, r in runs]} for g in games}}


def _seeds(n, windows=16, seed=0):
    """Sparse rewards of ``n`` seeds, each its own draw (so the seeds differ, as runs do): a list
    of [windows, K] arrays."""
    rng = np.random.default_rng(seed)
    return [_sparse_rewards(rng, windows) for _ in range(n)]


def _gap_per_seed(runs, config):
    """Value minus reward low-frequency share per window, averaged over each seed's windows."""
    return np.array([
        np.mean(fig8.low_frequency_share(_spectra(v), config.low_fraction)
                - fig8.low_frequency_share(_spectra(r), config.low_fraction))
        for v, r in runs
    ])  # fmt: skip


def test_low_frequency_share_of_pure_tones_and_white_noise():
    t = np.arange(K)
    low, high = np.cos(2 * np.pi * 2 * t / K), np.cos(2 * np.pi * 20 * t / K)
    share = fig8.low_frequency_share(np.array([fourier_spectrum(low), fourier_spectrum(high)]), 0.1)
    np.testing.assert_allclose(share, [1.0, 0.0], atol=1e-12)
    noise = np.random.default_rng(0).normal(size=(2000, K))
    mean = np.mean(fig8.low_frequency_share(np.abs(np.fft.rfft(noise)), 0.1))
    assert mean == pytest.approx(4 / 32, abs=0.01)  # ceil(0.1 * 32) of 32 frequencies


def test_claim_holds_for_discounted_returns_and_fails_without_the_effect():
    config = dataclasses.replace(fig8.Config.quick(), k=K)
    # The seeds of the runs it reuses: Figure 12's at quick scale (every game), Figure 3's at paper.
    assert fig8.Config.quick().num_seeds == fig12.Config.quick().num_seeds
    assert fig8.Config.paper().num_seeds == fig3.Config.paper().num_seeds
    rewards = _seeds(4)
    # The value a discounted return of the reward: smoother in every seed.
    runs = [(_discounted_returns(r), r) for r in rewards]
    claim = fig8.check_claims(_measurements(runs), config)[0]
    assert claim.verdict == "held" and claim.holds
    check = claim.checks["minatar/a"]
    gaps = _gap_per_seed(runs, config)  # the seed is the unit: windows averaged within it
    low, high = stats.t.interval(0.95, len(gaps) - 1, loc=gaps.mean(), scale=stats.sem(gaps))
    assert (check["n"], check["method"], check["unit"]) == (4, "Student t", "seeds")
    assert [check["estimate"], check["low"], check["high"]] == pytest.approx(
        [gaps.mean(), low, high]
    )
    assert check["low"] > 0 and np.ptp(gaps) > 0  # seeds differ, and all of them clear 0
    assert claim.evidence["minatar/a"]["windows"] == [16] * 4
    assert claim.evidence["minatar/a"]["gap_per_seed"] == pytest.approx(list(gaps))
    # The value spectrum replaced by the reward's: equal shares in every seed, not higher.
    claim = fig8.check_claims(_measurements([(r, r) for r in rewards]), config)[0]
    assert claim.verdict == "did not hold"
    # A white-noise value against smooth (low-frequency) rewards, each seed its own noise.
    rng = np.random.default_rng(1)
    runs = [(rng.normal(size=(16, K)), _discounted_returns(r)) for r in rewards]
    claim = fig8.check_claims(_measurements(runs), config)[0]
    assert claim.verdict == "did not hold"
    assert claim.checks["minatar/a"]["high"] < 0


def test_seeds_that_disagree_or_a_single_run_leave_the_claim_inconclusive():
    config = dataclasses.replace(fig8.Config.quick(), k=K)
    rewards = _seeds(4)
    rng = np.random.default_rng(1)
    # Two seeds with the effect, two with the opposite (noisy value, smooth reward).
    runs = [(_discounted_returns(r), r) for r in rewards[:2]] + [
        (rng.normal(size=(16, K)), _discounted_returns(r)) for r in rewards[2:]
    ]
    gaps = _gap_per_seed(runs, config)
    assert (gaps[:2] > 0).all() and (gaps[2:] < 0).all()
    claim = fig8.check_claims(_measurements(runs), config)[0]
    check = claim.checks["minatar/a"]
    assert check["low"] < 0 < check["high"]
    assert claim.verdict == "inconclusive" and not claim.holds
    # One run per game, however many windows: no interval over runs.
    one = [(_discounted_returns(rewards[0]), rewards[0])]
    claim = fig8.check_claims(_measurements(one), config)[0]
    check = claim.checks["minatar/a"]
    assert check["n"] == 1 and check["estimate"] > 0 and check["low"] == check["high"] == "nan"
    assert claim.verdict == "inconclusive"
    # A seed without windows is left out of its game's check (and counted in the evidence).
    empty = (np.zeros((0, K)), np.zeros((0, K)))
    claim = fig8.check_claims(_measurements([*one, empty]), config)[0]
    assert claim.checks["minatar/a"]["n"] == 1
    assert claim.evidence["minatar/a"]["windows"] == [16, 0]


def test_claim_is_false_when_no_game_has_a_window():
    config = dataclasses.replace(fig8.Config.quick(), k=K)
    empty = {"value_spectrum": np.zeros((0, K // 2 + 1)), "reward_spectrum": np.zeros((0, 33))}
    claim = fig8.check_claims({"games": {"minatar/freeway": {"runs": [empty, empty]}}}, config)[0]
    assert not claim.holds and claim.evidence["games_with_windows"] == 0


def test_end_to_end_trains_a_tiny_run(tmp_path):
    config = dataclasses.replace(
        fig8.Config.quick(), games=("minatar/breakout",), k=16, num_windows=4, frames=3_000,
        learning_starts=1_000, target_period=200, epsilon_decay_frames=1_000, log_every=1_000,
        encoder="mlp", num_seeds=2,
    )  # fmt: skip
    outcome = fig8.run(config, 0, tmp_path / "fig8_value_fourier")
    game = outcome.summary["minatar/breakout"]  # each field per seed
    assert game["reused"] == [False, False] and game["checkpoint_frames"] == [3_000, 3_000]
    assert [Path(r).name for r in game["run"]] == [
        "dqn_minatar-breakout_dense_s0", "dqn_minatar-breakout_dense_s1",
    ]  # fmt: skip
    assert all(len(w) > 0 for w in game["windows"])
    claim = outcome.claims[0]
    assert claim.evidence["minatar/breakout"]["windows"] == [len(w) for w in game["windows"]]
    assert claim.checks["minatar/breakout"]["n"] == 2  # the two runs, not their windows
    for name in outcome.figures:
        assert (tmp_path / "fig8_value_fourier" / name).stat().st_size > 10_000
