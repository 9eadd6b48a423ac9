"""Lazy package attributes (PEP 562): names that import their module on first access, so that
importing a package loads none of the heavy modules (JAX, torch) until one of them is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], sources: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for ``package``: each name in ``sources`` (name -> the module
    defining it) is imported on first access and then kept in ``namespace`` (the package's
    globals()), so later accesses skip the hook."""

    def getattr_(name: str) -> Any:
        if name in sources:
            value = getattr(importlib.import_module(sources[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return getattr_, dir_
