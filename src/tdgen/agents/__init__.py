"""Agents that measure their own interference: DQN and C51 (Section 5.1), PPO and DAAC (5.2).

`train("dqn", DQNConfig.minatar(), out)` or `train("ppo", PPOConfig.minatar(), out)` runs a jitted
PureJaxRL-style loop on gymnax MinAtar (host-stepped on envpool Atari and ProcGen) with update-rank
probes, metrics and checkpoints in a run directory; `resume(run_dir)` continues it.
"""

from tdgen.agents.actor_critic import ACState, ActorCriticAgent, Rollout
from tdgen.agents.actor_critic_config import AC_PRESETS, DAACConfig, PPOConfig
from tdgen.agents.actor_critic_probes import ActorCriticProbeResult, make_actor_critic_probe
from tdgen.agents.c51 import C51Config, categorical_projection, categorical_q_learning_loss
from tdgen.agents.config import PRESETS, ValueBasedConfig, epsilon_at
from tdgen.agents.dqn import DQNConfig, q_learning_loss
from tdgen.agents.launch import (
    ACTOR_CRITIC_AGENTS,
    AGENTS,
    build_agent,
    config_class,
    probe_checkpoint,
    resume,
    train,
)
from tdgen.agents.probes import ProbeResult, make_probe
from tdgen.agents.value_based import Agent, Algorithm, TrainState, evaluate_returns

__all__ = [
    "ACTOR_CRITIC_AGENTS",
    "AC_PRESETS",
    "AGENTS",
    "ACState",
    "ActorCriticAgent",
    "ActorCriticProbeResult",
    "DAACConfig",
    "PPOConfig",
    "Rollout",
    "config_class",
    "make_actor_critic_probe",
    "PRESETS",
    "Agent",
    "Algorithm",
    "C51Config",
    "DQNConfig",
    "ProbeResult",
    "TrainState",
    "ValueBasedConfig",
    "build_agent",
    "categorical_projection",
    "categorical_q_learning_loss",
    "epsilon_at",
    "evaluate_returns",
    "make_probe",
    "probe_checkpoint",
    "q_learning_loss",
    "resume",
    "train",
]
