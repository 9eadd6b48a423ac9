"""`tdgen gpu-check` and `tdgen preset-memory`: registered, and bad input is one line, exit 2."""

import os

import pytest

from tdgen import cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gpu-check", "--cases", "fig3-dqm"], "unknown case 'fig3-dqm': did you mean 'fig3-dqn'?"),
        (["gpu-check", "--seconds", "0"], "--seconds must be seconds > 0"),
        (["preset-memory", "--nope"], "tdgen preset-memory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_both_commands_have_help(capsys):
    for name in ("gpu-check", "preset-memory"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0 and "--results" in capsys.readouterr().out


def test_gpu_check_runs_the_named_cases_and_exits_1_naming_the_failed(
    monkeypatch, tmp_path, capsys
):
    from tdgen.bench import gpu_check

    calls = []

    def fake_check(cases, seconds, log_frames, timeout, dry_run, results):
        calls.append((cases, seconds, log_frames, timeout, dry_run, results))
        failed = {"fig4-ppo", "fig5-student"} if results else set()
        return [{"case": c, **({"error": "boom"} if c in failed else {})} for c in cases]

    monkeypatch.setattr(gpu_check, "check", fake_check)
    monkeypatch.setenv("JAX_PLATFORMS", "")
    cli.main(["gpu-check", "--cases", "fig3-dqn", "--seconds", "6", "--dry-run"])
    assert calls[-1] == (["fig3-dqn"], 6.0, 5_000, 240.0, True, None)
    assert os.environ["JAX_PLATFORMS"] == "cpu"  # a dry run is the CPU's
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gpu-check", "--cases", "fig3-dqn", "fig4-ppo", "fig5-student",
                  "--results", str(tmp_path)])  # fmt: skip
    assert exit_info.value.code == 1
    assert "fig4-ppo, fig5-student failed" in capsys.readouterr().err
    assert calls[-1][0] == ["fig3-dqn", "fig4-ppo", "fig5-student"]
    assert calls[-1][-1] == tmp_path
    cli.main(["gpu-check"])
    assert calls[-1][0] == list(gpu_check.CASES)  # every case by default


def test_preset_memory_passes_its_results_folder(monkeypatch, tmp_path):
    from tdgen.bench import preset_memory

    seen = []
    monkeypatch.setattr(preset_memory, "main", seen.append)
    cli.main(["preset-memory", "--results", str(tmp_path)])
    cli.main(["preset-memory"])
    assert seen == [tmp_path, None]
