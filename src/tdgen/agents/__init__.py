"""Agents that measure their own interference: DQN, C51, QR-DQN (Section 5.1), PPO, DAAC (5.2).

`train("dqn", DQNConfig.minatar(), out)` or `train("ppo", PPOConfig.minatar(), out)` runs a jitted
PureJaxRL-style loop on gymnax MinAtar (host-stepped on envpool Atari and ProcGen) with update-rank
probes, metrics and checkpoints in a run directory; `train_seeds(..., seeds=[0, 1, 2, 3])` trains
several seeds as one vmapped program, one run directory each; `resume(path)` continues either.
Every agent is a line of `tdgen.agents.registry.AGENTS`.
"""

from tdgen.agents.actor_critic.agent import ACState, ActorCriticAgent, Rollout
from tdgen.agents.actor_critic.config import AC_PRESETS, DAACConfig, PPOConfig
from tdgen.agents.actor_critic.probe import make_actor_critic_probe
from tdgen.agents.family import Family
from tdgen.agents.launch import (
    ensure_run,
    ensure_runs,
    probe_checkpoint,
    resume,
    resume_runs,
    train,
    train_seeds,
)
from tdgen.agents.probes import ProbeResult, ProbeTarget
from tdgen.agents.registry import AGENTS, agents_of, build_agent, config_class, get_agent
from tdgen.agents.train import Train
from tdgen.agents.value_based.agent import Agent, Algorithm, TrainState
from tdgen.agents.value_based.c51 import C51Config
from tdgen.agents.value_based.config import PRESETS, ValueBasedConfig, epsilon_at
from tdgen.agents.value_based.dqn import DQNConfig
from tdgen.agents.value_based.probe import make_value_probe
from tdgen.agents.value_based.qrdqn import QRDQNConfig

__all__ = [
    "AC_PRESETS",
    "AGENTS",
    "ACState",
    "ActorCriticAgent",
    "Agent",
    "Algorithm",
    "C51Config",
    "DAACConfig",
    "DQNConfig",
    "Family",
    "PPOConfig",
    "PRESETS",
    "QRDQNConfig",
    "ProbeResult",
    "ProbeTarget",
    "Rollout",
    "Train",
    "TrainState",
    "ValueBasedConfig",
    "agents_of",
    "build_agent",
    "config_class",
    "ensure_run",
    "ensure_runs",
    "epsilon_at",
    "get_agent",
    "make_actor_critic_probe",
    "make_value_probe",
    "probe_checkpoint",
    "resume",
    "resume_runs",
    "train",
    "train_seeds",
]
