"""Figure 5 panels render headless: a line per agent, a band over seeds, labelled axes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tdgen.evaluate import InterpolationConsistency, Robustness, plot_interpolation, plot_robustness

SCALES = np.array([0.0, 0.05, 0.1, 0.2])


def fake_robustness(decay, temperature=1.0, scales=SCALES):
    agreement = np.exp(-decay * scales)
    return Robustness(scales, agreement, 1 - agreement, 1.2 * (1 - agreement), temperature)


def fake_interpolation(dip):
    w = np.linspace(0, 1, 5)
    either = 1 - dip * np.sin(np.pi * w)
    return InterpolationConsistency(w, either, 1 - w * 0.6, 0.4 + w * 0.6, np.float32(0.4))


def test_robustness_figure_has_a_line_per_agent_and_seed_bands(tmp_path):
    results = {
        "DQN teacher": [fake_robustness(8.0), fake_robustness(9.0), fake_robustness(10.0)],
        "behaviour cloning": fake_robustness(2.0),
    }
    fig = plot_robustness(results, title="Pong")
    try:
        assert len(fig.axes) == 3
        for ax in fig.axes:
            assert "sigma" in ax.get_xlabel()
            assert len(ax.get_lines()) == 2
            assert len(ax.collections) == 1  # the teacher's standard-error band; one seed: none
        assert fig.axes[0].get_ylabel() == "greedy-action agreement"
        assert "T = 1" in fig.axes[1].get_ylabel()
        teacher = fig.axes[0].get_lines()[0].get_ydata()
        np.testing.assert_allclose(teacher, np.mean([np.exp(-d * SCALES) for d in (8, 9, 10)], 0))
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert labels == ["DQN teacher", "behaviour cloning"]
        fig.savefig(tmp_path / "robustness.png")
        assert (tmp_path / "robustness.png").stat().st_size > 1000
    finally:
        plt.close(fig)


def test_interpolation_figure(tmp_path):
    fig = plot_interpolation({"teacher": fake_interpolation(0.4), "student": fake_interpolation(0.1)},
                             metrics=("either",))  # fmt: skip
    try:
        (ax,) = fig.axes
        assert "mixing weight" in ax.get_xlabel() and "a or of b" in ax.get_ylabel()
        np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), fake_interpolation(0.1).either)
        fig.savefig(tmp_path / "interpolation.png")
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("results", "kwargs", "message"),
    [
        ({}, {}, "results_by_agent is empty"),
        ({"a": fake_robustness(1.0)}, {"metrics": ("agreement",)}, "unknown metrics"),
        ({"a": [fake_robustness(1.0), fake_robustness(1.0, scales=SCALES * 2)]}, {},
         "agent 'a': seeds were measured at different scales"),
        ({"a": fake_robustness(1.0), "b": fake_robustness(1.0, temperature=0.1)}, {},
         "different temperatures"),
        ({"a": fake_interpolation(0.1)}, {}, "agent 'a': expected a Robustness"),
        ({"a": []}, {}, "agent 'a': expected a Robustness"),
    ],
)  # fmt: skip
def test_bad_input_raises_before_drawing(results, kwargs, message):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=message):
        plot_robustness(results, **kwargs)
    assert plt.get_fignums() == before
