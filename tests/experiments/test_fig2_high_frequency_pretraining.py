import copy
import dataclasses

import numpy as np
import pytest

from tdgen.experiments import fig2_high_frequency_pretraining as fig2


def _small_config(**changes):
    return dataclasses.replace(
        fig2.Config.quick(),
        num_states=40,
        reward_state=20,
        frequencies=(1.0, 4.0, 8.0),
        hidden_sizes=(32, 32),
        pretrain_steps=400,
        finetune_steps=400,
        log_every=40,
        num_seeds=2,
        **changes,
    )


@pytest.fixture(scope="module")
def measured():
    config = _small_config()
    return config, fig2.measure(config, seed=0)


def test_small_run_end_to_end(tmp_path, measured):
    config, m = measured
    assert m["final"].shape == (2, 3, 40)
    assert m["train_loss"].shape == (2, 3, 10)
    assert len(m["train"]) == 10 and len(m["interp"]) == 30
    figures = fig2.plot(m, config, tmp_path)
    assert (tmp_path / figures[0]).stat().st_size > 10_000
    claim = fig2.check_claims(m, config)[0]
    assert claim.evidence["mean_spearman"] == pytest.approx(
        np.mean(claim.evidence["spearman_per_seed"])
    )
    # Pre-training fits the low frequency; fine-tuning lowers every training-state loss.
    assert np.mean((m["pretrained"][:, 0] - m["targets"][0]) ** 2) < 0.05
    assert np.all(m["train_loss"][:, :, -1] < 0.5 * m["train_loss"][:, :, 0])


def test_rule_passes_on_increasing_interpolation_loss(measured):
    config, m = measured
    made_up = copy.deepcopy(m)
    made_up["interp_loss"][:, :, -1] = np.array([[0.01, 0.02, 0.05], [0.02, 0.03, 0.04]])
    made_up["train_loss"][:, :, -1] = 1e-5
    assert fig2.check_claims(made_up, config)[0].holds


def test_claim_fails_when_every_network_sees_the_same_frequency(measured):
    config, _ = measured
    same = fig2.measure(dataclasses.replace(config, frequencies=(4.0, 4.0, 4.0)), seed=0)
    made_low = copy.deepcopy(same)
    made_low["train_loss"][:, :, -1] = 1e-5  # only the ordering can fail the claim
    claim = fig2.check_claims(made_low, config)[0]
    assert not claim.holds
    assert claim.evidence["mean_spearman"] < config.spearman_threshold
