"""`tdgen rank RUN --checkpoint N` recomputes exactly the probe the run logged at that frame."""

import numpy as np
import pytest

from tdgen import cli
from tdgen.agents import train
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow


def test_rank_from_checkpoint_matches_the_logged_probe(tmp_path, make_config, capsys):
    run = train("dqn", make_config(probe_draws=1), tmp_path / "run", progress=False)
    logged = {row["step"]: row for row in read_metrics(run)}
    cli.main(["rank", str(run), "--checkpoint", "400"])
    printed = capsys.readouterr().err
    assert (
        f"trained parameters: update rank {int(logged[400]['interference/update_rank'])} "
        in printed
    )
    assert (
        f"random parameters: update rank {int(logged[400]['interference/update_rank_random'])} "
        in printed
    )
    saved = np.load(run / "probes" / "step_000000000400.npz")
    recomputed = np.load(run / "rank" / "step_000000000400.npz")
    np.testing.assert_allclose(
        recomputed["update_matrix"], saved["update_matrix"], rtol=1e-5, atol=1e-7
    )
    assert (run / "rank" / "update_matrix_trained.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        cli.main(["rank", str(run), "--checkpoint", "300"])
    assert "no complete checkpoint at frame 300" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the finished run's final checkpoint dropped its replay
        cli.main(["rank", str(run)])
    assert "holds no replay, which the probe reads" in capsys.readouterr().err
