"""The one table of agents: name -> (config class, family, algorithm). The CLI, sweeps,
distillation and experiments read it; adding an agent is one module and one line here.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from tdgen.agents.actor_critic import launch as ac_launch
from tdgen.agents.actor_critic.agent import ActorCriticAgent
from tdgen.agents.actor_critic.config import AC_PRESETS, DAACConfig, PPOConfig
from tdgen.agents.actor_critic.daac import DAAC
from tdgen.agents.actor_critic.ppo import PPO
from tdgen.agents.family import Family, FamilyRecord
from tdgen.agents.train import load_run_state
from tdgen.agents.value_based import c51, dqn, qrdqn
from tdgen.agents.value_based import launch as vb_launch
from tdgen.agents.value_based.agent import Agent
from tdgen.agents.value_based.config import PRESETS
from tdgen.errors import InputError

VALUE_BASED: Family = FamilyRecord(
    name="value_based",
    presets=PRESETS,
    produces="q",
    build=lambda algorithm, config: Agent.build(config, algorithm(config)),
    train=vb_launch.train,
    resume=vb_launch.resume,
    train_group=vb_launch.train_group,
    load_run_state=vb_launch.load_state,
    is_host_stepped=lambda agent: vb_launch.is_host_stepped(agent.config),
)

ACTOR_CRITIC: Family = FamilyRecord(
    name="actor_critic",
    presets=AC_PRESETS,
    produces="logits",
    build=lambda algorithm, config: ActorCriticAgent.build(config, algorithm),
    train=ac_launch.train,
    resume=ac_launch.resume,
    train_group=ac_launch.train_group,
    load_run_state=load_run_state,
    is_host_stepped=lambda agent: agent.host_stepped,
)


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """A named agent: its config class, its family, and the family's algorithm entry (for
    value-based agents ``config -> Algorithm``; for actor-critic agents the algorithm class)."""

    name: str
    config_cls: type
    family: Family
    algorithm: Any

    def build(self, config: Any) -> Any:
        """The built agent for ``config`` (which must be of ``config_cls``)."""
        if type(config) is not self.config_cls:
            raise InputError(f"agent {self.name!r} needs a {self.config_cls.__name__}, got "
                             f"{type(config).__name__}")  # fmt: skip
        return self.family.build(self.algorithm, config)

    @property
    def presets(self) -> tuple[str, ...]:
        return self.family.presets


AGENTS: dict[str, AgentSpec] = {
    "dqn": AgentSpec("dqn", dqn.DQNConfig, VALUE_BASED, dqn.algorithm),
    "c51": AgentSpec("c51", c51.C51Config, VALUE_BASED, c51.algorithm),
    "qrdqn": AgentSpec("qrdqn", qrdqn.QRDQNConfig, VALUE_BASED, qrdqn.algorithm),
    "ppo": AgentSpec("ppo", PPOConfig, ACTOR_CRITIC, PPO),
    "daac": AgentSpec("daac", DAACConfig, ACTOR_CRITIC, DAAC),
}


def get_agent(name: str) -> AgentSpec:
    """The registry entry of ``name``; an unknown name is one line naming the choices."""
    if name not in AGENTS:
        close = difflib.get_close_matches(name, AGENTS, n=1)
        hint = f": did you mean {close[0]!r}?" if close else ""
        raise InputError(f"unknown agent {name!r}{hint} (agents: {', '.join(AGENTS)})")
    return AGENTS[name]


def config_class(name: str) -> type:
    """The config class of agent ``name``."""
    return get_agent(name).config_cls


def build_agent(name: str, config: Any) -> Any:
    """The built agent ``name`` for ``config``."""
    return get_agent(name).build(config)


def agents_of(family: str) -> tuple[str, ...]:
    """Names of the agents of a family ("value_based" or "actor_critic")."""
    return tuple(name for name, spec in AGENTS.items() if spec.family.name == family)


__all__ = ["ACTOR_CRITIC", "AGENTS", "VALUE_BASED", "AgentSpec", "agents_of", "build_agent",
           "config_class", "get_agent"]  # fmt: skip
