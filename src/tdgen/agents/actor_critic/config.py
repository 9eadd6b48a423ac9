"""Configuration of the actor-critic agents (PPO, DAAC): fields, validation, presets citing sources.

Counting: a *frame* is one environment step of one environment; one *iteration* collects a rollout
of ``num_steps`` steps in each of ``num_envs`` environments (``num_envs * num_steps`` frames) and
then updates. Every schedule (frames, logging, evaluation, probes, checkpoints) is in frames and
must be a multiple of the rollout size, so events land on iteration boundaries.

Levels: ``num_levels`` training levels from ``start_level`` (0 = the full distribution; ProcGen's
level seeds, or on MinAtar the seeds of `tdgen.envs.levels`); evaluation on held-out levels
``test_num_levels`` (0 = the full distribution, the convention of Cobbe et al. 2020; > 0 = the
disjoint range right after the training levels, `tdgen.envs.held_out_levels`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

from tdgen.agents.interventions import parse_interventions
from tdgen.errors import InputError
from tdgen.nets import ENCODERS
from tdgen.runs.config import RunConfig

AC_PRESETS = ("procgen", "minatar")


@dataclasses.dataclass(frozen=True)
class PPOConfig(RunConfig):
    """PPO (Schulman et al. 2017) with one encoder shared by actor and critic."""

    env: str = "minatar/breakout"
    """Environment: `minatar/<game>` (jitted loop on gymnax) or `procgen/<game>` (envpool)."""
    reward: Literal["dense", "zero", "sparse"] = "dense"
    """Reward mode: the game's reward, zero (the no-reward control) or sparsified."""
    num_levels: int = 0
    """Training levels (0: the full distribution; the paper's ProcGen runs: 10)."""
    start_level: int = 0
    """First training level seed."""
    test_num_levels: int = 0
    """Held-out evaluation levels: 0 = the full distribution, > 0 = the disjoint range after the
    training levels."""
    distribution_mode: Literal["easy", "hard"] = "easy"
    """ProcGen difficulty (ignored on MinAtar)."""
    num_envs: int = 64
    """Environments stepped in parallel."""
    num_steps: int = 256
    """Rollout length per environment and iteration."""
    frames: int = 24_985_600
    """Training length in frames (environment steps summed over environments)."""
    epochs: int = 3
    """Passes over each rollout (DAAC: policy epochs)."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    gamma: float = 0.999
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (Schulman et al. 2016)."""
    clip_coef: float = 0.2
    """Clipping of the probability ratio (and of the value change, when clip_value)."""
    clip_value: bool = True
    """Clip the value loss around the rollout's values (as the PPO2 / IDAAC code)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value-loss coefficient in PPO's joint loss (DAAC trains its value network on its own)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clipping before Adam."""
    lr: float = 5e-4
    """Adam learning rate."""
    eps: float = 1e-5
    """Adam epsilon."""
    norm_adv: bool = True
    """Normalise advantages over the whole rollout, before it is split into minibatches (as
    Kostrikov's PPO, on which DAAC's code builds; CleanRL and PureJaxRL normalise per minibatch)."""
    encoder: str = "impala"
    """Network torso: mlp, minatar, nature or impala (tdgen.nets)."""
    hidden_size: int = 256
    """Width of the encoder's last dense layer (IMPALA: 256; MinAtar CNN: 128)."""
    conv_impl: Literal["xla", "im2col"] = "im2col"
    """Convolution lowering of the encoder (the same numbers; speed only)."""
    eval_every: int = 0
    """Frames between evaluations on training and held-out levels; 0 disables them."""
    eval_envs: int = 16
    """Environments per evaluation (each on training levels and on held-out levels)."""
    eval_steps: int = 1_000
    """Steps per evaluation environment; the mean return of the episodes that finish."""
    probe_every: int = 0
    """Frames between update-rank probes of actor and critic; 0 disables them."""
    probe_k: int = 128
    """Observations per update matrix (k x k), drawn from the latest rollout."""
    checkpoint_every: int = 0
    """Frames between checkpoints (a last one is always written at the end); 0: only the last."""
    log_every: int = 0
    """Frames between metric lines; 0: every iteration."""
    interventions: tuple[str, ...] = ()
    """Plasticity interventions, "name" or "name:field=value,..." (tdgen.agents.interventions)."""

    stored_when_set: ClassVar[tuple[str, ...]] = ("interventions",)

    kind: ClassVar[str] = "ppo"

    renamed_fields: ClassVar[dict[str, str]] = {"adam_eps": "eps"}  # before 0.2

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "interventions", tuple(self.interventions))  # JSON gives a list
        parse_interventions(self.interventions)  # refused here, before anything is written
        self.require_positive("num_envs", "num_steps", "frames", "epochs", "num_minibatches",
                              "eval_envs", "eval_steps", "hidden_size")  # fmt: skip
        self.require_non_negative("num_levels", "start_level", "test_num_levels", "eval_every")
        batch = self.batch_frames
        self.require_multiple(
            batch,
            "num_envs * num_steps",
            ("frames", "eval_every", "probe_every", "checkpoint_every", "log_every"),
        )
        if batch % self.num_minibatches:
            raise InputError(
                f"num_minibatches ({self.num_minibatches}) must divide num_envs * num_steps "
                f"({batch})"
            )
        if self.probe_every and self.probe_k > batch:
            raise InputError(f"probe_k {self.probe_k} exceeds the rollout size {batch}")
        self.require_unit_interval("gamma", "gae_lambda")
        for name in ("clip_coef", "ent_coef", "vf_coef", "max_grad_norm", "eps"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"lr must be > 0, got {self.lr}")
        self.require_choice(reward=("dense", "zero", "sparse"), distribution_mode=("easy", "hard"),
                            encoder=tuple(ENCODERS), conv_impl=("xla", "im2col"))  # fmt: skip

    # Per-algorithm changes to a preset, by preset name (DAAC's epochs and value schedule).
    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {}

    @property
    def batch_frames(self) -> int:
        """Frames per iteration: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def log_period(self) -> int:
        """Frames between metric lines: log_every, or every iteration when it is 0."""
        return self.log_every or self.batch_frames

    @property
    def minibatch_size(self) -> int:
        return self.batch_frames // self.num_minibatches

    @property
    def segment_frames(self) -> int:
        """Frames per host segment: every event (log, eval, probe, checkpoint, end) on a boundary."""
        periods = [self.log_period, self.frames, self.eval_every,
                   self.probe_every, self.checkpoint_every]  # fmt: skip
        return math.gcd(*[p for p in periods if p])

    @classmethod
    def preset(cls, name: str, env: str | None = None, **overrides):
        """The preset ``name`` (one of AC_PRESETS) for ``env``, with field overrides."""
        if name not in AC_PRESETS:
            raise InputError(f"unknown preset {name!r}: choose one of {', '.join(AC_PRESETS)}")
        return getattr(cls, name)(**({} if env is None else {"env": env}), **overrides)

    @classmethod
    def _build(cls, name: str, env: str, overrides: dict[str, Any]):
        values = {**_PRESETS[name], **cls.preset_extras.get(name, {}), "env": env}
        return cls(**{**values, **overrides})

    @classmethod
    def procgen(cls, env: str = "procgen/bigfish", **overrides):
        """ProcGen easy, as Raileanu & Fergus 2021 (the IDAAC code's defaults, after Cobbe et al.
        2020): IMPALA CNN [16, 32, 32] + 256, 64 envs x 256 steps, 8 minibatches, 3 PPO epochs,
        Adam 5e-4 / eps 1e-5, gamma 0.999, lambda 0.95, clip 0.2, entropy 0.01, value 0.5, grad
        norm 0.5, 25M steps (1525 iterations: 24,985,600 frames), 200 training levels unless told
        (the paper: 10); DAAC: 1 policy epoch, 9 value epochs, value_freq 1, adv_loss_coef 0.25.
        XLA's convolution (``conv_impl="xla"``, `tdgen.nets.conv`: the same numbers as im2col,
        half the GPU memory, 2-3x faster batch-64 distillation students on XLA:CPU; PPO's update
        inside its scan: docs/benchmarks.md, ProcGen CPU)."""
        return cls._build("procgen", env, overrides)

    @classmethod
    def minatar(cls, env: str = "minatar/breakout", **overrides):
        """A CPU scale on gymnax MinAtar, fully jitted: pgx's MinAtar PPO (Koyamada et al. 2023:
        gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01, value 0.5, grad norm 0.5, 128 steps,
        3 epochs, Adam eps 1e-5) with 64 envs instead of 4096, 8 minibatches of 1024, Adam 1e-3,
        the MinAtar CNN; DAAC as in its ProcGen preset (1 policy epoch, 9 value epochs)."""
        return cls._build("minatar", env, overrides)


@dataclasses.dataclass(frozen=True)
class DAACConfig(PPOConfig):
    """DAAC (Raileanu & Fergus 2021): a policy network with an advantage head and a separate value
    network, each with its own Adam; the value network trains ``value_epochs`` passes every
    ``value_freq`` iterations."""

    value_epochs: int = 9
    """Passes of the value network over the rollout when it trains."""
    value_freq: int = 1
    """Iterations between value-network updates."""
    adv_loss_coef: float = 0.25
    """Weight of the advantage head's regression onto GAE advantages in the policy loss."""

    kind: ClassVar[str] = "daac"
    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {
        "procgen": {"epochs": 1, "value_epochs": 9, "value_freq": 1, "adv_loss_coef": 0.25},
        "minatar": {"epochs": 1, "value_epochs": 9, "value_freq": 1, "adv_loss_coef": 0.25},
    }

    def __post_init__(self):
        super().__post_init__()
        for name in ("value_epochs", "value_freq"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.adv_loss_coef < 0:
            raise InputError(f"adv_loss_coef must be >= 0, got {self.adv_loss_coef}")


_PRESETS: dict[str, dict[str, Any]] = {
    "procgen": dict(
        num_envs=64, num_steps=256, frames=24_985_600, epochs=3, num_minibatches=8, gamma=0.999,
        gae_lambda=0.95, clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, lr=5e-4,
        eps=1e-5, encoder="impala", hidden_size=256, conv_impl="xla", num_levels=200,
        distribution_mode="easy",
        eval_every=64 * 256 * 10, eval_envs=16, eval_steps=1_000, probe_every=64 * 256 * 30,
        checkpoint_every=64 * 256 * 30,
    ),
    "minatar": dict(
        num_envs=64, num_steps=128, frames=2_097_152, epochs=3, num_minibatches=8, gamma=0.99,
        gae_lambda=0.95, clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, lr=1e-3,
        eps=1e-5, encoder="minatar", hidden_size=128, eval_every=64 * 128 * 8, eval_envs=16,
        eval_steps=1_000, probe_every=64 * 128 * 8, checkpoint_every=64 * 128 * 16,
    ),
}  # fmt: skip

__all__ = ["AC_PRESETS", "DAACConfig", "PPOConfig"]
