"""Configuration of the value-based agents: fields, validation, presets citing their sources,
the optimiser and the epsilon schedule they imply.

Counting: a *frame* is one environment step of one environment (MinAtar has no frame skip); every
schedule is in frames. On envpool Atari a frame is one agent step (4 emulator frames).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import optax

from tdgen.agents.interventions import parse_interventions
from tdgen.errors import InputError
from tdgen.nets import ENCODERS
from tdgen.runs.config import RunConfig


@dataclasses.dataclass(frozen=True)
class ValueBasedConfig(RunConfig):
    """Settings shared by DQN and C51; presets live on the subclasses."""

    env: str = "minatar/breakout"
    """Environment name, `minatar/<game>` (gymnax, jitted loop)."""
    reward: Literal["dense", "zero", "sparse"] = "dense"
    """Reward mode: the game's reward, zero (the paper's no-reward control) or sparsified."""
    num_envs: int = 4
    """Environments stepped in parallel (one scan iteration = num_envs frames)."""
    frames: int = 100_000
    """Training length in frames (environment steps summed over environments)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (a multiple of num_envs)."""
    batch_size: int = 32
    """Transitions per gradient update."""
    learning_starts: int = 1_000
    """Frames collected before the first update (Dopamine's min_replay_history)."""
    train_every: int = 4
    """Frames between gradient updates (Dopamine's update_period)."""
    target_period: int = 1_000
    """Frames between target-network copies; the copy happens when frames is a multiple."""
    gamma: float = 0.99
    """Discount factor."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optimiser: adam or rmsprop (no momentum)."""
    lr: float = 2.5e-4
    """Learning rate."""
    eps: float = 3.125e-4
    """Optimiser epsilon (Adam's eps; RMSProp's eps, added inside the square root)."""
    centered: bool = False
    """RMSProp only: centred (divide by the variance rather than the second moment)."""
    decay: float = 0.95
    """RMSProp only: decay of the squared-gradient average."""
    epsilon_start: float = 1.0
    """Exploration epsilon while learning has not started."""
    epsilon_end: float = 0.01
    """Exploration epsilon after the decay."""
    epsilon_decay_frames: int = 250_000
    """Frames over which epsilon decays linearly, counted from learning_starts (Dopamine)."""
    encoder: str = "minatar"
    """Network torso: mlp, minatar, nature or impala (tdgen.nets)."""
    conv_impl: Literal["xla", "im2col"] = "im2col"
    """Convolution lowering of the encoder: the same numbers; im2col trained 2.4x faster on CPU."""
    probe_every: int = 100_000
    """Frames between interference probes (the paper: 1e5); 0 disables probes."""
    checkpoint_every: int = 100_000
    """Frames between checkpoints (a last one is always written at the end); 0: only the last."""
    log_every: int = 10_000
    """Frames between metric lines."""
    interventions: tuple[str, ...] = ()
    """Plasticity interventions, "name" or "name:field=value,..." (tdgen.agents.interventions)."""

    stored_when_set: ClassVar[tuple[str, ...]] = ("interventions",)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "interventions", tuple(self.interventions))  # JSON gives a list
        parse_interventions(self.interventions)  # refused here, before anything is written
        self.require_positive("num_envs", "frames", "buffer_size", "batch_size", "train_every",
                              "target_period", "log_every")  # fmt: skip
        self.require_non_negative("learning_starts", "epsilon_decay_frames")
        self.require_multiple(self.num_envs, "num_envs", (
            "frames", "buffer_size", "target_period", "log_every", "probe_every",
            "checkpoint_every", "learning_starts",
        ))  # fmt: skip
        n = self.num_envs
        if self.train_every % n and n % self.train_every:
            raise InputError(
                f"train_every ({self.train_every}) must divide or be a multiple of num_envs ({n})"
            )
        if self.buffer_size < self.batch_size:
            raise InputError(f"buffer_size {self.buffer_size} < batch_size {self.batch_size}")
        if self.probe_every and self.probe_k > self.buffer_size:
            raise InputError(f"probe_k {self.probe_k} exceeds buffer_size {self.buffer_size}")
        self.require_unit_interval("gamma", "epsilon_start", "epsilon_end")
        if self.lr <= 0 or self.eps < 0:
            raise InputError(f"lr must be > 0 and eps >= 0, got lr={self.lr}, eps={self.eps}")
        if not 0.0 <= self.decay < 1.0:
            raise InputError(f"decay must lie in [0, 1), got {self.decay}")
        self.require_choice(reward=("dense", "zero", "sparse"), optimizer=("adam", "rmsprop"),
                            encoder=tuple(ENCODERS), conv_impl=("xla", "im2col"))  # fmt: skip
        if self.env.startswith("procgen/"):
            raise InputError(f"env {self.env}: the value-based agents train on minatar/ and atari/ "
                             "games; ProcGen is for ppo and daac")  # fmt: skip

    retired_fields: ClassVar[tuple[str, ...]] = ("eval_epsilon",)  # unused before 0.2

    # Per-algorithm changes to a preset, by preset name (e.g. DQN's loss, C51's vmax).
    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, env: str | None = None, **overrides):
        """The preset ``name`` (one of PRESETS) for ``env``, with field overrides."""
        if name not in PRESETS:
            raise InputError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return getattr(cls, name)(**({} if env is None else {"env": env}), **overrides)

    @classmethod
    def _build(cls, name: str, env: str, overrides: dict[str, Any]):
        values = {**_PRESETS[name], **cls.preset_extras.get(name, {})}
        if name == "tandem" and env.startswith("minatar/"):
            values["buffer_size"] = 100_000
        encoder = encoder_for(env)
        # im2col ran 2.4x faster than XLA's convolution for the MinAtar CNN, 1.7x slower for the
        # Nature CNN (measured on 2 CPU cores; benchmarks/self/agents.py, benchmarks/peers/agents_atari.py).
        conv_impl = "xla" if encoder == "nature" else "im2col"
        return cls(
            **{**values, "env": env, "encoder": encoder, "conv_impl": conv_impl, **overrides}
        )

    @classmethod
    def minatar(cls, env: str = "minatar/breakout", **overrides):
        """Dopamine's MinAtar settings (dopamine/jax/agents/*/configs/*_minatar*.gin; Young & Tian
        2019): MinAtar CNN, replay 100k, batch 32, Adam 2.5e-4 / eps 3.125e-4, 1000 steps before
        learning, update every 4, target period 1000, epsilon 1 -> 0.01 over 250k steps, eval
        epsilon 0.001; DQN mse loss, C51 vmax 100."""
        return cls._build("minatar", env, overrides)

    @classmethod
    def nature(cls, env: str = "atari/Breakout", **overrides):
        """Nature DQN (Mnih et al. 2015, Extended Data Table 1; the RMSProp of Dopamine's
        dqn_nature.gin: lr 2.5e-4, decay 0.95, eps 1e-5, centred): replay 1M, batch 32, 50k steps
        before learning, update every 4, target period 10k updates = 40k steps, epsilon 1 -> 0.1
        over 1M steps, eval 0.05, Huber loss. C51 keeps its paper's Adam (Bellemare et al. 2017:
        lr 2.5e-4, eps 0.01 / 32) and vmax 10. The table's "frames" are agent steps; gymnax
        MinAtar steps are single frames."""
        return cls._build("nature", env, overrides)

    @classmethod
    def dopamine(cls, env: str = "atari/Breakout", **overrides):
        """Dopamine's JAX agents (dqn.gin / c51.gin, Castro et al. 2018): Adam 6.25e-5 / eps 1.5e-4
        (C51: 2.5e-4 / 3.125e-4, vmax 10), replay 1M, 20k steps before learning, update every 4,
        target period 8000, epsilon 1 -> 0.01 over 250k steps, eval 0.001, Huber. Dopamine's
        Atari uses sticky actions (p = 0.25); gymnax MinAtar has none, so this preset runs
        without them there."""
        return cls._build("dopamine", env, overrides)

    @classmethod
    def tandem(cls, env: str = "minatar/breakout", **overrides):
        """The paper's base agent, Tandem DQN (Ostrovski et al. 2021, on DQN Zoo's settings):
        centred RMSProp 2.5e-4, decay 0.95, eps 0.01 / 32**2, replay 1M (100k on MinAtar), 20k
        frames before learning, update every 4 frames, target period 120k frames, epsilon 1 ->
        0.01 over 1M frames, eval 0.001, Huber; C51 vmax 10."""
        return cls._build("tandem", env, overrides)

    @property
    def segment_frames(self) -> int:
        """Frames per jitted segment: every event (log, probe, checkpoint, the end) on a boundary."""
        periods = [self.log_every, self.frames, self.probe_every, self.checkpoint_every]
        return math.gcd(*[p for p in periods if p])


PRESETS = ("minatar", "nature", "dopamine", "tandem")
_PRESETS: dict[str, dict[str, Any]] = {
    "minatar": dict(
        buffer_size=100_000, batch_size=32, learning_starts=1_000, train_every=4,
        target_period=1_000, gamma=0.99, optimizer="adam", lr=2.5e-4, eps=3.125e-4,
        epsilon_start=1.0, epsilon_end=0.01, epsilon_decay_frames=250_000,
    ),
    "nature": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=50_000, train_every=4,
        target_period=40_000, gamma=0.99, optimizer="rmsprop", lr=2.5e-4, eps=1e-5, decay=0.95,
        centered=True, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_frames=1_000_000,
    ),
    "dopamine": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=20_000, train_every=4,
        target_period=8_000, gamma=0.99, optimizer="adam", lr=6.25e-5, eps=1.5e-4,
        epsilon_start=1.0, epsilon_end=0.01, epsilon_decay_frames=250_000,
    ),
    "tandem": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=20_000, train_every=4,
        target_period=120_000, gamma=0.99, optimizer="rmsprop", lr=2.5e-4, eps=0.01 / 32**2,
        decay=0.95, centered=True, epsilon_start=1.0, epsilon_end=0.01,
        epsilon_decay_frames=1_000_000,
    ),
}  # fmt: skip


def encoder_for(env: str) -> str:
    """The encoder a preset uses for an environment: MinAtar CNN on MinAtar, Nature CNN on Atari."""
    return "minatar" if env.startswith("minatar/") else "nature"


def make_optimizer(config: ValueBasedConfig) -> optax.GradientTransformation:
    """Adam (eps outside the root, as Dopamine) or momentum-free RMSProp (eps inside the root)."""
    if config.optimizer == "adam":
        return optax.adam(config.lr, eps=config.eps)
    return optax.rmsprop(
        config.lr, decay=config.decay, eps=config.eps, centered=config.centered, eps_in_sqrt=True
    )


def epsilon_at(config: ValueBasedConfig, frames: jax.Array) -> jax.Array:
    """Dopamine's linearly decaying epsilon: start until learning_starts, then linear to end."""
    if config.epsilon_decay_frames == 0:
        fraction = (frames >= config.learning_starts).astype(jnp.float32)
    else:
        fraction = jnp.clip(
            (frames - config.learning_starts) / config.epsilon_decay_frames, 0.0, 1.0
        )
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


__all__ = ["PRESETS", "ValueBasedConfig", "encoder_for", "epsilon_at", "make_optimizer"]
