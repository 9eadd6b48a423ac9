"""The training loop shared by DQN and C51: config, training state and a jitted segment.

PureJaxRL style: the whole training state is one pytree (`TrainState`), and training advances in
segments, each one jitted `lax.scan` over vectorised environment steps (epsilon-greedy acting, a
replay write, an update every ``train_every`` frames once learning has started, a target update
on its period). Host-side events (logging, probes, checkpoints) happen between segments
(`tdgen.agents.launch`). An algorithm (`Algorithm`) contributes only its head, its loss on one
transition and the values it acts greedily on; everything else lives here.

Counting: a *frame* is one environment step of one environment (MinAtar has no frame skip), so
one iteration of the scan is ``num_envs`` frames. Every schedule is in frames.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from tdgen.agents import replay as replay_lib
from tdgen.envs import EnvSpec, make_env
from tdgen.nets import ENCODERS, make_network

# Loss on one transition: (outputs at x [A, ...], action, reward, discount, target outputs at x'
# [A, ...]) -> scalar. The same function trains the agent (vmapped) and defines the probe's loss.
TransitionLoss = Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class ValueBasedConfig:
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
    eval_epsilon: float = 0.001
    """Epsilon of the greedy policy when evaluated (`evaluate_returns`)."""
    encoder: str = "minatar"
    """Network torso: mlp, minatar, nature or impala (tdgen.nets)."""
    conv_impl: Literal["xla", "im2col"] = "im2col"
    """Convolution lowering of the encoder: the same numbers; im2col trained 2.4x faster on CPU."""
    probe_every: int = 100_000
    """Frames between interference probes (the paper: 1e5); 0 disables probes."""
    probe_k: int = 128
    """Transitions in one update matrix (k x k)."""
    probe_center: Literal["none", "drift"] = "none"
    """Update-matrix centring: none for RMSProp without momentum; drift removes Adam's shared
    momentum step from every row (tdgen.interference)."""
    probe_draws: int = 1
    """Independent draws of k transitions per probe; their update ranks are averaged."""
    checkpoint_every: int = 100_000
    """Frames between checkpoints (a last one is always written at the end); 0: only the last."""
    keep_checkpoints: int = 3
    """Complete checkpoints kept on disk (the newest)."""
    log_every: int = 10_000
    """Frames between metric lines."""
    seed: int = 0
    """Seed of every random draw of the run (initialisation, acting, replay, probes)."""

    def __post_init__(self):
        positive = ("num_envs", "frames", "buffer_size", "batch_size", "train_every",
                    "target_period", "log_every", "probe_k", "probe_draws", "keep_checkpoints")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("learning_starts", "epsilon_decay_frames", "probe_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        n = self.num_envs
        for name in ("frames", "buffer_size", "target_period", "log_every", "probe_every",
                     "checkpoint_every", "learning_starts"):  # fmt: skip
            if getattr(self, name) % n:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must be a multiple of num_envs ({n})"
                )
        if self.train_every % n and n % self.train_every:
            raise ValueError(
                f"train_every ({self.train_every}) must divide or be a multiple of num_envs ({n})"
            )
        if self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size {self.buffer_size} < batch_size {self.batch_size}")
        if self.probe_every and self.probe_k > self.buffer_size:
            raise ValueError(f"probe_k {self.probe_k} exceeds buffer_size {self.buffer_size}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")
        for name in ("epsilon_start", "epsilon_end", "eval_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.lr <= 0 or self.eps < 0:
            raise ValueError(f"lr must be > 0 and eps >= 0, got lr={self.lr}, eps={self.eps}")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {self.decay}")
        choices = {
            "reward": ("dense", "zero", "sparse"),
            "optimizer": ("adam", "rmsprop"),
            "encoder": tuple(ENCODERS),
            "conv_impl": ("xla", "im2col"),
            "probe_center": ("none", "drift"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )

    # Per-algorithm changes to a preset, by preset name (e.g. DQN's loss, C51's vmax).
    preset_extras: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, env: str | None = None, **overrides):
        """The preset ``name`` (one of PRESETS) for ``env``, with field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return getattr(cls, name)(**({} if env is None else {"env": env}), **overrides)

    @classmethod
    def _build(cls, name: str, env: str, overrides: dict[str, Any]):
        values = {**_PRESETS[name], **cls.preset_extras.get(name, {})}
        if name == "tandem" and env.startswith("minatar/"):
            values["buffer_size"] = 100_000
        encoder = encoder_for(env)
        # im2col ran 2.4x faster than XLA's convolution for the MinAtar CNN, 1.7x slower for the
        # Nature CNN (measured on 2 CPU cores; benchmarks/agents.py, benchmarks/agents_atari.py).
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

    def replace(self, **changes) -> ValueBasedConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ValueBasedConfig:
        """The config stored in a run's config.json; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"config has fields {cls.__name__} does not know: {unknown}")
        return cls(**values)


PRESETS = ("minatar", "nature", "dopamine", "tandem")
_PRESETS: dict[str, dict[str, Any]] = {
    "minatar": dict(
        buffer_size=100_000, batch_size=32, learning_starts=1_000, train_every=4,
        target_period=1_000, gamma=0.99, optimizer="adam", lr=2.5e-4, eps=3.125e-4,
        epsilon_start=1.0, epsilon_end=0.01, epsilon_decay_frames=250_000, eval_epsilon=0.001,
    ),
    "nature": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=50_000, train_every=4,
        target_period=40_000, gamma=0.99, optimizer="rmsprop", lr=2.5e-4, eps=1e-5, decay=0.95,
        centered=True, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_frames=1_000_000,
        eval_epsilon=0.05,
    ),
    "dopamine": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=20_000, train_every=4,
        target_period=8_000, gamma=0.99, optimizer="adam", lr=6.25e-5, eps=1.5e-4,
        epsilon_start=1.0, epsilon_end=0.01, epsilon_decay_frames=250_000, eval_epsilon=0.001,
    ),
    "tandem": dict(
        buffer_size=1_000_000, batch_size=32, learning_starts=20_000, train_every=4,
        target_period=120_000, gamma=0.99, optimizer="rmsprop", lr=2.5e-4, eps=0.01 / 32**2,
        decay=0.95, centered=True, epsilon_start=1.0, epsilon_end=0.01,
        epsilon_decay_frames=1_000_000, eval_epsilon=0.001,
    ),
}  # fmt: skip


def encoder_for(env: str) -> str:
    """The encoder a preset uses for an environment: MinAtar CNN on MinAtar, Nature CNN on Atari."""
    return "minatar" if env.startswith("minatar/") else "nature"


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What distinguishes DQN from C51: the head, the loss on one transition, greedy values.

    kind names checkpoints ("dqn", "c51"); probe_reduce and probe_support are the update-matrix
    reduction (Appendix B.1: max over actions; for C51 the expectation over atoms first).
    """

    kind: str
    head: str
    head_kwargs: dict[str, Any]
    transition_loss: TransitionLoss
    greedy_values: Callable[[jax.Array], jax.Array]
    probe_reduce: str
    probe_support: tuple[float, ...] | None = None


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


@struct.dataclass
class TrainState:
    """Everything a run needs to continue bit for bit: the checkpointed pytree.

    frames: frames taken so far; updates: gradient updates so far; key: uint32 PRNG key whose
    splits drive every random draw; return_sum/episodes/loss_sum/loss_count: accumulators since
    the last log line; diverged: a non-finite loss was seen.
    """

    params: Any
    target_params: Any
    opt_state: Any
    replay: replay_lib.Replay
    env_state: Any
    obs: jax.Array
    key: jax.Array
    frames: jax.Array
    updates: jax.Array
    return_sum: jax.Array
    episodes: jax.Array
    loss_sum: jax.Array
    loss_count: jax.Array
    diverged: jax.Array


@dataclasses.dataclass(frozen=True)
class Agent:
    """A config, its algorithm, environment, network and optimiser, with the pure functions."""

    config: ValueBasedConfig
    algorithm: Algorithm
    env: EnvSpec
    network: Any
    optimizer: optax.GradientTransformation

    @classmethod
    def build(cls, config: ValueBasedConfig, algorithm: Algorithm) -> Agent:
        env = make_env(config.env, reward=config.reward)
        kwargs = dict(algorithm.head_kwargs)
        if config.encoder == "mlp":
            kwargs["obs_ndim"] = len(env.observation_shape)
        else:
            kwargs["conv_impl"] = config.conv_impl
        network = make_network(config.encoder, algorithm.head, env.num_actions, **kwargs)
        return cls(config, algorithm, env, network, make_optimizer(config))

    def apply(self, params, obs: jax.Array) -> jax.Array:
        """Network outputs; observations are cast back to the environment's dtype first (the
        replay stores uint8, and the encoder scales uint8 as pixels: MinAtar's 0/1 planes must
        reach it as the floats the environment emits)."""
        return self.network.apply(params, obs.astype(self.env.observation_dtype))

    def init_params(self, key: jax.Array):
        dummy = jnp.zeros((1, *self.env.observation_shape), jnp.uint8)
        return self.network.init(key, dummy)

    def init(self, seed: int | None = None) -> TrainState:
        """The state at frame 0 for ``seed`` (the config's seed when None)."""
        key = jax.random.PRNGKey(self.config.seed if seed is None else seed)
        return self._jit_init(key)

    @functools.cached_property
    def _jit_init(self) -> Callable[[jax.Array], TrainState]:
        return jax.jit(self._init)  # eagerly, gymnax's reset dispatches op by op (~5 s)

    def _init(self, key: jax.Array) -> TrainState:
        config = self.config
        key, key_params, key_env = jax.random.split(key, 3)
        params = self.init_params(key_params)
        obs, env_state = self.env.reset_batch(key_env, config.num_envs)
        return TrainState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),  # distinct buffers: donated
            opt_state=self.optimizer.init(params),
            replay=replay_lib.init_replay(
                config.buffer_size, config.num_envs, self.env.observation_shape
            ),
            env_state=env_state,
            obs=obs,
            key=key,
            frames=jnp.int32(0),
            updates=jnp.int32(0),
            return_sum=jnp.float32(0.0),
            episodes=jnp.int32(0),
            loss_sum=jnp.float32(0.0),
            loss_count=jnp.int32(0),
            diverged=jnp.bool_(False),
        )

    def batch_loss(self, params, target_params, batch: dict[str, jax.Array]) -> jax.Array:
        """Mean of the transition loss over a replay batch (targets from ``target_params``)."""
        outputs = self.apply(params, batch["obs"])
        target_outputs = jax.lax.stop_gradient(self.apply(target_params, batch["next_obs"]))
        discount = self.config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        losses = jax.vmap(self.algorithm.transition_loss)(
            outputs, batch["action"], batch["reward"], discount, target_outputs
        )
        return jnp.mean(losses)

    def act(self, params, obs: jax.Array, key: jax.Array, epsilon: jax.Array) -> jax.Array:
        """Epsilon-greedy actions [n] for observations [n, ...]."""
        key_explore, key_random = jax.random.split(key)
        greedy = jnp.argmax(self.algorithm.greedy_values(self.apply(params, obs)), axis=-1)
        random = jax.random.randint(key_random, greedy.shape, 0, self.env.num_actions)
        explore = jax.random.uniform(key_explore, greedy.shape) < epsilon
        return jnp.where(explore, random, greedy).astype(jnp.int32)

    def _update(self, state: TrainState, key: jax.Array) -> TrainState:
        batch = replay_lib.sample(state.replay, key, self.config.batch_size)
        loss, grads = jax.value_and_grad(self.batch_loss)(state.params, state.target_params, batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        return state.replace(
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
            updates=state.updates + 1,
            loss_sum=state.loss_sum + loss,
            loss_count=state.loss_count + 1,
            diverged=state.diverged | ~jnp.isfinite(loss),
        )

    def _iteration(self, state: TrainState, _) -> tuple[TrainState, None]:
        """One vectorised environment step, its replay write, the updates due, the target copy."""
        config = self.config
        n = config.num_envs
        key, key_act, key_env, key_update = jax.random.split(state.key, 4)
        action = self.act(state.params, state.obs, key_act, epsilon_at(config, state.frames))
        obs, env_state, reward, done, info = self.env.step_batch(key_env, state.env_state, action)
        replay = replay_lib.add(
            state.replay, state.obs, action, reward, info["final_observation"], info["terminated"]
        )
        frames = state.frames + n
        state = state.replace(
            replay=replay,
            env_state=env_state,
            obs=obs,
            key=key,
            frames=frames,
            return_sum=state.return_sum + jnp.sum(jnp.where(done, info["episode_return"], 0.0)),
            episodes=state.episodes + jnp.sum(done).astype(jnp.int32),
        )
        learning = frames > config.learning_starts
        if config.train_every >= n:  # one update on the iterations where a period ends
            due = learning & (frames % config.train_every == 0)
            state = jax.lax.cond(due, self._update, lambda s, k: s, state, key_update)
        else:  # several updates per iteration
            keys = jax.random.split(key_update, n // config.train_every)

            def updates(s):
                return jax.lax.fori_loop(0, len(keys), lambda i, s: self._update(s, keys[i]), s)

            state = jax.lax.cond(learning, updates, lambda s: s, state)
        copy = frames % config.target_period == 0
        target = jax.lax.cond(copy, lambda: state.params, lambda: state.target_params)
        return state.replace(target_params=target), None

    def segment(self, state: TrainState, iterations: int) -> TrainState:
        """``iterations`` scan steps (pure; jit it with iterations static)."""
        state, _ = jax.lax.scan(self._iteration, state, None, length=iterations)
        return state

    def jit_segment(self) -> Callable[[TrainState], TrainState]:
        """The compiled segment of ``config.segment_frames`` frames, donating the old state."""
        iterations = self.config.segment_frames // self.config.num_envs
        return jax.jit(lambda state: self.segment(state, iterations), donate_argnums=0)


def reset_accumulators(state: TrainState) -> TrainState:
    """Zero the since-last-log accumulators (after a log line is written)."""
    return state.replace(
        return_sum=jnp.zeros_like(state.return_sum),
        episodes=jnp.zeros_like(state.episodes),
        loss_sum=jnp.zeros_like(state.loss_sum),
        loss_count=jnp.zeros_like(state.loss_count),
    )


def evaluate_returns(agent: Agent, params, key: jax.Array, steps: int) -> jax.Array:
    """Mean return of episodes finished in ``steps`` vectorised steps at ``eval_epsilon`` (nan if none)."""
    config = agent.config
    key, key_reset = jax.random.split(key)
    obs, env_state = agent.env.reset_batch(key_reset, config.num_envs)

    def step(carry, key):
        obs, env_state, total, count = carry
        key_act, key_env = jax.random.split(key)
        action = agent.act(params, obs, key_act, jnp.float32(config.eval_epsilon))
        obs, env_state, _, done, info = agent.env.step_batch(key_env, env_state, action)
        total = total + jnp.sum(jnp.where(done, info["episode_return"], 0.0))
        return (obs, env_state, total, count + jnp.sum(done)), None

    init = (obs, env_state, jnp.float32(0.0), jnp.int32(0))
    (_, _, total, count), _ = jax.lax.scan(step, init, jax.random.split(key, steps))
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
