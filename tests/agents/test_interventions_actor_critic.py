"""Plasticity interventions on PPO and DAAC: many at once train and log their events, resume bit
for bit across a firing, change nothing when absent, and bad input is refused before writing."""

import math
import shutil

import jax
import numpy as np
import pytest

from tdgen import cli
from tdgen.agents import DAACConfig, PPOConfig, build_agent, resume, train
from tdgen.errors import InputError
from tdgen.runs import RunDir, load_checkpoint, save_checkpoint
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow

CONFIGS = {"ppo": PPOConfig, "daac": DAACConfig}
# Periods of a few gradient updates (PPO: 3 epochs x 2 minibatches = 6 per iteration; DAAC: 2
# policy and 4 value updates), so each event fires several times in 512 frames; tau 0.5 makes
# some units of a small MLP count as dormant.
MANY = ("layer_norm", "l2_init", "parseval", "infer", "weight_decay", "redo:tau=0.5,period=5",
        "reset:period=7", "shrink_perturb:lam=0.9,sigma=0.1,period=4")  # fmt: skip
OTHERS = {
    "ppo": ("trac", "plasticity_injection:period=16", "crelu", "normalize_project"),
    "daac": ("trac", "plasticity_injection:period=5", "fourier", "normalize_project"),
}
EVENTS = ("redo/recycled", "reset/layers", "shrink_perturb/firings")


def tiny(kind="ppo", **overrides):
    values = dict(
        num_envs=4, num_steps=16, frames=512, num_minibatches=2, eval_every=256, eval_envs=2,
        eval_steps=50, probe_every=256, probe_k=16, checkpoint_every=256, encoder="mlp",
        hidden_size=32, value_epochs=2,
    )  # fmt: skip
    if kind == "ppo":
        values.pop("value_epochs")
    return CONFIGS[kind].minatar(**{**values, **overrides})


def comparable(path):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in read_metrics(path)]


def event_keys(kind):
    networks = [""] if kind == "ppo" else ["actor/", "critic/"]
    return [f"interventions/{n}{e}" for n in networks for e in EVENTS]


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_many_interventions_train_log_their_events_and_resume_bit_for_bit(kind, tmp_path):
    config = tiny(kind, interventions=MANY)
    reference = train(kind, config, tmp_path / "reference", progress=False)
    rows = comparable(reference)
    assert not any(r.get("charts/diverged") for r in rows)
    assert all(math.isfinite(v) for r in rows for k, v in r.items() if k.startswith("losses/"))
    for key in event_keys(kind):
        assert all(key in r for r in rows), key
        assert sum(r[key] for r in rows) > 0, key  # fired, and recycled some units
    assert any("interference/actor_update_rank" in r for r in rows)  # probes with InFeR's heads
    assert any("charts/test_return" in r for r in rows)
    # Lose the last checkpoint (256 -> 512: every event fires in between) and resume.
    final = resumes_bit_for_bit(kind, config, reference, tmp_path / "interrupted", last=512)
    assert "infer" in (final.params if kind == "ppo" else final.params["value"])


def resumes_bit_for_bit(kind, config, reference, interrupted, last):
    """A copy of ``reference`` without its checkpoint of frame ``last`` resumes to the same
    metrics and the same final state, leaf for leaf; returns that state."""
    shutil.copytree(reference, interrupted)
    for path in RunDir.open(interrupted).checkpoints.glob(f"ckpt_{last:012d}*"):
        path.unlink()
    resume(interrupted, progress=False)
    assert comparable(interrupted) == comparable(reference)
    agent = build_agent(kind, config)
    name = f"checkpoints/ckpt_{last:012d}.msgpack"
    _, a = load_checkpoint(reference / name, agent.init(), kind=kind)
    _, b = load_checkpoint(interrupted / name, agent.init(), kind=kind)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    return a


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_trac_injection_activations_and_projection_train_together(kind, tmp_path):
    """Injection comes after the checkpoint of frame 128 (PPO: update 16 of 6 an iteration;
    DAAC's policy: update 5 of 2 an iteration); a copy resumed from that checkpoint is exact."""
    config = tiny(kind, interventions=OTHERS[kind], frames=256, eval_every=0, checkpoint_every=128)
    run = train(kind, config, tmp_path / "run", progress=False)
    rows = read_metrics(run)
    assert not any(r.get("charts/diverged") for r in rows)
    assert all(math.isfinite(r["losses/loss"]) for r in rows)
    prefixes = [""] if kind == "ppo" else ["actor/", "critic/"]
    for prefix in prefixes:  # injects once, per network
        assert sum(r[f"interventions/{prefix}plasticity_injection/injected"] for r in rows) == 1
    assert any("interference/critic_update_rank" in r for r in rows)
    resumes_bit_for_bit(kind, config, run, tmp_path / "interrupted", last=256)


# The last metrics line of tiny(kind, frames=256, eval_every=256, eval_steps=50) as the code
# before interventions wrote it (bit for bit on the machine that recorded it).
BEFORE = {
    "ppo": {"losses/loss": 0.06908446550369263, "losses/value_loss": 0.15960410237312317,
            "losses/entropy": 1.098222255706787, "losses/approx_kl": 1.706555485725403e-05,
            "charts/test_return": 0.4000000059604645, "charts/train_return": 0.6666666865348816,
            "interference/critic_update_rank_random": 3.0},
    "daac": {"losses/loss": 0.24130864441394806, "losses/value_loss": 0.13515184819698334,
             "losses/advantage_loss": 1.0083534717559814, "losses/entropy": 1.09846830368042,
             "charts/test_return": 0.625, "charts/train_return": 0.6666666865348816,
             "interference/critic_update_rank_random": 2.0},
}  # fmt: skip


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_without_interventions_a_run_computes_and_loads_as_before(kind, tmp_path):
    config = tiny(kind, frames=256, eval_every=256)
    assert "interventions" not in config.to_dict()
    out = train(kind, config, tmp_path / "run", progress=False)
    last = read_metrics(out)[-1]
    assert {k: last[k] for k in BEFORE[kind]} == pytest.approx(BEFORE[kind], rel=1e-5)
    assert not any(k.startswith("interventions/") for k in last)
    # A checkpoint of the layout before interventions (no memory, no logs) still loads.
    agent = build_agent(kind, config)
    _, state = load_checkpoint(out / "checkpoints/ckpt_000000000256.msgpack", agent.init(),
                               kind=kind)  # fmt: skip
    old = {k: v for k, v in state.__dict__.items() if k not in ("memory", "logs")}
    save_checkpoint(tmp_path / "old", 256, old, kind=kind)
    _, loaded = load_checkpoint(tmp_path / "old/ckpt_000000000256.msgpack", agent.init(),
                                kind=kind)  # fmt: skip
    for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("interventions", "message"),
    [
        (("redx",), "did you mean 'redo'"),
        (("reset:period=0",), "reset period must be >= 1"),
        (("crelu", "fourier"), "choose one"),
    ],
)
def test_bad_interventions_are_refused_before_anything_is_written(tmp_path, capsys,
                                                                  interventions, message):  # fmt: skip
    with pytest.raises(InputError, match=message):
        tiny("ppo", interventions=interventions)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ppo", "--interventions", *interventions, "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_redo_is_refused_on_impala_at_build_time(kind, tmp_path):
    pytest.importorskip("envpool")
    config = CONFIGS[kind].procgen(interventions=("redo",))
    with pytest.raises(InputError, match="needs a sequential encoder"):
        train(kind, config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_an_event_fires_in_the_procgen_host_loop(tmp_path):
    pytest.importorskip("envpool")
    config = PPOConfig.procgen(
        "procgen/bigfish", num_envs=4, num_steps=16, frames=128, num_minibatches=2,
        num_levels=3, test_num_levels=5, eval_every=128, eval_envs=2, eval_steps=30,
        probe_every=0, checkpoint_every=128, encoder="mlp", hidden_size=32,
        interventions=("redo:tau=0.5,period=5",),
    )  # fmt: skip
    rows = read_metrics(train("ppo", config, tmp_path / "run", progress=False))
    assert rows[-1]["step"] == 128 and "charts/test_return" in rows[-1]
    assert all(math.isfinite(r["losses/loss"]) for r in rows)
    assert sum(r["interventions/redo/recycled"] for r in rows) > 0
