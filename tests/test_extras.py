"""tdgen without its extras: optional packages made unimportable, the core still runs and every
feature that needs one fails in one line naming the extra to install."""

import json
import subprocess
import sys
import textwrap

import pytest

from tdgen._extras import MissingExtraError, require

OPTIONAL = ("envpool", "torch", "ray", "submitit", "wandb")

# Runs each `tdgen ARGS...` of argv[1] (JSON) in one fresh interpreter where importing any
# optional package fails, as it does where `pip install tdgen` brought no extras; each command's
# stderr is followed by a line "--- exit CODE".
RUN_WITHOUT_EXTRAS = textwrap.dedent(f"""
    import importlib.abc
    import json
    import sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in {OPTIONAL!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

    sys.meta_path.insert(0, NotInstalled())
    from tdgen.cli import main

    for args in json.loads(sys.argv[1]):
        try:
            main(args)
            code = 0
        except SystemExit as exit:
            code = exit.code
        sys.stdout.flush()
        print(f"--- exit {{code}}", file=sys.stderr, flush=True)
""")

MISSING = {  # a command that needs an extra -> its one line
    ("train", "dqn", "--env", "atari/Pong", "--preset", "nature"):
        "'atari/Pong' needs envpool: pip install 'tdgen[atari]'",
    ("train", "ppo", "--env", "procgen/bigfish", "--preset", "procgen"):
        "'procgen/bigfish' needs envpool: pip install 'tdgen[procgen]'",
    ("reproduce", "fig9_kernel_td", "--backend", "ray", "--out", "ray"):
        "the ray backend needs ray: pip install 'tdgen[sweep]'",
    ("reproduce", "fig9_kernel_td", "--backend", "slurm", "--out", "slurm"):
        "the slurm backend needs submitit: pip install 'tdgen[sweep]'",
}  # fmt: skip
WORKING = (("list",), ("reproduce", "fig9_kernel_td", "--out", "out"))


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory):
    """(directory, {command: (exit code, stderr lines)}) of every command above, one process."""
    cwd = tmp_path_factory.mktemp("no-extras")
    commands = [*WORKING, *MISSING]
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_EXTRAS, json.dumps(commands)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcomes, lines = {}, []
    for line in result.stderr.splitlines():
        if line.startswith("--- exit "):
            outcomes[commands[len(outcomes)]] = (line.removeprefix("--- exit "), lines)
            lines = []
        elif line.strip():
            lines.append(line)
    assert len(outcomes) == len(commands), result.stderr
    return cwd, outcomes, result.stdout


@pytest.mark.parametrize(
    ("module", "extra", "package"),
    [("envpool", "atari", "envpool"), ("submitit.helpers", "sweep", "submitit"),
     ("torch", "torch", "torch")],
)  # fmt: skip
def test_require_names_the_extra_in_one_line(monkeypatch, module, extra, package):
    for name in {module, module.partition(".")[0]}:  # an earlier test may have imported both
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError) as error:
        require(module, extra, "this feature")
    assert str(error.value) == f"this feature needs {package}: pip install 'tdgen[{extra}]'"
    assert isinstance(error.value, ValueError)  # the CLI's one-line bad-input path


def test_require_returns_an_installed_module():
    import json

    assert require("json", "dev", "anything") is json


def test_a_broken_install_is_not_reported_as_a_missing_extra(monkeypatch, tmp_path):
    (tmp_path / "halfinstalled.py").write_text("import no_such_dependency_of_halfinstalled\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_halfinstalled"):
        require("halfinstalled", "atari", "this feature")


def test_the_torch_adapter_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    for name in [m for m in sys.modules if m.startswith("tdgen.interference.torch")]:
        monkeypatch.delitem(sys.modules, name)  # the package and its modules
    with pytest.raises(MissingExtraError, match=r"needs torch: pip install 'tdgen\[torch\]'"):
        import tdgen.interference.torch  # noqa: F401


def test_list_and_a_theory_experiment_run_without_extras(without_extras):
    cwd, outcomes, stdout = without_extras
    for command in WORKING:
        assert outcomes[command][0] in ("0", "None"), outcomes[command]
    assert "fig9_kernel_td" in stdout and "thm41_td_error_bound" in stdout
    assert (cwd / "out" / "fig9_kernel_td" / "result.json").is_file()


@pytest.mark.parametrize("command", list(MISSING), ids=" ".join)
def test_a_feature_without_its_extra_fails_in_one_line(without_extras, command):
    code, lines = without_extras[1][command]
    assert code not in ("0", "None")
    assert lines == [f"tdgen: error: {MISSING[command]}"]
