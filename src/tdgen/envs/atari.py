"""Atari through envpool, stepped on the host: `atari/<Game>` (e.g. `atari/Pong`).

envpool's ``<Game>-v5`` with Nature DQN preprocessing (Mnih et al. 2015): 84x84 grey frames, a stack
of the last 4, frame skip 4 (one *agent step* = 4 emulator frames, max-pooled over the last two),
up to 30 no-op starts, FIRE on reset where the game needs it, the minimal action set, no sticky
actions, no episodic life, a time limit of 27,000 agent steps (108k frames). Rewards are the game's
own (unclipped); the learner clips them (`tdgen.agents.value_based.host`).

`AtariSpec` describes a game the way `EnvSpec` does (name, observation shape and dtype, action
count) without starting emulators, so networks are built from it as from any environment;
`AtariSpec.vector(num_envs, seed)` starts the pool. Observations are NHWC ``[num_envs, 84, 84, 4]``
uint8 (envpool gives channels first; the transpose is a copy of 28 KB per environment).

envpool auto-resets on the *next* step: the step that ends an episode returns its final
observation, and the following step ignores its action and returns the first observation of a
new episode with reward 0. `AtariVectorEnv` passes this on unchanged and flags such steps in
``info["reset_step"]``: the transition they describe (final observation -> reset) is not one the
agent took, and the host replay never samples it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tdgen._extras import require
from tdgen.envs.wrappers import host_reward_mode
from tdgen.errors import InputError

STACK, SIZE, FRAME_SKIP = 4, 84, 4
OBSERVATION_SHAPE = (SIZE, SIZE, STACK)
REWARD_MODES = ("dense", "zero", "sparse")


def emulator_frames(agent_steps: int) -> int:
    """Emulator frames in ``agent_steps`` agent steps (frame skip 4)."""
    return FRAME_SKIP * int(agent_steps)


@dataclasses.dataclass(frozen=True)
class AtariSpec:
    """An Atari game: name, NHWC uint8 observations, action count, reward mode; no emulator yet.

    reward: "dense" (the game's reward), "zero" (every reward 0: the no-reward control) or
    "sparse" (each nonzero reward kept with probability ``keep_prob``). Dynamics never depend on
    the reward mode: the same seed visits the same states under all three.
    """

    name: str
    game: str
    num_actions: int
    reward: str = "dense"
    keep_prob: float = 0.1
    observation_shape: tuple[int, ...] = OBSERVATION_SHAPE
    observation_dtype: Any = np.uint8
    max_episode_steps: int = 27_000

    def __post_init__(self):
        if self.reward not in REWARD_MODES:
            raise InputError(
                f"unknown reward mode {self.reward!r}: choose one of {', '.join(REWARD_MODES)}"
            )
        if not 0.0 <= self.keep_prob <= 1.0:
            raise InputError(f"keep_prob must be in [0, 1], got {self.keep_prob}")

    @property
    def task(self) -> str:
        return f"{self.game}-v5"

    def vector(self, num_envs: int, seed: int, *, num_threads: int = 0) -> AtariVectorEnv:
        """``num_envs`` emulators seeded from ``seed`` (envpool seeds env i with seed + i)."""
        return AtariVectorEnv(self, num_envs, seed, num_threads=num_threads)


def make_atari(game: str, reward: str = "dense", keep_prob: float = 0.1) -> AtariSpec:
    """The `AtariSpec` of an envpool game (``game`` as in ``<Game>-v5``, e.g. "Pong")."""
    envpool = require("envpool", "atari", f"atari/{game}")

    spec = envpool.make_spec(f"{game}-v5")
    name = f"atari/{game}"
    if reward == "zero":
        name += "+zero_reward"
    elif reward == "sparse":
        name += f"+sparse{keep_prob:g}"
    return AtariSpec(name, game, int(spec.action_space.n), reward, keep_prob)


class AtariVectorEnv:
    """A running pool of ``num_envs`` emulators: `reset`, `step`, or `send` then `recv`.

    ``step(actions)`` and ``recv()`` return ``(obs, reward, terminated, truncated, info)`` with obs
    [n, 84, 84, 4] uint8, reward [n] float32 after the reward mode, and info holding
    ``score`` (the game's reward, unaffected by the reward mode), ``reset_step`` (this step was
    envpool's auto-reset; its action was ignored), and ``episode_return``/``episode_length``
    (the game's score and agent steps of the episode, valid where terminated | truncated).
    ``send`` returns at once and the emulators step on envpool's threads while the caller
    computes (the overlap of acting and learning).
    """

    def __init__(self, spec: AtariSpec, num_envs: int, seed: int, *, num_threads: int = 0):
        envpool = require("envpool", "atari", spec.name)

        if num_envs < 1:
            raise InputError(f"num_envs must be positive, got {num_envs}")
        self.spec = spec
        self.num_envs = num_envs
        self.seed = int(seed)
        self._pool = envpool.make(
            spec.task, env_type="gymnasium", num_envs=num_envs, batch_size=num_envs,
            seed=self.seed, num_threads=num_threads, episodic_life=False, reward_clip=False,
            repeat_action_probability=0.0, max_episode_steps=spec.max_episode_steps,
        )  # fmt: skip
        self._steps = 0
        self._return = np.zeros(num_envs, np.float64)
        self._length = np.zeros(num_envs, np.int64)
        self._pending = False

    def reset(self) -> np.ndarray:
        """First observations [n, 84, 84, 4] of new episodes in every emulator."""
        obs, _ = self._pool.reset()
        self._return[:] = 0.0
        self._length[:] = 0
        return _nhwc(obs)

    def step(self, actions: np.ndarray):
        """One agent step (4 frames) in every emulator, blocking."""
        self.send(actions)
        return self.recv()

    def send(self, actions: np.ndarray) -> None:
        """Start one agent step in every emulator with ``actions`` [n] and return at once."""
        if self._pending:
            raise RuntimeError("send() called twice without recv()")
        self._pool.send(np.asarray(actions, np.int32))
        self._pending = True

    def recv(self):
        """Wait for the step started by `send`; see the class docstring for what it returns."""
        if not self._pending:
            raise RuntimeError("recv() called without a pending send()")
        obs, score, terminated, truncated, info = self._pool.recv()
        self._pending = False
        order = np.argsort(info["env_id"])  # a full batch; envpool may return it permuted
        obs, score = obs[order], score[order].astype(np.float32)
        terminated, truncated = terminated[order], truncated[order]
        reset_step = info["elapsed_step"][order] == 0
        self._return += score
        self._length += ~reset_step
        done = terminated | truncated
        episode_return, episode_length = self._return.copy(), self._length.copy()
        self._return[done] = 0.0
        self._length[done] = 0
        reward = host_reward_mode(
            score, self.spec.reward, self.spec.keep_prob, self.seed, self._steps
        )
        self._steps += 1
        info = {
            "score": score,
            "reset_step": reset_step,
            "episode_return": episode_return,
            "episode_length": episode_length,
            "lives": info["lives"][order],
        }
        return _nhwc(obs), reward, terminated, truncated, info

    def close(self) -> None:
        self._pool.close()


def _nhwc(obs: np.ndarray) -> np.ndarray:
    """envpool's [n, 4, 84, 84] as the encoders' [n, 84, 84, 4] (contiguous)."""
    return np.ascontiguousarray(obs.transpose(0, 2, 3, 1))
