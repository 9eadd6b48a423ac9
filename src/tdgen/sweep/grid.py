"""Sweep specifications: a grid of (agent or experiment, env, preset, seed, overrides) into runs.

A spec is a TOML file or the same keys given as flags. Its top level is one grid; `[[grid]]`
tables give several grids whose points are joined (e.g. DQN on MinAtar and PPO on ProcGen):

```toml
agents = ["dqn", "c51"]                       # or experiments = ["fig3_value_update_rank"]
envs = ["minatar/breakout", "minatar/asterix"]
presets = ["minatar"]                         # default: minatar / tandem (Atari) / procgen
seeds = [0, 1, 2]
scale = "quick"                               # experiments only
[set]                                         # config fields every run gets
frames = 50_000
[vary]                                        # config fields swept: the grid is their product
lr = [1e-4, 2.5e-4]
```

Each point becomes a `Point` with a stable, readable run name (`dqn_minatar-breakout_minatar_s0`,
plus `_<hash>` of the overrides when there are any) and, for agents, the full agent config built
from the preset, so every config is validated before anything is launched.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tdgen.errors import InputError, read_toml

GRID_KEYS = ("agents", "experiments", "envs", "presets", "seeds", "scale", "set", "vary")


@dataclasses.dataclass(frozen=True)
class Grid:
    """One grid: the product of its lists. ``agents`` xor ``experiments`` must be non-empty."""

    agents: tuple[str, ...] = ()
    experiments: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    scale: str = "quick"
    set: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    vary: Mapping[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.agents) == bool(self.experiments):
            raise InputError("a grid names either agents or experiments (exactly one of them)")
        if self.agents and not self.envs:
            raise InputError(f"agents {list(self.agents)} need at least one env")
        if self.experiments and (self.envs or self.presets or self.set or self.vary):
            raise InputError(
                "an experiments grid takes only experiments, seeds and scale (the experiment "
                "chooses its environments and settings)"
            )
        if not self.seeds:
            raise InputError("seeds is empty: give at least one seed")
        if self.scale not in ("quick", "paper"):
            raise InputError(f"scale must be quick or paper, got {self.scale!r}")
        for name, values in self.vary.items():
            if not isinstance(values, list | tuple) or not values:
                raise InputError(f"vary.{name} must be a non-empty list, got {values!r}")
        both = sorted(set(self.set) & set(self.vary))
        if both:
            raise InputError(f"fields {both} are both set and varied: keep one")
        if "seed" in self.set or "seed" in self.vary or "env" in self.set or "env" in self.vary:
            raise InputError("give seeds and envs as `seeds` and `envs`, not in set/vary")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Grid:
        unknown = sorted(set(values) - set(GRID_KEYS))
        if unknown:
            hints = [difflib.get_close_matches(k, GRID_KEYS, n=1) for k in unknown]
            hint = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                             for k, h in zip(unknown, hints, strict=True))  # fmt: skip
            raise InputError(f"unknown sweep keys {hint}; known: {', '.join(GRID_KEYS)}")
        lists = [k for k in ("agents", "experiments", "envs", "presets", "seeds") if k in values]
        for key in lists:
            if not isinstance(values[key], list | tuple):
                raise InputError(f"{key} must be a list, got {values[key]!r}")
        for key in ("set", "vary"):
            if not isinstance(values.get(key, {}), Mapping):
                raise InputError(f"{key} must be a table of FIELD = VALUE, got {values[key]!r}")
        tuples = {k: tuple(values[k]) for k in lists}
        vary = {k: tuple(v) if isinstance(v, list | tuple) else v
                for k, v in dict(values.get("vary", {})).items()}  # fmt: skip
        scale = values.get("scale", "quick")
        return cls(**tuples, scale=scale, set=dict(values.get("set", {})), vary=vary)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": list(self.agents), "experiments": list(self.experiments),
            "envs": list(self.envs), "presets": list(self.presets), "seeds": list(self.seeds),
            "scale": self.scale, "set": dict(self.set),
            "vary": {k: list(v) for k, v in self.vary.items()},
        }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of a sweep: an agent run (config = the full agent config) or an experiment run
    (config = {"scale", "seed"}); ``name`` is its directory relative to the sweep's out dir."""

    name: str
    kind: str  # "agent" or "experiment"
    target: str  # the agent (dqn, c51, ppo, daac) or the experiment's name
    env: str | None
    preset: str | None
    seed: int
    overrides: Mapping[str, Any]
    config: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "overrides": dict(self.overrides),
                "config": dict(self.config)}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Point:
        return cls(**values)


def default_preset(agent: str, env: str) -> str:
    """The preset a grid without `presets` uses: `minatar` on MinAtar, `procgen` for actor-critic
    agents on ProcGen, `tandem` (the paper's base agent) for value-based agents on Atari."""
    if env.startswith("minatar/"):
        return "minatar"
    from tdgen.agents import get_agent

    return "procgen" if get_agent(agent).family.name == "actor_critic" else "tandem"


def overrides_hash(overrides: Mapping[str, Any]) -> str:
    """Eight hex digits of the SHA-256 of the overrides as sorted JSON: stable across runs."""
    text = json.dumps(dict(overrides), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def agent_run_name(agent: str, env: str, preset: str, seed: int, overrides: Mapping) -> str:
    """`dqn_minatar-breakout_minatar_s0`, with `_<overrides hash>` when there are overrides."""
    name = f"{agent}_{env.replace('/', '-')}_{preset}_s{seed}"
    return f"{name}_{overrides_hash(overrides)}" if overrides else name


def experiment_run_name(experiment: str, scale: str, seed: int) -> str:
    """`quick_s0/fig3_value_update_rank`: the layout `tdgen reproduce` writes, one folder per
    (scale, seed), so `write_report` works on each folder."""
    return f"{scale}_s{seed}/{experiment}"


def agent_config(agent: str, preset: str, env: str, seed: int, overrides: Mapping[str, Any]):
    """The config object of one agent run: the preset for ``env`` with ``overrides`` and seed."""
    from tdgen.agents import get_agent

    spec = get_agent(agent)
    cls, presets = spec.config_cls, spec.presets
    if preset not in presets:
        raise InputError(f"preset {preset!r} is not one of {agent}'s: {', '.join(presets)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        close = [difflib.get_close_matches(k, fields, n=1) for k in unknown]
        hint = "; ".join(f"{k!r}" + (f": did you mean {c[0]!r}?" if c else "")
                         for k, c in zip(unknown, close, strict=True))  # fmt: skip
        raise InputError(f"{cls.__name__} has no field {hint}")
    return cls.preset(preset, env, **{**_coerce(cls, overrides), "seed": seed})


def _coerce(cls: type, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Integers given for float fields become floats, so `lr = 1` and `lr = 1.0` name one run."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return {k: float(v) if isinstance(defaults.get(k), float) and isinstance(v, int)
            and not isinstance(v, bool) else v for k, v in overrides.items()}  # fmt: skip


def expand(grids: Iterable[Grid]) -> list[Point]:
    """Every point of every grid, in grid order, without duplicates; invalid configs raise here."""
    points: dict[str, Point] = {}
    for grid in grids:
        for point in _expand_one(grid):
            if point.name in points and points[point.name] != point:
                raise InputError(f"two grid points share the run name {point.name!r}")
            points.setdefault(point.name, point)
    return list(points.values())


def _expand_one(grid: Grid) -> Iterable[Point]:
    if grid.experiments:
        from tdgen.experiments import get_experiment

        for name in grid.experiments:
            get_experiment(name)  # a typo fails before anything runs
        for name, seed in itertools.product(grid.experiments, grid.seeds):
            yield Point(
                name=experiment_run_name(name, grid.scale, seed), kind="experiment", target=name,
                env=None, preset=None, seed=int(seed), overrides={},
                config={"scale": grid.scale, "seed": int(seed)},
            )  # fmt: skip
        return
    varied = [dict(zip(grid.vary, values, strict=True))
              for values in itertools.product(*grid.vary.values())]  # fmt: skip
    for agent, env, seed, vary in itertools.product(grid.agents, grid.envs, grid.seeds, varied):
        for preset in grid.presets or (default_preset(agent, env),):
            config = agent_config(agent, preset, env, int(seed), {**grid.set, **vary})
            # Named by the values the config holds, so `lr = 1` and `lr = 1.0` are one run.
            values = config.to_dict()
            overrides = {k: values[k] for k in sorted({**grid.set, **vary})}
            yield Point(
                name=agent_run_name(agent, env, preset, int(seed), overrides), kind="agent",
                target=agent, env=env, preset=preset, seed=int(seed), overrides=overrides,
                config=config.to_dict(),
            )  # fmt: skip


def load_spec(path: Path) -> list[Grid]:
    """The grids of a TOML spec: the top level (if it names agents or experiments) and `[[grid]]`."""
    data = read_toml(path, "a sweep spec (TOML: agents, envs, seeds, ... or [[grid]] tables)")
    try:
        return grids_from_dict(data)
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: {error}") from None


def grids_from_dict(data: Mapping[str, Any]) -> list[Grid]:
    """Grids of a parsed spec; keys of the top level are defaults for each `[[grid]]` table."""
    data = dict(data)
    tables = data.pop("grid", [])
    if isinstance(tables, Mapping):
        tables = [tables]
    if not tables:
        return [Grid.from_dict(data)]
    shared = {k: v for k, v in data.items() if k not in ("agents", "experiments")}
    return [Grid.from_dict({**shared, **table}) for table in tables]


def parse_assignment(text: str) -> tuple[str, Any]:
    """`field=value` with a TOML value (`lr=1e-4`, `encoder=mlp`, `lr=[1e-4, 3e-4]` for a list)."""
    if "=" not in text:
        raise InputError(f"expected FIELD=VALUE, got {text!r}")
    name, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    return name, value


__all__ = [
    "Grid",
    "Point",
    "agent_config",
    "agent_run_name",
    "default_preset",
    "expand",
    "experiment_run_name",
    "grids_from_dict",
    "load_spec",
    "overrides_hash",
    "parse_assignment",
]
