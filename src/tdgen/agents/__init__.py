"""Value-based agents that measure their own interference: DQN and C51 (Section 5.1).

`train("dqn", DQNConfig.minatar(), out)` runs a jitted PureJaxRL-style loop on gymnax MinAtar with
update-rank probes, metrics and checkpoints in a run directory; `resume(run_dir)` continues it.
"""

from tdgen.agents.c51 import C51Config, categorical_projection, categorical_q_learning_loss
from tdgen.agents.config import PRESETS, ValueBasedConfig, epsilon_at
from tdgen.agents.dqn import DQNConfig, q_learning_loss
from tdgen.agents.launch import AGENTS, build_agent, probe_checkpoint, resume, train
from tdgen.agents.probes import ProbeResult, make_probe
from tdgen.agents.value_based import Agent, Algorithm, TrainState, evaluate_returns

__all__ = [
    "AGENTS",
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
