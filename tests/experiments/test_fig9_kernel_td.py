import copy
import dataclasses

import numpy as np

from tdgen.experiments import fig9_kernel_td as fig9


def test_quick_run_end_to_end(tmp_path):
    config = dataclasses.replace(
        fig9.Config.quick(), sweep_step_fractions=(1.0, 250.0), sweep_steps=300
    )
    outcome = fig9.run(config, 0, tmp_path)
    claims = {c.id: c for c in outcome.claims}
    assert set(claims) == {
        "td_diverges_long_lengthscale",
        "short_lengthscale_fits_train_predicts_zero_on_test",
        "mc_long_lengthscale_generalises_but_misses_jump",
    }
    for name in outcome.figures:
        assert (tmp_path / name).stat().st_size > 10_000
    assert claims["short_lengthscale_fits_train_predicts_zero_on_test"].holds
    assert claims["mc_long_lengthscale_generalises_but_misses_jump"].holds
    # The finding: at an MC-stable step size, TD at lengthscale 100 stays bounded.
    divergence = claims["td_diverges_long_lengthscale"]
    assert not divergence.holds
    assert divergence.evidence["td_sup_ratio"] < 2.0
    assert divergence.evidence["td_flow_max_real_eigenvalue"] < 1e-10
    # Beyond eta = 2 / 0.392 TD does diverge, but MC diverged long before.
    big = divergence.evidence["step_sweep"][-1]
    assert big["td_spectral_radius"] > 1.0 and big["mc_spectral_radius"] > 1.0


def _measurements():
    return fig9.measure(
        dataclasses.replace(fig9.Config.quick(), sweep_step_fractions=(), sweep_steps=1)
    )


def test_divergence_rule_passes_when_td_blows_up_and_fails_with_mc_in_its_place():
    config = fig9.Config.quick()
    m = _measurements()
    key = fig9._key(max(config.gammas), max(config.lengthscales))
    blown = copy.deepcopy(m)
    blown["panels"][key]["td"][max(config.td_steps)] = np.full(config.num_states, np.inf)
    assert fig9.check_claims(blown, config)[0].holds
    absent = copy.deepcopy(blown)
    absent["panels"][key]["td"][max(config.td_steps)] = m["panels"][key]["mc"]
    assert not fig9.check_claims(absent, config)[0].holds


def test_generalisation_claims_fail_when_effect_absent():
    config = fig9.Config.quick()
    m = _measurements()
    swapped = copy.deepcopy(m)
    for gamma in config.gammas:
        lo = swapped["panels"][fig9._key(gamma, min(config.lengthscales))]
        hi = swapped["panels"][fig9._key(gamma, max(config.lengthscales))]
        lo["mc"], hi["mc"] = hi["mc"], lo["mc"]
    claims = {c.id: c for c in fig9.check_claims(swapped, config)}
    assert not claims["short_lengthscale_fits_train_predicts_zero_on_test"].holds
    assert not claims["mc_long_lengthscale_generalises_but_misses_jump"].holds
