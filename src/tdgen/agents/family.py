"""What a family of agents provides to the rest of tdgen: a written interface, `Family`.

Two families satisfy it: value-based (DQN, C51, QR-DQN: replay, epsilon-greedy, a per-transition
loss; `tdgen.agents.value_based`) and actor-critic (PPO, DAAC: rollouts, GAE, a policy;
`tdgen.agents.actor_critic`). An agent is one algorithm of a family plus a registry line
(`tdgen.agents.registry`); the CLI, sweeps, distillation and experiments only ever talk to the
family through this interface.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tdgen.runs import RunDir


@runtime_checkable
class Family(Protocol):
    """name; presets: the preset constructors of its configs; produces: what a teacher of this
    family gives a student ("q": action values, "logits": a policy)."""

    name: str
    presets: tuple[str, ...]
    produces: str

    def build(self, algorithm: Any, config: Any) -> Any:
        """The built agent of ``algorithm`` (the registry's entry) for ``config``; unknown
        environments and bad combinations fail here, before anything is written."""
        ...

    def train(self, agent: Any, run: RunDir, progress: bool) -> Path:
        """Train from the start into the new run directory ``run``."""
        ...

    def resume(self, agent: Any, run: RunDir, frames: int | None, progress: bool) -> Path:
        """Continue ``run`` from its checkpoint of ``frames`` (None: newest, 0: the start)."""
        ...

    def train_group(
        self,
        agent: Any,
        runs: Sequence[RunDir],
        starts: Sequence[int],
        progress: bool,
        lanes: str,
    ) -> list[Path]:
        """Train runs that differ only by seed as one program (gymnax only); ``lanes``: vmap or
        map (`tdgen.agents.train.Train.jit_group`)."""
        ...

    def load_run_state(self, agent: Any, run: RunDir, path: Path) -> tuple[int, Any]:
        """(frames, state) of the checkpoint at ``path``."""
        ...

    def is_host_stepped(self, agent: Any) -> bool:
        """Whether the environment is stepped on the host (envpool) rather than in a scan."""
        ...


@dataclasses.dataclass(frozen=True)
class FamilyRecord:
    """A `Family` as a record of functions (how both families are written)."""

    name: str
    presets: tuple[str, ...]
    produces: str
    build: Callable[[Any, Any], Any]
    train: Callable[..., Path]
    resume: Callable[..., Path]
    train_group: Callable[..., list[Path]]
    load_run_state: Callable[..., tuple[int, Any]]
    is_host_stepped: Callable[[Any], bool]


__all__ = ["Family", "FamilyRecord"]
