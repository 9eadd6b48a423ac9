"""The examples run (small sizes) and log what they say: the Probe in a CleanRL-style torch loop,
inside a PureJaxRL-style scan, and as a Stable-Baselines3 callback."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # flax dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_purejaxrl_ppo_measures_on_schedule_inside_the_scan(capsys):
    metrics = load("purejaxrl_ppo").main(["--updates", "4", "--probe-every", "2", "--num-envs",
                                          "4", "--num-steps", "32", "--k", "16"])  # fmt: skip
    rank = metrics["interference/update_rank"]
    assert rank.shape == (4,)  # stacked over updates, as the scan's other metrics
    on = np.array([False, True, False, True])  # updates 2 and 4
    assert np.isnan(rank[~on]).all() and np.isfinite(rank[on]).all()
    assert ((rank[on] >= 1) & (rank[on] <= 16)).all()
    for name in ("dynamics/dormant_0.025", "dynamics/param_norm", "dynamics/grad_norm",
                 "dynamics/churn"):  # fmt: skip
        assert np.isfinite(metrics[name][on]).all(), name
    assert (metrics["dynamics/param_norm"][on] > 0).all()
    assert ((metrics["dynamics/churn"][on] >= 0) & (metrics["dynamics/churn"][on] <= 1)).all()
    assert np.isfinite(metrics["losses/loss"]).all()
    assert capsys.readouterr().out.count("update rank") == 2


def test_cleanrl_dqn_torch_is_measured_by_the_torch_probe(capsys):
    pytest.importorskip(
        "torch", reason="the torch example needs the extra: pip install 'tdgen[torch]'"
    )
    history = load("cleanrl_dqn_torch").main(["--total-timesteps", "600", "--probe-every", "300",
                                              "--learning-starts", "100", "--k", "16"])  # fmt: skip
    assert [row["step"] for row in history] == [300, 600]
    for row in history:
        assert 1 <= row["interference/update_rank"] <= 16
        assert 0 <= row["dynamics/dormant_0.025"] <= 1 and 0 <= row["dynamics/churn"] <= 1
        assert np.isfinite(row["dynamics/grad_norm"]) and row["perf/probe_seconds"] > 0
    # training moved the network away from its initialisation, measured against the snapshot
    assert history[-1]["dynamics/init_distance"] > 0
    assert capsys.readouterr().out.count("update rank") == 2


def test_sb3_ppo_logs_the_probe_through_the_callback(capsys):
    pytest.importorskip(
        "stable_baselines3",
        reason="stable-baselines3 is not installed: the SB3 example needs the extra, "
        "pip install 'tdgen[sb3]'",
    )
    history = load("sb3_ppo").main(["--steps", "512", "--every", "256", "--k", "16",
                                    "--n-steps", "256"])  # fmt: skip
    assert [row["step"] for row in history] == [256, 512]
    for row in history:
        assert 1 <= row["interference/update_rank"] <= 16
        assert 0 <= row["dynamics/churn"] <= 1  # total variation of the action distributions
        assert np.isfinite(row["dynamics/feature_srank/policy.mlp_extractor.policy_net.1"])
    assert capsys.readouterr().out.count("update rank") == 2
