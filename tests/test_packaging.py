"""Packaging: one version, and lock files that pin a set pyproject.toml's ranges admit."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import tdgen

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKS = sorted((ROOT / "requirements").glob("py3.*.txt"))


def test_the_version_has_one_source():
    assert PROJECT["dynamic"] == ["version"] and "version" not in PROJECT
    assert importlib.metadata.version("tdgen") == tdgen.__version__


def test_there_is_a_lock_for_every_python_the_classifiers_name():
    named = {c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.search(r"3\.\d+$", c)}
    assert {lock.stem.removeprefix("py") for lock in LOCKS} == named == {"3.11", "3.12", "3.13"}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_a_lock_pins_every_requirement_within_its_range(lock):
    text = lock.read_text()
    (extras,) = re.findall(r"extras: ([\w,]+)", text.splitlines()[0])
    pins = {
        canonicalize_name(name): Version(version)
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", text, re.M)
    }
    wanted = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras.split(","):
        wanted += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock.name} lacks {name}: run requirements/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]} outside {requirement}: run requirements/lock.sh"
        )


def test_import_tdgen_is_the_front_door_and_loads_nothing_heavy():
    """`import tdgen` offers the instrument lazily: JAX, torch and envpool load on first use."""
    code = (
        "import sys, tdgen\n"
        "heavy = [m for m in ('jax', 'torch', 'envpool', 'flax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import tdgen.interference as I\n"
        "assert tdgen.Probe is I.Probe and tdgen.update_rank is I.update_rank\n"
        "assert set(tdgen.__all__) <= set(dir(tdgen))\n"
        "assert all(getattr(tdgen, n) is getattr(I, n) for n in tdgen.__all__ if n != '__version__')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(AttributeError, match="no attribute 'probe'"):
        tdgen.probe  # noqa: B018
