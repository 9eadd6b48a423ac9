import dataclasses
import json

import pytest

from tdgen.experiments import fig4_actor_critic_update_rank as fig4

pytestmark = pytest.mark.slow


def _runs(ranks, seeds=2):
    """Per-seed curves for one agent: ranks = {"actor": [...], "critic": [...]} per probe."""
    n = len(ranks["actor"])
    curve = {
        "frames": [32_768 * (i + 1) for i in range(n)],
        "return_frames": [8_192, 16_384],
        "episodic_return": [1.0, 2.0],
    }
    for network, values in ranks.items():
        curve[network] = list(values)
        curve[f"{network}_random"] = [2.0] * n
    return [dict(curve) for _ in range(seeds)]


def _measurements(ppo, daac, other=None):
    """Every quick game with these ranks; ``other``: (ppo, daac) on the second game instead."""
    games = fig4.Config.quick().games
    curves = {game: {"ppo": _runs(ppo), "daac": _runs(daac)} for game in games}
    if other:
        curves[games[1]] = {"ppo": _runs(other[0]), "daac": _runs(other[1])}
    return {"curves": curves}


# The SpaceInvaders-MinAtar measurement: DAAC critic 12.3, PPO critic 7.3, PPO actor 5.4,
# DAAC actor 3.1 over 49-196k frames.
PPO = {"actor": [5.0, 5.5, 6.0], "critic": [7.0, 7.5, 8.0]}
DAAC = {"actor": [3.0, 3.0, 3.5], "critic": [12.0, 12.5, 13.0]}


def test_claims_hold_with_the_effect():
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, DAAC), fig4.Config.quick())}
    assert all(c.holds for c in claims.values())
    evidence = claims["daac_critic_highest_early"].evidence["minatar/space_invaders"]
    assert evidence["early_mean_ranks"]["daac/critic"] == pytest.approx(12.25)  # first 2 probes
    assert evidence["paired_share_daac_critic_strictly_highest"] == 1.0


def test_claims_fail_without_the_effect():
    config = fig4.Config.quick()
    # TD gradients make no difference: DAAC's networks look like PPO's.
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, PPO), config)}
    assert not claims["daac_critic_highest_early"].holds
    assert not claims["daac_critic_above_ppo_critic_early"].holds
    assert not claims["daac_actor_below_ppo_actor_early"].holds
    # Actors above critics: the "actors lowest" claim fails.
    swapped = {"actor": PPO["critic"], "critic": PPO["actor"]}
    claims = {c.id: c for c in fig4.check_claims(_measurements(swapped, DAAC), config)}
    assert not claims["actors_lowest_early"].holds


def test_verdicts_per_game_and_pooled():
    config = fig4.Config.quick()
    assert config.games == ("minatar/space_invaders", "minatar/breakout")
    # The effect on SpaceInvaders only: Breakout's DAAC critic sits with PPO's (a gap of 0 within
    # the probes' spread: inconclusive, not held).
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, DAAC, (PPO, PPO)), config)}
    critic = claims["daac_critic_above_ppo_critic_early"]
    checks = {name: check["verdict"] for name, check in critic.checks.items()}
    assert checks == {
        "minatar/space_invaders: daac/critic - ppo/critic": "held",
        "minatar/breakout: daac/critic - ppo/critic": "inconclusive",
        "pooled: daac/critic - ppo/critic": "held",  # (5 + 0) / 2 > 0
    }
    assert critic.verdict == "inconclusive" and not critic.holds
    # The opposite ordering on Breakout: that game did not hold, so neither did the claim.
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, DAAC, (DAAC, PPO)), config)}
    reversed_ = claims["daac_critic_above_ppo_critic_early"]
    assert reversed_.checks["minatar/breakout: daac/critic - ppo/critic"]["verdict"] == (
        "did not hold"
    )
    assert reversed_.verdict == "did not hold"
    pooled = critic.checks["pooled: daac/critic - ppo/critic"]
    assert pooled["estimate"] == pytest.approx((12.25 - 7.25) / 2)


@pytest.mark.timeout(600)
def test_a_tiny_run_end_to_end(tmp_path):
    config = dataclasses.replace(
        fig4.Config.quick(), num_seeds=1, frames=1_024, probe_every=512, probe_k=16,
        probe_draws=1, early_probes=1, encoder="mlp", num_envs=4,
    )  # fmt: skip
    outcome = fig4.run(config, seed=0, out_dir=tmp_path)
    assert [c.id for c in outcome.claims] == [
        "daac_critic_highest_early", "daac_critic_above_ppo_critic_early", "actors_lowest_early",
        "daac_actor_below_ppo_actor_early",
    ]  # fmt: skip
    assert (tmp_path / outcome.figures[0]).exists()
    json.dumps(outcome.summary)  # serialisable
    with pytest.raises(ValueError, match="early_probes"):
        dataclasses.replace(config, early_probes=5)
