"""PPO and DAAC on envpool ProcGen (host-stepped): training, evaluation on held-out levels, resume."""

import pytest

pytest.importorskip("envpool")

from tdgen.agents import DAACConfig, PPOConfig, resume, train  # noqa: E402
from tdgen.runs import RunDir  # noqa: E402
from tdgen.runs.checkpoint import complete_checkpoints  # noqa: E402
from tdgen.runs.metrics import read_metrics  # noqa: E402

pytestmark = pytest.mark.slow


def tiny(cls, **overrides):
    values = dict(
        num_envs=4, num_steps=16, frames=256, num_minibatches=2, num_levels=3, test_num_levels=5,
        eval_every=128, eval_envs=2, eval_steps=30, probe_every=0, checkpoint_every=128,
        encoder="mlp", hidden_size=32,
    )  # fmt: skip
    return cls.procgen("procgen/bigfish", **{**values, **overrides})


@pytest.mark.parametrize("cls", [PPOConfig, DAACConfig])
def test_procgen_runs_evaluate_on_held_out_levels_and_resume(cls, tmp_path):
    out = train(cls.kind, tiny(cls, value_epochs=2) if cls is DAACConfig else tiny(cls),
                tmp_path / "run", progress=False)  # fmt: skip
    rows = read_metrics(out)
    assert rows[-1]["step"] == 256
    evals = [r for r in rows if "charts/test_return" in r]
    assert [r["step"] for r in evals] == [128, 256]
    assert any("losses/value_loss" in r for r in rows)
    # Lose the last checkpoint and resume: the run finishes again from frame 128.
    run = RunDir.open(out)
    assert complete_checkpoints(run.checkpoints) == [128, 256]
    for path in run.checkpoints.glob("ckpt_000000000256*"):
        path.unlink()
    resume(out, progress=False)
    rows = read_metrics(out)
    assert [r["step"] for r in rows if "charts/test_return" in r] == [128, 256]
    assert complete_checkpoints(run.checkpoints) == [128, 256]
