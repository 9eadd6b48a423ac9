import copy
import dataclasses

import numpy as np
import pytest

from tdgen.experiments import fig10_smooth_kernel_regression as fig10

SMALL = dataclasses.replace(
    fig10.Config.quick(), num_graphs=3, splits_per_graph=2, ridge_sensitivity=()
)


def test_run_end_to_end(tmp_path):
    outcome = fig10.run(SMALL, 0, tmp_path)
    claims = {c.id: c for c in outcome.claims}
    assert set(claims) == {
        "smooth_kernel_generalises_smooth_targets",
        "larger_n_generalises_better",
    }
    assert (tmp_path / outcome.figures[0]).stat().st_size > 10_000
    assert claims["smooth_kernel_generalises_smooth_targets"].holds
    ratios = claims["smooth_kernel_generalises_smooth_targets"].evidence[
        "error_ratio_largest_over_smallest_fraction"
    ]
    assert ratios["top"] < ratios["V_pi"] < 0.8 <= ratios["bottom"]


def test_top_projection_is_learned_exactly_without_ridge_given_enough_data():
    K, targets = fig10.targets_for(0, SMALL)
    train, test = np.arange(0, 100, 2), np.arange(1, 100, 2)
    pred = fig10.kernels.kernel_regression(K, targets["top"][train], train, test)
    np.testing.assert_allclose(pred, targets["top"][test], atol=1e-8)


def test_claims_fail_when_effect_absent():
    m = fig10.measure(SMALL, 0, ridges=(SMALL.ridge,))
    absent = copy.deepcopy(m)
    errors = absent["errors"][SMALL.ridge]
    errors["top"] = errors["bottom"]  # the smooth target behaves like the non-smooth one
    ns = sorted(SMALL.n_steps)
    errors[f"n={ns[-1]}"] = errors[f"n={ns[0]}"]
    claims = fig10.check_claims(absent, SMALL)
    assert not any(c.holds for c in claims)


def test_config_validation():
    with pytest.raises(ValueError, match="num_smooth"):
        dataclasses.replace(SMALL, num_smooth=100)
