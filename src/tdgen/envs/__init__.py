"""Environments behind one functional interface (`EnvSpec`), made by name with `make_env`."""

from tdgen.envs.levels import LevelState, held_out_levels, with_levels
from tdgen.envs.minatar import MINATAR_GAMES, make_minatar
from tdgen.envs.registry import (
    ATARI_GAMES,
    KNOWN_NAMES,
    PROCGEN_GAMES,
    make_env,
    parse_env_name,
)
from tdgen.envs.spec import EnvSpec, random_actions, with_step
from tdgen.envs.wrappers import (
    EpisodeStatisticsState,
    record_episode_statistics,
    sparsify_rewards,
    zero_rewards,
)

__all__ = [
    "ATARI_GAMES",
    "KNOWN_NAMES",
    "MINATAR_GAMES",
    "PROCGEN_GAMES",
    "EnvSpec",
    "EpisodeStatisticsState",
    "LevelState",
    "make_env",
    "make_minatar",
    "parse_env_name",
    "random_actions",
    "record_episode_statistics",
    "sparsify_rewards",
    "held_out_levels",
    "with_levels",
    "with_step",
    "zero_rewards",
]
