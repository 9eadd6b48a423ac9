"""What every run config shares: copies with changes, and the round trip through config.json."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self


class RunConfig:
    """Mixin for frozen config dataclasses stored in a run's config.json.

    ``retired_fields``: fields earlier versions stored that no longer mean anything; an old run's
    config.json that holds them still loads (they are dropped).
    """

    retired_fields: ClassVar[tuple[str, ...]] = ()

    def replace(self, **changes) -> Self:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """The config stored in a run's config.json; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k not in cls.retired_fields}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"config has fields {cls.__name__} does not know: {unknown}")
        return cls(**values)


__all__ = ["RunConfig"]
