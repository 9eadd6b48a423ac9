import dataclasses

import numpy as np
import pytest

from tdgen.experiments import fig8_value_fourier as fig8
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


def _measurements(values, rewards):
    spectra = lambda windows: np.asarray([fourier_spectrum(w) for w in windows])  # noqa: E731
    game = {"value_spectrum": spectra(values), "reward_spectrum": spectra(rewards)}
    return {"games": {"minatar/a": game, "minatar/b": dict(game), "minatar/c": dict(game)}}


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
    rng = np.random.default_rng(0)
    rewards = _sparse_rewards(rng, 16)
    assert fig8.check_claims(_measurements(_discounted_returns(rewards), rewards), config)[0].holds
    # The value spectrum replaced by the reward's: equal shares, not higher.
    assert not fig8.check_claims(_measurements(rewards, rewards), config)[0].holds
    # A white-noise value against smooth (low-frequency) rewards.
    smooth = _discounted_returns(rewards)
    noise = rng.normal(size=(16, K))
    assert not fig8.check_claims(_measurements(noise, smooth), config)[0].holds


def test_claim_is_false_when_no_game_has_a_window():
    config = dataclasses.replace(fig8.Config.quick(), k=K)
    empty = {"value_spectrum": np.zeros((0, K // 2 + 1)), "reward_spectrum": np.zeros((0, 33))}
    claim = fig8.check_claims({"games": {"minatar/freeway": empty}}, config)[0]
    assert not claim.holds and claim.evidence["games_with_windows"] == 0


def test_end_to_end_trains_a_tiny_run(tmp_path):
    config = dataclasses.replace(
        fig8.Config.quick(), games=("minatar/breakout",), k=16, num_windows=4, frames=3_000,
        learning_starts=1_000, target_period=200, epsilon_decay_frames=1_000, log_every=1_000,
        encoder="mlp",
    )  # fmt: skip
    outcome = fig8.run(config, 0, tmp_path / "fig8_value_fourier")
    game = outcome.summary["minatar/breakout"]
    assert not game["reused"] and game["checkpoint_frames"] == 3_000
    assert len(game["windows"]) > 0
    claim = outcome.claims[0]
    assert claim.evidence["minatar/breakout"]["windows"] == len(game["windows"])
    for name in outcome.figures:
        assert (tmp_path / "fig8_value_fourier" / name).stat().st_size > 10_000
