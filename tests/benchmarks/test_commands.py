"""`tdgen gpu-check` and `tdgen preset-memory`: registered, and bad input is one line, exit 2."""

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
