import dataclasses

import numpy as np
import pytest
from scipy import stats

from tdgen.experiments import fig4_actor_critic_update_rank as fig4

SEEDS = 5


def _runs(ranks, seed):
    """``SEEDS`` per-seed curves of one agent whose mean over seeds is ``ranks`` = {"actor":
    [...], "critic": [...]} per probe: each network of each seed off it by its own offset (sd
    0.3) and probe noise (sd 0.3), centred over seeds at every probe; random parameters ~2. The
    verdicts below come out the same for 300 of 300 draws of this spread, not for this draw
    alone."""
    rng = np.random.default_rng(seed)
    n = len(ranks["actor"])
    spread = {}
    for network in ranks:
        x = rng.normal(0, 0.3, (SEEDS, 1)) + rng.normal(0, 0.3, (SEEDS, n))
        spread[network] = x - x.mean(axis=0)
    runs = []
    for i in range(SEEDS):
        curve = {
            "frames": [32_768 * (j + 1) for j in range(n)],
            "return_frames": [8_192, 16_384],
            "episodic_return": [1.0 + 0.1 * i, 2.0 + 0.2 * i],
        }
        for network, values in ranks.items():
            curve[network] = list(np.asarray(values, dtype=float) + spread[network][i])
            curve[f"{network}_random"] = list(2.0 + rng.normal(0, 0.1, n))
        runs.append(curve)
    return runs


def _measurements(ppo, daac, other=None):
    """Every quick game with these ranks; ``other``: (ppo, daac) on the second game instead. Every
    (game, agent) has its own independent seeds."""
    games = fig4.Config.quick().games
    curves = {game: {"ppo": _runs(ppo, 2 * i), "daac": _runs(daac, 2 * i + 1)}
              for i, game in enumerate(games)}  # fmt: skip
    if other:
        curves[games[1]] = {"ppo": _runs(other[0], 10), "daac": _runs(other[1], 11)}
    return {"curves": curves}


def _config():
    return dataclasses.replace(fig4.Config.quick(), num_seeds=SEEDS)


def _early(m, game, agent, network, probes=2):
    """Per seed, the mean of the first ``probes`` probes: [seeds]."""
    return np.array([c[network][:probes] for c in m["curves"][game][agent]]).mean(axis=1)


def _interval(groups, weights):
    """t interval of sum_g w_g mean_g over independent groups, Welch-Satterthwaite degrees of
    freedom (Welch's interval for weights 1, -1), written out with scipy's t quantile."""
    parts = [w**2 * np.var(g, ddof=1) / len(g) for g, w in zip(groups, weights, strict=True)]
    df = sum(parts) ** 2 / sum(p**2 / (len(g) - 1) for p, g in zip(parts, groups, strict=True))
    estimate = sum(w * np.mean(g) for g, w in zip(groups, weights, strict=True))
    half = stats.t.ppf(0.975, df) * np.sqrt(sum(parts))
    return estimate, estimate - half, estimate + half


# The SpaceInvaders-MinAtar measurement: DAAC critic 12.3, PPO critic 7.3, PPO actor 5.4,
# DAAC actor 3.1 over 49-196k frames.
PPO = {"actor": [5.0, 5.5, 6.0], "critic": [7.0, 7.5, 8.0]}
DAAC = {"actor": [3.0, 3.0, 3.5], "critic": [12.0, 12.5, 13.0]}


def test_claims_hold_with_the_effect():
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, DAAC), _config())}
    assert all(c.holds for c in claims.values())
    evidence = claims["daac_critic_highest_early"].evidence["minatar/space_invaders"]
    assert evidence["early_mean_ranks"]["daac/critic"] == pytest.approx(12.25)  # first 2 probes
    assert evidence["paired_share_daac_critic_strictly_highest"] == 1.0


def test_claims_fail_without_the_effect():
    config = _config()
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
    config = _config()
    assert config.games == ("minatar/space_invaders", "minatar/breakout")
    # The effect on SpaceInvaders only: Breakout's DAAC critic sits with PPO's (a gap of 0 within
    # the seeds' spread: inconclusive, not held).
    m = _measurements(PPO, DAAC, (PPO, PPO))
    claims = {c.id: c for c in fig4.check_claims(m, config)}
    critic = claims["daac_critic_above_ppo_critic_early"]
    checks = {name: check["verdict"] for name, check in critic.checks.items()}
    assert checks == {
        "minatar/space_invaders: daac/critic - ppo/critic": "held",
        "minatar/breakout: daac/critic - ppo/critic": "inconclusive",
        "pooled: daac/critic - ppo/critic": "held",  # (5 + 0) / 2 > 0
    }
    assert critic.verdict == "inconclusive" and not critic.holds
    # The intervals, the seed the unit: Welch per game, the pooled t over games.
    groups = {(g, a): _early(m, g, a, "critic") for g in config.games for a in ("daac", "ppo")}
    space, breakout = config.games
    for game in config.games:
        check = critic.checks[f"{game}: daac/critic - ppo/critic"]
        assert (check["method"], check["n"]) == ("Welch t", SEEDS)
        expected = _interval([groups[game, "daac"], groups[game, "ppo"]], [1, -1])
        assert [check["estimate"], check["low"], check["high"]] == pytest.approx(expected)
    breakout_check = critic.checks[f"{breakout}: daac/critic - ppo/critic"]
    assert breakout_check["low"] < 0 < breakout_check["high"]
    pooled = critic.checks["pooled: daac/critic - ppo/critic"]
    assert pooled["estimate"] == pytest.approx((12.25 - 7.25) / 2)
    expected = _interval([groups[space, "daac"], groups[breakout, "daac"],
                          groups[space, "ppo"], groups[breakout, "ppo"]],
                         [0.5, 0.5, -0.5, -0.5])  # fmt: skip
    assert [pooled["estimate"], pooled["low"], pooled["high"]] == pytest.approx(expected)
    assert pooled["low"] > 0
    # The opposite ordering on Breakout: that game did not hold, so neither did the claim.
    claims = {c.id: c for c in fig4.check_claims(_measurements(PPO, DAAC, (DAAC, PPO)), config)}
    reversed_ = claims["daac_critic_above_ppo_critic_early"]
    assert reversed_.checks["minatar/breakout: daac/critic - ppo/critic"]["verdict"] == (
        "did not hold"
    )
    assert reversed_.verdict == "did not hold"


def test_networks_of_one_run_are_paired_per_seed():
    m = _measurements(PPO, DAAC)
    claims = {c.id: c for c in fig4.check_claims(m, _config())}
    check = claims["actors_lowest_early"].checks["minatar/space_invaders: ppo/critic - ppo/actor"]
    game = "minatar/space_invaders"
    diff = _early(m, game, "ppo", "critic") - _early(m, game, "ppo", "actor")
    low, high = stats.t.interval(0.95, SEEDS - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert (check["method"], check["n"]) == ("Student t", SEEDS)
    assert [check["estimate"], check["low"], check["high"]] == pytest.approx(
        [diff.mean(), low, high]
    )


# The end-to-end run of Figure 4 is in test_dyn_metrics_vs_update_rank.py, on the runs that test trains.
