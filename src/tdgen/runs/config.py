"""What every run config shares: copies with changes, and the round trip through config.json."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class RunConfig:
    """Mixin for frozen config dataclasses stored in a run's config.json."""

    def replace(self, **changes) -> Self:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """The config stored in a run's config.json; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"config has fields {cls.__name__} does not know: {unknown}")
        return cls(**values)


__all__ = ["RunConfig"]
