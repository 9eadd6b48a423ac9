"""ProcGen (Cobbe et al. 2020) through envpool, stepped on the host: `procgen/<game>`.

envpool's ``<Game>Easy-v0`` / ``<Game>Hard-v0``: 64x64 RGB frames, the 15 buttons of the full
action set, levels drawn uniformly from [start_level, start_level + num_levels) (num_levels 0:
the full distribution, seeds in [0, 2**31 - 1)), each game's own timeout (e.g. bigfish 6000
steps, maze 500), reported as ``truncated``. Observations are NHWC ``[num_envs, 64, 64, 3]``
uint8: envpool renders them channels-last itself (``channel_first=False``), so no transpose.

Episode boundaries follow `tdgen.envs.spec`: the step that ends an episode returns the first
observation of the next one and the final observation in ``info["final_observation"]``.
envpool's ProcGen does not: its fork of procgen disables the game's auto-reset, so the ending
step returns the final frame, and the *next* step ignores its action and returns the new level's
first frame (``elapsed_step`` 0). `ProcgenVectorEnv` therefore resets the finished environments
at once, by env id, in the same call (`envpool`'s ``reset(env_ids)``), and envpool never sees a
done environment stepped. The extra call costs one small batch per step in which some episode
ends (measured in ``ProcgenVectorEnv``'s docstring).

envpool's procgen extension links against Qt 5 (Core, Gui). `load_qt` loads them from the
``pyqt5-qt5`` wheel (the ``procgen`` extra) so no system Qt is needed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import importlib
import importlib.metadata
import sys
from typing import Any

import numpy as np

from tdgen._extras import MissingExtraError, require
from tdgen.envs.atari import REWARD_MODES
from tdgen.envs.levels import FULL_DISTRIBUTION, level_suffix
from tdgen.envs.wrappers import host_reward_mode
from tdgen.errors import InputError

NUM_ACTIONS = 15
OBSERVATION_SHAPE = (64, 64, 3)
DISTRIBUTION_MODES = {"easy": "Easy", "hard": "Hard"}
QT_LIBRARIES = ("libQt5Core.so.5", "libQt5Gui.so.5")  # Core first: Gui needs it
_INSTALL = "pip install 'tdgen[procgen]'"


@functools.cache
def load_qt() -> None:
    """Make envpool's procgen extension importable: load Qt 5 Core and Gui from the pyqt5-qt5
    wheel into the global symbol namespace, once. A no-op where Qt is already found.

    If ``envpool`` was imported before Qt was loaded (it imports ``envpool.procgen`` and records
    the failure), the module is imported again.
    """
    procgen = require("envpool.procgen", "procgen", "ProcGen")
    if _extension_loaded(procgen) or not sys.platform.startswith("linux"):
        return
    try:
        wheel = importlib.metadata.distribution("pyqt5-qt5")
    except importlib.metadata.PackageNotFoundError:
        raise MissingExtraError(f"ProcGen needs pyqt5-qt5 (Qt 5): {_INSTALL}") from None
    for name in QT_LIBRARIES:
        ctypes.CDLL(str(wheel.locate_file(f"PyQt5/Qt5/lib/{name}")), mode=ctypes.RTLD_GLOBAL)
    importlib.reload(procgen)


def _extension_loaded(procgen_module) -> bool:
    try:
        procgen_module.ProcgenEnvSpec  # noqa: B018 (raises ImportError when Qt was missing)
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class ProcgenSpec:
    """A ProcGen game: name, NHWC uint8 observations, 15 actions, levels, reward mode; no pool yet.

    distribution_mode: "easy" or "hard". num_levels: training levels from start_level (0: the
    full distribution). reward: "dense", "zero" or "sparse" (as `AtariSpec`; dynamics never
    depend on it). max_episode_steps: the game's own timeout (from envpool's registration); a
    smaller value truncates episodes earlier.
    """

    name: str
    game: str
    num_actions: int = NUM_ACTIONS
    distribution_mode: str = "easy"
    num_levels: int = 0
    start_level: int = 0
    reward: str = "dense"
    keep_prob: float = 0.1
    observation_shape: tuple[int, ...] = OBSERVATION_SHAPE
    observation_dtype: Any = np.uint8
    max_episode_steps: int = 1000

    def __post_init__(self):
        if self.distribution_mode not in DISTRIBUTION_MODES:
            raise InputError(
                f"unknown distribution_mode {self.distribution_mode!r}: choose one of "
                f"{', '.join(DISTRIBUTION_MODES)}"
            )
        for field in ("num_levels", "start_level"):
            if getattr(self, field) < 0:
                raise InputError(f"{field} must be >= 0, got {getattr(self, field)}")
        if self.start_level + self.num_levels > FULL_DISTRIBUTION:
            raise InputError(f"start_level + num_levels must be <= {FULL_DISTRIBUTION}")
        if self.reward not in REWARD_MODES:
            raise InputError(
                f"unknown reward mode {self.reward!r}: choose one of {', '.join(REWARD_MODES)}"
            )
        if not 0.0 <= self.keep_prob <= 1.0:
            raise InputError(f"keep_prob must be in [0, 1], got {self.keep_prob}")
        if self.max_episode_steps < 1:
            raise InputError(f"max_episode_steps must be positive, got {self.max_episode_steps}")

    @property
    def task(self) -> str:
        """envpool's task id, e.g. ``BigfishEasy-v0``."""
        return f"{self.game.capitalize()}{DISTRIBUTION_MODES[self.distribution_mode]}-v0"

    def vector(self, num_envs: int, seed: int, *, num_threads: int = 0) -> ProcgenVectorEnv:
        """``num_envs`` games seeded from ``seed`` (envpool draws env i's levels with seed + i)."""
        return ProcgenVectorEnv(self, num_envs, seed, num_threads=num_threads)


def make_procgen(
    game: str,
    distribution_mode: str = "easy",
    num_levels: int = 0,
    start_level: int = 0,
    reward: str = "dense",
    keep_prob: float = 0.1,
    max_episode_steps: int | None = None,
) -> ProcgenSpec:
    """The `ProcgenSpec` of a game (lower case, e.g. "bigfish"); ``max_episode_steps`` is the
    game's timeout from envpool's registration unless a smaller one is given."""
    load_qt()
    import envpool

    spec = ProcgenSpec(
        f"procgen/{game}", game, distribution_mode=distribution_mode, num_levels=num_levels,
        start_level=start_level, reward=reward, keep_prob=keep_prob,
    )  # fmt: skip
    if spec.task not in envpool.list_all_envs():
        raise InputError(f"procgen/{game} has no {distribution_mode!r} distribution mode")
    name = spec.name + ("+hard" if distribution_mode == "hard" else "")
    if num_levels > 0:
        name += level_suffix(num_levels, start_level)
    if reward == "zero":
        name += "+zero_reward"
    elif reward == "sparse":
        name += f"+sparse{keep_prob:g}"
    timeout = _timeout(spec)
    if max_episode_steps is not None and not 1 <= max_episode_steps <= timeout:
        raise InputError(
            f"max_episode_steps must be in [1, {timeout}] ({game}'s own timeout), "
            f"got {max_episode_steps}"
        )
    return dataclasses.replace(spec, name=name, max_episode_steps=max_episode_steps or timeout)


def _timeout(spec: ProcgenSpec) -> int:
    """The game's own timeout in steps, from envpool's registration (bigfish 6000, maze 500)."""
    import envpool

    return int(envpool.make_spec(spec.task).config.max_episode_steps)


class ProcgenVectorEnv:
    """A running pool of ``num_envs`` games: `reset`, `step`, or `send` then `recv`.

    ``step(actions)`` and ``recv()`` return ``(obs, reward, terminated, truncated, info)`` with obs
    [n, 64, 64, 3] uint8 (where an episode ended: the next episode's first frame), reward [n]
    float32 after the reward mode, and info holding ``final_observation`` (the frames the step
    reached; the very array obs when no episode ended, so write into neither), ``score`` (the
    game's reward), ``level_seed`` (the level of the transition's episode), and
    ``episode_return`` / ``episode_length`` (the game's score and steps of the episode, valid
    where terminated | truncated).

    Cost of the same-step reset (bigfish easy, 64 envs, 2 threads, random actions): about 1% of
    environment steps end an episode, so about half the calls add one reset call of ~0.25 ms;
    that was ~6% of the wall time, and ~10% more CPU per environment step than raw envpool.
    """

    def __init__(self, spec: ProcgenSpec, num_envs: int, seed: int, *, num_threads: int = 0):
        load_qt()
        import envpool

        if num_envs < 1:
            raise InputError(f"num_envs must be positive, got {num_envs}")
        timeout = _timeout(spec)
        if spec.max_episode_steps > timeout:
            raise InputError(
                f"max_episode_steps {spec.max_episode_steps} exceeds {spec.game}'s own timeout "
                f"of {timeout} steps"
            )
        self.spec = spec
        self.num_envs = num_envs
        self.seed = int(seed)
        self._pool = envpool.make_gymnasium(
            spec.task, num_envs=num_envs, batch_size=num_envs, seed=self.seed,
            num_threads=num_threads, num_levels=spec.num_levels, start_level=spec.start_level,
            channel_first=False,
        )  # fmt: skip
        self._steps = 0
        self._return = np.zeros(num_envs, np.float64)
        self._length = np.zeros(num_envs, np.int64)
        self._pending = False
        self._env_ids = np.arange(num_envs)

    def reset(self) -> np.ndarray:
        """First observations [n, 64, 64, 3] of new episodes in every game."""
        obs, info = self._pool.reset()
        self._return[:] = 0.0
        self._length[:] = 0
        return obs[np.argsort(info["env_id"])]

    def step(self, actions: np.ndarray):
        """One step in every game, blocking."""
        self.send(actions)
        return self.recv()

    def send(self, actions: np.ndarray) -> None:
        """Start one step in every game with ``actions`` [n] and return at once."""
        if self._pending:
            raise RuntimeError("send() called twice without recv()")
        self._pool.send(np.asarray(actions, np.int32))
        self._pending = True

    def recv(self):
        """Wait for the step started by `send`, restart finished games; see the class docstring."""
        if not self._pending:
            raise RuntimeError("recv() called without a pending send()")
        obs, score, terminated, truncated, info = self._pool.recv()
        self._pending = False
        order = np.argsort(info["env_id"])  # a full batch; envpool may return it permuted
        if np.any(order != self._env_ids):  # sync pools return env-id order: skip the copies
            obs, score = obs[order], score[order]
            terminated, truncated = terminated[order], truncated[order]
        score = score.astype(np.float32, copy=False)
        self._return += score
        self._length += 1
        truncated = truncated | (~terminated & (self._length >= self.spec.max_episode_steps))
        done = terminated | truncated
        final_observation = obs
        if done.any():
            reset_obs, reset_info = self._pool.reset(np.flatnonzero(done).astype(np.int32))
            obs = obs.copy()
            obs[reset_info["env_id"]] = reset_obs
        info = {
            "final_observation": final_observation,
            "score": score,
            "level_seed": info["level_seed"][order],
            "episode_return": self._return.copy(),
            "episode_length": self._length.copy(),
        }
        self._return[done] = 0.0
        self._length[done] = 0
        reward = host_reward_mode(
            score, self.spec.reward, self.spec.keep_prob, self.seed, self._steps
        )
        self._steps += 1
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._pool.close()
