"""The `tdgen` command and the experiment contract, on a tiny stand-in experiment."""

import json
import re
import textwrap

import pytest

from tdgen import cli
from tdgen.experiments import REGISTRY, get_experiment

TOY = textwrap.dedent(
    """
    from dataclasses import dataclass

    import numpy as np

    from tdgen import plots
    from tdgen.experiments.base import Claim, Experiment, Outcome


    @dataclass(frozen=True)
    class Config:
        size: int = 3

        @classmethod
        def quick(cls):
            return cls(3)

        @classmethod
        def paper(cls):
            return cls(30)


    def run(config, seed, out_dir):
        total = float(np.random.default_rng(seed).random(config.size).sum())
        with plots.style():
            fig, axes = plots.figure()
            axes[0, 0].plot(range(config.size))
            name = plots.save(fig, out_dir / "toy.png")
        claim = Claim("positive", "the sum is positive", total > 0, {"total": total})
        return Outcome([claim], [name], {"total": total})


    EXPERIMENT = Experiment("toy", "Figure 0", "a stand-in", Config, run)
    """
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_experiment.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(REGISTRY, "toy", "toy_experiment")
    return tmp_path


def test_reproduce_writes_result_json_figures_and_report(toy, capsys):
    out = toy / "results"
    cli.main(["reproduce", "toy", "--out", str(out), "--seed", "3"])
    result = json.loads((out / "toy" / "result.json").read_text())
    assert result["experiment"] == "toy" and result["scale"] == "quick" and result["seed"] == 3
    assert result["config"] == {"size": 3}
    assert result["claims"][0]["holds"] is True and result["figures"] == ["toy.png"]
    assert (out / "toy" / "toy.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "| **toy**: Figure 0 (quick, " in report and "![toy.png](toy/toy.png)" in report
    assert "<img src='toy/toy.png'" in (out / "report.html").read_text()


def test_set_changes_preset_fields_and_the_report_names_them(toy):
    out = toy / "results"
    cli.main(["reproduce", "toy", "--out", str(out), "--set", "size=5"])
    result = json.loads((out / "toy" / "result.json").read_text())
    assert result["config"] == {"size": 5} and result["overrides"] == {"size": 5}
    assert result["scale"] == "quick"
    assert "| **toy**: Figure 0 (quick, size=5, " in (out / "report.md").read_text()


def test_set_types_values_and_reaches_nested_configs():
    from tdgen.experiments.runner import preset_with

    config, changed = preset_with(
        "fig3_value_update_rank",
        "quick",
        ["frames=555000", "target_period=null", "rise_margin=3", 'games=["minatar/asterix"]'],
    )
    assert (config.frames, config.target_period) == (555_000, None)
    assert isinstance(config.rise_margin, float) and config.games == ("minatar/asterix",)
    assert changed["frames"] == 555_000 and changed["games"] == ["minatar/asterix"]
    config, changed = preset_with("dyn_metrics_vs_update_rank", "quick", ["value.num_seeds=4"])
    assert config.value.num_seeds == 4 and changed == {"value.num_seeds": 4}
    for bad, message in [(["frames=1.5"], "frames takes int"), (["framez=1"], "did you mean"),
                         (["frames"], "not FIELD=VALUE"), (["num_seeds=0"], "at least 1"),
                         (["frames.x=1"], "is not a config")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            preset_with("fig3_value_update_rank", "quick", bad)


def test_one_seed_gives_one_result(toy):
    for run in ("a", "b"):
        cli.main(["reproduce", "toy", "--out", str(toy / run), "--seed", "7"])
    first, second = (json.loads((toy / r / "toy" / "result.json").read_text()) for r in "ab")
    assert first["summary"] == second["summary"]


def test_unknown_experiment_is_one_line_error_with_a_suggestion(toy, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["reproduce", "fig9_kernel_tdd", "--out", str(toy / "r")])
    assert exit_info.value.code == 2
    assert "did you mean 'fig9_kernel_td'" in capsys.readouterr().err
    assert not (toy / "r").exists()  # nothing is written before the names are checked


def test_bad_scale_is_rejected(toy):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["reproduce", "toy", "--scale", "huge", "--out", str(toy / "r")])
    assert exit_info.value.code != 0


def test_every_registered_experiment_has_both_presets():
    for name in REGISTRY:
        experiment = get_experiment(name)
        assert experiment.name == name
        assert experiment.config("quick") != experiment.config("paper")
        with pytest.raises(ValueError, match="unknown scale"):
            experiment.config("medium")


def test_list_names_every_experiment(capsys):
    cli.main(["list"])
    printed = capsys.readouterr().out
    assert all(name in printed for name in REGISTRY)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "dqm"],
            "unknown agent 'dqm': did you mean 'dqn'? (agents: dqn, c51, qrdqn, ppo, daac)",
        ),
        (["train", "dqn", "--env", "minatar/brakout"], "did you mean 'minatar/breakout'"),
        (["resume", "nowhere"], "nowhere is not a tdgen run directory"),
    ],
)
def test_training_commands_refuse_bad_input_in_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args, "--out", str(tmp_path / "run")] if args[0] == "train" else args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_help_lists_every_command_on_one_line_each(capsys):
    cli.main(["--help"])
    out = capsys.readouterr().out
    lines = out.split("commands:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in lines] == list(cli.COMMANDS)
    assert {"train", "distill"} <= set(cli.COMMANDS)
    assert len({re.match(r"\s*\S+\s+", line).end() for line in lines}) == 1  # one column


def test_train_help_lists_the_agents_and_their_presets(capsys):
    from tdgen.agents import AGENTS

    cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for name, spec in AGENTS.items():
        assert any(line.split()[:1] == [name] and ", ".join(spec.presets) in line
                   for line in out.splitlines())  # fmt: skip


def test_version_is_the_package_metadata(capsys):
    from importlib.metadata import version

    cli.main(["--version"])
    assert capsys.readouterr().out == f"tdgen {version('tdgen')}\n"


def test_list_is_an_aligned_table(capsys):
    from tdgen.experiments import experiment_names, get_experiment

    cli.main(["list"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(experiment_names())
    for name, line in zip(experiment_names(), lines[1:], strict=True):
        ref = get_experiment(name).paper_ref
        assert line.startswith(name)
        assert line.index(ref) == lines[0].index("paper")  # the paper column starts in one place
        assert line.index(get_experiment(name).description) == lines[0].index("what it shows")
