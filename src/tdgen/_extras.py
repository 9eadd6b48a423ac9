"""Optional dependencies, imported when a feature needs them: `require(module, extra, feature)`.

`pip install tdgen` brings what the theory experiments, MinAtar agents and the CLI need; envpool
(Atari, ProcGen), torch, Ray, submitit and wandb come with extras (pyproject.toml). A feature
asked for without its extra fails with one line naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tdgen.errors import InputError

PACKAGES = {  # the distribution that provides each optional top-level module
    "envpool": "envpool",
    "torch": "torch",
    "ray": "ray",
    "submitit": "submitit",
    "wandb": "wandb",
    "stable_baselines3": "stable-baselines3",
}


class MissingExtraError(ImportError, InputError):
    """An optional package is not installed. An InputError (a ValueError) too, so the CLI reports
    it as bad input (one line, exit status 2) rather than a traceback."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. "envpool", "submitit.helpers") or raise `MissingExtraError`:
    "<feature> needs envpool: pip install 'tdgen[atari]'". A package that is installed but fails
    to import raises its own error: that is a broken install, not a missing extra."""
    root = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != root:
            raise
        package = PACKAGES.get(root, root)
        raise MissingExtraError(
            f"{feature} needs {package}: pip install 'tdgen[{extra}]'", name=root
        ) from None
