import copy
import dataclasses

import pytest

from tdgen.experiments import obs42_second_order_dynamics as obs42


def _small_config():
    return dataclasses.replace(
        obs42.Config.quick(),
        num_inits=1,
        horizon=1.0,
        num_checkpoints=5,
        alphas=(0.02, 0.01, 0.005),
        fit_max_alpha=0.02,
    )


@pytest.fixture(scope="module")
def measured():
    config = _small_config()
    return config, obs42.measure(config, seed=0)


def test_small_run_end_to_end(tmp_path, measured):
    config, m = measured
    figures = obs42.plot(m, config, tmp_path)
    assert (tmp_path / figures[0]).stat().st_size > 10_000
    claims = {c.id: c for c in obs42.check_claims(m, config)}
    assert claims["modified_flow_tracks_discrete_iterates"].holds
    slopes = claims["error_slopes_match_observation_4_2"]
    assert slopes.holds, slopes.evidence
    assert 0.8 <= slopes.evidence["init=0"]["global_first"] <= 1.2
    assert 1.8 <= slopes.evidence["init=0"]["global_modified"] <= 2.3
    assert "correction_lowers_eq41_objective" in claims


def test_fit_slope_recovers_power_law():
    assert obs42.fit_slope([0.1, 0.05, 0.025], [3 * a**2 for a in (0.1, 0.05, 0.025)]) == (
        pytest.approx(2.0)
    )


def test_claims_fail_with_first_order_flow_in_place_of_modified(measured):
    config, m = measured
    absent = copy.deepcopy(m)
    for init in absent["inits"].values():
        for row in init["rows"]:
            row["error_modified"] = row["error_first"]
            row["local_error_modified"] = row["local_error_first"]
            row["alignment"]["modified"] = row["alignment"]["first_order"]
    assert not any(c.holds for c in obs42.check_claims(absent, config))


def test_config_rejects_steps_that_miss_checkpoints():
    with pytest.raises(ValueError, match="whole number of steps"):
        obs42.Config(alphas=(0.03, 0.01, 0.005), horizon=1.0, num_checkpoints=10)
