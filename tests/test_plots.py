"""`tdgen.plots.seed_band`: seeds that log at different frames, or not at all."""

import matplotlib.pyplot as plt
import numpy as np

from tdgen import plots


def test_seed_band_uses_the_seeds_that_logged_at_each_frame():
    with plots.style():
        fig, axes = plots.figure()
        ax = axes[0, 0]
        line = plots.seed_band(ax, [[100, 200], [200], []], [[1.0, 3.0], [5.0], []], scale=100)
        x, mean = line.get_data()
        np.testing.assert_allclose(x, [1.0, 2.0])  # frames / scale, the union over seeds
        np.testing.assert_allclose(mean, [1.0, 4.0])  # 200: mean of seeds 0 and 1; seed 2 none
        band = ax.collections[0].get_paths()[0].vertices
        assert band[:, 1].min() == 1.0 and band[:, 1].max() == 5.0  # min-max over seeds
        assert plots.seed_band(ax, [[], []], [[], []]) is None  # no seed logged: nothing drawn
        assert len(ax.lines) == 1
    plt.close(fig)
