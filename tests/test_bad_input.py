"""Every bad input to `tdgen`, one line: each file the commands read is damaged in a copy of a real
run (missing, empty, truncated, garbage, wrong type, missing field) and each option given an unknown
name or an out-of-range value. Each case must exit 2 with one line on stderr naming the file or
option and what was expected, print no traceback, and leave every byte already on disk unchanged.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import flax.serialization
import jax
import numpy as np
import pytest

from tdgen import cli
from tdgen.agents import DQNConfig, train
from tdgen.interference.command import save_params

pytestmark = pytest.mark.slow  # trains a tiny DQN (a shared fixture)

CKPT = "run/checkpoints/ckpt_000000000400"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished tiny MinAtar DQN run, a seed group holding it, a params file and a batch."""
    root = tmp_path_factory.mktemp("world")
    config = DQNConfig.minatar(
        frames=400, num_envs=4, buffer_size=400, batch_size=8, learning_starts=40,
        target_period=40, log_every=100, probe_every=0, checkpoint_every=200, encoder="mlp",
    )  # fmt: skip
    train("dqn", config, root / "run", progress=False)
    shutil.copytree(root / "run", root / "group" / "seed0")
    group = {"kind": "group", "agent": "dqn", "lanes": "map", "runs": ["seed0"]}
    (root / "group" / "group.json").write_text(json.dumps(group))
    rng = np.random.default_rng(0)
    k = 8
    batch = {"obs": rng.normal(size=(k, 6)).astype(np.float32), "action": rng.integers(0, 3, k),
             "target": rng.normal(size=k).astype(np.float32)}  # fmt: skip
    np.savez(root / "batch.npz", **batch)
    params = {"Dense_0": {"kernel": rng.normal(size=(6, 3)), "bias": np.zeros(3)}}
    save_params(root / "params.msgpack", jax.tree.map(np.float32, params))
    (root / "spec.toml").write_text('agents = ["dqn"]\nenvs = ["minatar/breakout"]\nseeds = [0]\n')
    (root / "bounds.toml").write_text('"minatar/breakout" = [0.0, 10.0]\n')
    return root


def write(name, data):
    """Damage: replace file ``name`` with ``data`` (bytes, or an object written as JSON)."""

    def damage(root):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())

    return damage


def truncate(name):
    def damage(root):
        path = root / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return damage


def remove(name):
    return lambda root: (root / name).unlink()


def edit_config(**changes):
    def damage(root):
        stored = json.loads((root / "run/config.json").read_text())
        stored["config"].update(changes)
        (root / "run/config.json").write_text(json.dumps(stored))

    return damage


def resign(name, payload):
    """Damage: a checkpoint whose bytes are ``payload`` with a marker that matches them."""

    def damage(root):
        (root / f"{name}.msgpack").write_bytes(payload)
        (root / f"{name}.done").write_text(hashlib.sha256(payload).hexdigest())

    return damage


def nothing(root):
    pass


RESUME, RANK = ["resume", "{root}/run"], ["rank", "{root}/params.msgpack", "{root}/batch.npz"]
REPORT = ["report", "{root}/run", "--out", "{root}/report"]
NOT_TDGEN = flax.serialization.msgpack_serialize({"format": "other", "state": {}})
# (id, damage, command, what the one line must contain)
CASES = [
    # config.json of a run
    ("config-missing", remove("run/config.json"), RESUME, "run is not a tdgen run directory"),
    ("config-empty", write("run/config.json", b""), RESUME, "config.json is empty"),
    ("config-truncated", truncate("run/config.json"), RESUME, "config.json is not valid JSON"),
    ("config-garbage", write("run/config.json", b"\xff\xfe\x00"), RESUME, "config.json is not text"),
    ("config-list", write("run/config.json", [1, 2]), RESUME, "config.json holds a list"),
    ("config-no-kind", write("run/config.json", {"config": {}}), RESUME, "no 'kind' field"),
    ("config-kind-int", write("run/config.json", {"kind": 5, "config": {}}), RESUME,
     "field 'kind' is a int, expected str"),
    ("config-no-config", write("run/config.json", {"kind": "dqn"}), RESUME, "no 'config' field"),
    ("config-unknown-kind", write("run/config.json", {"kind": "dqm", "config": {}}), RESUME,
     "config.json: unknown agent 'dqm'"),
    ("config-unknown-field", edit_config(colour="red"), RESUME, "does not know: ['colour']"),
    ("config-wrong-type", edit_config(frames="many"), RESUME,
     "config.json: field frames is a str, expected int"),
    ("config-out-of-range", edit_config(frames=-5), RESUME, "frames must be positive"),
    ("config-bad-env", edit_config(env="minatar/brakout"), RESUME,
     "config.json: unknown environment 'minatar/brakout': did you mean"),
    # metrics.jsonl
    ("metrics-garbage", write("run/metrics.jsonl", b'{"step": 100}\nnot json\n'), RESUME,
     "metrics.jsonl, line 2"),
    ("metrics-wrong-type", write("run/metrics.jsonl", b"[1, 2]\n"), RESUME,
     "metrics.jsonl, line 1: expected a JSON object"),
    ("metrics-no-step", write("run/metrics.jsonl", b'{"x": 1}\n'), REPORT, "metrics.jsonl, line 1"),
    ("metrics-not-text", write("run/metrics.jsonl", b"\xff\n"), REPORT, "metrics.jsonl is not text"),
    # checkpoints and their completion markers
    ("ckpt-truncated", truncate(f"{CKPT}.msgpack"), RESUME, "is corrupt: its SHA-256"),
    ("ckpt-marker-garbage", write(f"{CKPT}.done", b"zz"), RESUME, "is corrupt"),
    ("ckpt-marker-empty", write(f"{CKPT}.done", b""), RESUME, "is corrupt"),
    ("ckpt-garbage-signed", resign(CKPT, b"\xc1garbage"), RESUME, "is not a msgpack file"),
    ("ckpt-empty-signed", resign(CKPT, b""), RESUME, "is not a msgpack file"),
    ("ckpt-foreign", resign(CKPT, NOT_TDGEN), RESUME, "is not a tdgen checkpoint"),
    ("ckpt-missing-frame", nothing, ["rank", "{root}/run", "--checkpoint", "999"],
     "no complete checkpoint at frame 999"),
    ("ckpt-none", lambda r: shutil.rmtree(r / "run/checkpoints"),
     ["evaluate", "{root}/run", "--frames", "200"], "no complete checkpoint"),
    # group.json of a seed group
    ("group-garbage", write("group/group.json", b"{runs"), ["resume", "{root}/group"],
     "group.json is not valid JSON"),
    ("group-no-runs", write("group/group.json", {"kind": "group"}), ["resume", "{root}/group"],
     "group.json has no 'runs' field"),
    ("group-runs-type", write("group/group.json", {"runs": "seed0"}), ["resume", "{root}/group"],
     "field 'runs' is a str, expected list"),
    ("group-bad-lanes", write("group/group.json", {"runs": ["seed0"], "lanes": "fast"}),
     ["resume", "{root}/group"], "'lanes' must be one of"),
    ("group-missing-run", write("group/group.json", {"runs": ["seed9"]}), ["resume", "{root}/group"],
     "seed9 is not a tdgen run directory"),
    # params .msgpack and batch .npz of `tdgen rank`
    ("params-missing", remove("params.msgpack"), RANK, "params.msgpack does not exist"),
    ("params-empty", write("params.msgpack", b""), RANK, "params.msgpack is empty"),
    ("params-truncated", truncate("params.msgpack"), RANK, "params.msgpack is not a msgpack file"),
    ("params-extra-data", lambda r: (r / "params.msgpack").write_bytes(
        (r / "params.msgpack").read_bytes() * 2), RANK, "params.msgpack is not a msgpack file"),
    ("params-garbage", write("params.msgpack", b"\xc1\xc1\xc1"), RANK, "is not a msgpack file"),
    ("params-wrong-type", write("params.msgpack", flax.serialization.msgpack_serialize([1, 2])),
     RANK, "expected a msgpack dict with a 'params' entry"),
    ("params-no-params", write("params.msgpack", flax.serialization.msgpack_serialize({"x": 1})),
     RANK, "expected a msgpack dict with a 'params' entry"),
    ("params-not-mlp", write("params.msgpack", flax.serialization.msgpack_serialize(
        {"params": {"conv": {"w": np.zeros(3)}}})), RANK, "expected MLP params"),
    ("batch-missing", remove("batch.npz"), RANK, "batch.npz does not exist"),
    ("batch-empty", write("batch.npz", b""), RANK, "batch.npz is not a readable .npz"),
    ("batch-truncated", truncate("batch.npz"), RANK, "batch.npz is not a readable .npz"),
    ("batch-garbage", write("batch.npz", b"PK\x03\x04garbage"), RANK, "is not a readable .npz"),
    ("batch-no-action", lambda r: np.savez(r / "batch.npz", obs=np.zeros((4, 6))), RANK,
     "batch.npz lacks action"),
    ("batch-float-action", lambda r: np.savez(r / "batch.npz", obs=np.zeros((4, 6)),
     action=np.zeros(4), target=np.zeros(4)), RANK, "action must be integers"),
    ("batch-ragged", lambda r: np.savez(r / "batch.npz", obs=np.zeros((4, 6)),
     action=np.zeros(3, int), target=np.zeros(4)), RANK, "one leading axis"),
    ("batch-wrong-width", lambda r: np.savez(r / "batch.npz", obs=np.zeros((4, 5)),
     action=np.zeros(4, int), target=np.zeros(4)), RANK, "does not take the 5 inputs"),
    ("batch-action-range", lambda r: np.savez(r / "batch.npz", obs=np.zeros((4, 6)),
     action=np.full(4, 7), target=np.zeros(4)), RANK, "actions must lie in [0, 3)"),
    # sweep spec TOML
    ("spec-missing", remove("spec.toml"), ["sweep", "{root}/spec.toml", "--out", "{root}/s"],
     "spec.toml does not exist"),
    ("spec-empty", write("spec.toml", b""), ["sweep", "{root}/spec.toml", "--out", "{root}/s"],
     "spec.toml is empty"),
    ("spec-garbage", write("spec.toml", b"agents = [dqn"), ["sweep", "{root}/spec.toml"],
     "spec.toml is not valid TOML"),
    ("spec-unknown-key", write("spec.toml", b'agent = ["dqn"]\n'), ["sweep", "{root}/spec.toml"],
     "spec.toml: unknown sweep keys 'agent'"),
    ("spec-wrong-type", write("spec.toml", b'agents = ["dqn"]\nenvs = ["minatar/breakout"]\n'
     b'seeds = 3\n'), ["sweep", "{root}/spec.toml"], "spec.toml: seeds must be a list, got 3"),
    ("spec-unknown-agent", write("spec.toml", b'agents = ["dqm"]\nenvs = ["minatar/breakout"]\n'),
     ["sweep", "{root}/spec.toml"], "unknown agent 'dqm'"),
    # normalisation table of `tdgen report`
    ("bounds-missing", nothing, [*REPORT, "--normalize", "{root}/nope.toml"],
     "--normalize takes none, observed or a TOML/JSON file"),
    ("bounds-empty", write("bounds.toml", b""), [*REPORT, "--normalize", "{root}/bounds.toml"],
     "bounds.toml is empty"),
    ("bounds-garbage", write("bounds.json", b"{0: 1"), [*REPORT, "--normalize",
     "{root}/bounds.json"], "bounds.json is not valid JSON"),
    ("bounds-wrong-type", write("bounds.json", [1]), [*REPORT, "--normalize", "{root}/bounds.json"],
     "bounds.json holds a list"),
    ("bounds-bad-pair", write("bounds.toml", b'"minatar/breakout" = [1.0]\n'),
     [*REPORT, "--normalize", "{root}/bounds.toml"], "expected a normalisation table"),
    ("bounds-no-task", write("bounds.toml", b'"minatar/pong" = [0.0, 1.0]\n'),
     [*REPORT, "--normalize", "{root}/bounds.toml"], "has no bounds for minatar/breakout"),
    # result.json read by the report of `tdgen reproduce`
    ("result-garbage", write("results/fig9_kernel_td/result.json", b"{"),
     ["reproduce", "fig9_kernel_td", "--out", "{root}/results"], "result.json is not valid JSON"),
    ("result-no-claims", write("results/x/result.json", {"experiment": "x"}),
     ["reproduce", "fig9_kernel_td", "--out", "{root}/results"], "result.json has no 'claims'"),
    # options: unknown names and out-of-range values
    ("no-command", nothing, ["trian"], "unknown command 'trian': did you mean 'train'?"),
    ("train-agent", nothing, ["train", "dqm"], "unknown agent 'dqm': did you mean 'dqn'?"),
    ("train-env", nothing, ["train", "dqn", "--env", "minatar/brakout"], "did you mean"),
    ("train-dqn-procgen", nothing, ["train", "dqn", "--env", "procgen/bigfish"], "ProcGen is for ppo"),
    ("train-preset", nothing, ["train", "dqn", "--preset", "big"], "argument --preset"),
    ("train-frames-type", nothing, ["train", "dqn", "--frames", "many"], "--frames"),
    ("train-frames-range", nothing, ["train", "dqn", "--frames", "-5"], "frames must be positive"),
    ("train-flag", nothing, ["train", "dqn", "--colour", "red"], "Unrecognized options: --colour"),
    ("train-seeds", nothing, ["train", "dqn", "--seeds", "1", "1", "--out", "{root}/g"],
     "--seeds must be distinct"),
    ("train-lanes", nothing, ["train", "dqn", "--seeds", "1", "--lanes", "wide"], "--lanes"),
    ("train-existing", nothing, ["train", "dqn", "--out", "{root}/run"], "already holds a run"),
    ("distill-teacher", nothing, ["distill", "--teacher", "{root}/nope", "--objective", "bc"],
     "nope is not a tdgen run directory"),
    ("distill-objective", nothing, ["distill", "--teacher", "{root}/run", "--objective", "zz"],
     "'--objective'"),
    ("reproduce-name", nothing, ["reproduce", "fig9_kernel_tdd"], "did you mean 'fig9_kernel_td'"),
    ("reproduce-scale", nothing, ["reproduce", "--scale", "huge"], "'--scale'"),
    ("reproduce-workers", nothing, ["reproduce", "--workers", "0"], "--workers must be"),
    ("reproduce-set-field", nothing, ["reproduce", "fig9_kernel_td", "--set", "sizez=3"],
     "--set: fig9_kernel_td has no config field 'sizez'"),
    ("reproduce-set-type", nothing, ["reproduce", "fig3_value_update_rank", "--set",
     "frames=many"], "--set: fig3_value_update_rank.frames takes int, got 'many'"),
    ("reproduce-set-backend", nothing, ["reproduce", "fig3_value_update_rank", "--set",
     "frames=1", "--backend", "local"], "--backend must be inline with --set"),
    ("rank-missing", nothing, ["rank", "{root}/nope.msgpack"], "nope.msgpack does not exist"),
    ("rank-no-batch", nothing, ["rank", "{root}/params.msgpack"], "give a batch .npz"),
    ("rank-eps", nothing, [*RANK, "--eps", "2"], "--eps must be a fraction in (0, 1]"),
    ("rank-lr", nothing, [*RANK, "--lr", "-1"], "--lr must be"),
    ("rank-optimizer", nothing, [*RANK, "--optimizer", "lion"], "'--optimizer'"),
    ("rank-reduce", nothing, [*RANK, "--reduce", "maxx"], "unknown reduction 'maxx'"),
    ("rank-checkpoint", nothing, ["rank", "{root}/run", "--checkpoint", "-1"], "--checkpoint"),
    ("evaluate-epsilon", nothing, ["evaluate", "{root}/run", "--epsilon", "2"], "--epsilon"),
    ("evaluate-envs", nothing, ["evaluate", "{root}/run", "--eval-envs", "0"], "--eval-envs"),
    ("evaluate-missing", nothing, ["evaluate", "{root}/nope"], "nope is not a tdgen run"),
    ("resume-missing", nothing, ["resume", "{root}/nope"], "nope is not a tdgen run directory"),
    ("sweep-backend", nothing, ["sweep", "{root}/spec.toml", "--backend", "cloud"], "'--backend'"),
    ("report-missing", nothing, ["report", "{root}/nope", "--out", "{root}/r"], "nope does not exist"),
    ("report-last", nothing, [*REPORT, "--last", "0"], "last must be at least 1"),
]  # fmt: skip


def digest(root):
    """Every file and folder below ``root`` with its bytes' hash."""
    return {str(p.relative_to(root)): p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}  # fmt: skip


@pytest.mark.parametrize(("damage", "args", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_one_line_and_changes_nothing(world, tmp_path, capsys, damage, args, expected):
    root = tmp_path / "w"
    shutil.copytree(world, root)
    damage(root)
    before = digest(root)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([a.format(root=root) for a in args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tdgen: error: "), err
    assert expected in err and "Traceback" not in err
    assert digest(root) == before


@pytest.mark.parametrize(
    ("damage", "args", "expected"),
    [(write("run/config.json", {"config": {}}), RESUME, "config.json has no 'kind' field"),
     (write("params.msgpack", b"\x92\x01\x02\x03"), RANK, "params.msgpack is not a msgpack file"),
     (nothing, ["train", "dqn", "--preset", "big"], "argument --preset: invalid choice"),
     (nothing, ["bogus"], "unknown command 'bogus'")],
    ids=["resume-no-kind", "rank-extra-data", "train-preset", "command"],
)  # fmt: skip
def test_the_installed_command_says_it_in_one_line(world, tmp_path, damage, args, expected):
    root = tmp_path / "w"
    shutil.copytree(world, root)
    damage(root)
    before = digest(root)
    args = [a.format(root=root) for a in args]
    done = subprocess.run([sys.executable, "-m", "tdgen.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and digest(root) == before


def test_debug_shows_the_traceback(world, monkeypatch):
    monkeypatch.setenv("TDGEN_DEBUG", "1")
    with pytest.raises(ValueError, match="is not a tdgen run directory"):
        cli.main(["resume", str(world / "nope")])
