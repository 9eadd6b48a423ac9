"""The training loop shared by DQN and C51: training state and a jitted segment (config: config.py).

PureJaxRL style: the whole training state is one pytree (`TrainState`), and training advances in
segments, each one jitted `lax.scan` over vectorised environment steps (epsilon-greedy acting, a
replay write, an update every ``train_every`` frames once learning has started, a target update
on its period). Host-side events (logging, probes, checkpoints) happen between segments
(`tdgen.agents.value_based.launch`). An algorithm (`Algorithm`) contributes only its head, its loss on one
transition and the values it acts greedily on; everything else lives here.

Plasticity interventions (`tdgen.agents.interventions`, the config's ``interventions``) enter
through `Applied`: the network's options, the wrapped optimiser, the memory and event sums in the
state, the online forward pass (`Agent.outputs`), the loss terms and the after-update hooks in
`Agent.learn`, the one update both loops (this scan, the Atari host loop) run. Without
interventions every hook is left out, so such a run computes bit for bit as before them.

Counting: a *frame* is one environment step of one environment (MinAtar has no frame skip), so
one iteration of the scan is ``num_envs`` frames. Every schedule is in frames.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from tdgen import streams
from tdgen.agents.interventions import (
    Context,
    Intervention,
    parse_interventions,
)
from tdgen.agents.interventions.applied import Applied, network_options
from tdgen.agents.train import Train
from tdgen.agents.value_based import replay as replay_lib
from tdgen.agents.value_based.config import (
    ValueBasedConfig,
    epsilon_at,
    make_optimizer,
)
from tdgen.agents.value_based.frame_replay import require_memory
from tdgen.envs import EnvSpec, make_env
from tdgen.nets import make_network

# Loss on one transition: (outputs at x [A, ...], action, reward, discount, target outputs at x'
# [A, ...]) -> scalar. The same function trains the agent (vmapped) and defines the probe's loss.
TransitionLoss = Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What distinguishes DQN from C51: the head, the loss on one transition, greedy values.

    kind names checkpoints ("dqn", "c51", "qrdqn"); probe_reduce and probe_support are the
    update-matrix reduction (Appendix B.1: max over actions; for C51 the expectation over atoms
    first), applied to probe_outputs(network outputs) (the outputs themselves unless told; QR-DQN:
    the mean over quantiles).
    """

    kind: str
    head: str
    head_kwargs: dict[str, Any]
    transition_loss: TransitionLoss
    greedy_values: Callable[[jax.Array], jax.Array]
    probe_reduce: str
    probe_support: tuple[float, ...] | None = None
    probe_outputs: Callable[[jax.Array], jax.Array] | None = None


@struct.dataclass
class TrainState:
    """Everything a run needs to continue bit for bit: the checkpointed pytree.

    frames: frames taken so far; updates: gradient updates so far; key: uint32 PRNG key whose
    splits drive every random draw; return_sum/episodes/loss_sum/loss_count: accumulators since
    the last log line; diverged: a non-finite loss was seen. memory: the interventions' memory
    (`Applied.init`; () without interventions); logs: what their events logged, summed since the
    last log line ({} without events). target_params are the online network's *effective*
    parameters at the copy (`Agent.effective_params`: plasticity injection folded into the
    heads), so the target needs no memory of its own.
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
    memory: Any = ()
    logs: Any = struct.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Agent:
    """A config, its algorithm, environment, network and optimiser, with the pure functions.

    ``base_optimizer`` is the config's; `Agent.optimizer` the one it trains with (wrapped by the
    optimiser interventions); `Agent.applied` binds the config's interventions to the network."""

    config: ValueBasedConfig
    algorithm: Algorithm
    env: EnvSpec
    network: Any
    base_optimizer: optax.GradientTransformation
    interventions: tuple[Intervention, ...] = ()

    @classmethod
    def build(cls, config: ValueBasedConfig, algorithm: Algorithm) -> Agent:
        env = make_env(config.env, reward=config.reward)
        if config.env.startswith("atari/"):  # the host replay: refused before anything is written
            require_memory(config.buffer_size, config.num_envs, env.observation_shape)
        interventions = parse_interventions(config.interventions, lr=config.lr)
        kwargs = {**algorithm.head_kwargs, **network_options(interventions)}
        if config.encoder == "mlp":
            kwargs["obs_ndim"] = len(env.observation_shape)
        else:
            kwargs["conv_impl"] = config.conv_impl
        network = make_network(config.encoder, algorithm.head, env.num_actions, **kwargs)
        agent = cls(config, algorithm, env, network, make_optimizer(config), interventions)
        agent.applied  # noqa: B018 (binds now: ReDo on IMPALA, say, is refused before writing)
        return agent

    @functools.cached_property
    def applied(self) -> Applied:
        """The interventions bound to this agent: its init, cast forward pass and encoder."""
        context = Context(
            init_params=self.init_params,
            apply=self.apply,
            features=lambda params, obs: self.network.apply(
                params, self.cast(obs), method="encode"
            ),
            optimizer=self.base_optimizer,
            network=self.network,
        )
        return Applied.bind(self.interventions, context)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """The optimiser the agent trains with: the config's, wrapped by the interventions."""
        return self.applied.optimizer if self.interventions else self.base_optimizer

    def cast(self, obs: jax.Array) -> jax.Array:
        """Observations as the environment emits them (the replay stores uint8)."""
        return obs.astype(self.env.observation_dtype)

    def apply(self, params, obs: jax.Array) -> jax.Array:
        """Network outputs; observations are cast back to the environment's dtype first (the
        replay stores uint8, and the encoder scales uint8 as pixels: MinAtar's 0/1 planes must
        reach it as the floats the environment emits). The plain network: the trained one's
        outputs are `Agent.outputs` (with the interventions' memory)."""
        return self.network.apply(params, self.cast(obs))

    def outputs(self, params, memory, obs: jax.Array) -> jax.Array:
        """The online network's outputs through `Applied.apply` (plasticity injection's heads);
        `Agent.apply` itself when there are no interventions."""
        if not self.interventions:
            return self.apply(params, obs)
        return self.applied.apply(params, memory, obs)

    def effective_params(self, params, memory):
        """Variables of the plain network that computes `Agent.outputs(params, memory, .)`:
        plasticity injection's Eq. 1 folded into the heads (exact: the heads are affine), the
        parameters themselves otherwise. What the target copies and the probe differentiates."""
        return self.applied.effective_params(params, memory) if self.interventions else params

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

    def init_learner(self, key_params: jax.Array) -> dict[str, Any]:
        """The learner's fields at frame 0: params, target_params, opt_state, memory, logs (the
        interventions' own parameters and memory drawn from ``key_params`` too, which leaves the
        network's initialisation as it was without them)."""
        params = self.init_params(key_params)
        memory, logs = (), {}
        if self.interventions:
            params, memory = self.applied.init(
                jax.random.fold_in(key_params, streams.INTERVENTIONS), params
            )
        opt_state = self.optimizer.init(params)
        if self.interventions:
            obs = jnp.zeros((self.config.batch_size, *self.env.observation_shape), jnp.uint8)
            logs = self.applied.zero_logs(params, opt_state, memory, self.cast(obs))
            if self.has_loss_terms:
                logs["losses/interventions"] = jnp.float32(0.0)
        return dict(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),  # distinct buffers: donated
            opt_state=opt_state,
            memory=memory,
            logs=logs,
        )

    @property
    def has_loss_terms(self) -> bool:
        """Whether an intervention adds a term to the loss."""
        return any(i.kind == "loss" for i in self.interventions)

    def _init(self, key: jax.Array) -> TrainState:
        config = self.config
        key, key_params, key_env = jax.random.split(key, 3)
        obs, env_state = self.env.reset_batch(key_env, config.num_envs)
        return TrainState(
            **self.init_learner(key_params),
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

    def batch_loss(self, params, target_params, batch: dict[str, jax.Array], memory=()):
        """Mean of the transition loss over a replay batch (targets from ``target_params``, the
        target's effective parameters; outputs through `Agent.outputs` with ``memory``)."""
        outputs = self.outputs(params, memory, batch["obs"])
        target_outputs = jax.lax.stop_gradient(self.apply(target_params, batch["next_obs"]))
        discount = self.config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        losses = jax.vmap(self.algorithm.transition_loss)(
            outputs, batch["action"], batch["reward"], discount, target_outputs
        )
        return jnp.mean(losses)

    def training_loss(self, params, target_params, batch, memory):
        """(TD loss + the interventions' loss terms `Applied.loss`, (TD loss, terms))."""
        td_loss = self.batch_loss(params, target_params, batch, memory)
        terms = self.applied.loss(params, memory, self.cast(batch["obs"]))
        return td_loss + terms, (td_loss, terms)

    def act(
        self, params, obs: jax.Array, key: jax.Array, epsilon: jax.Array, memory=()
    ) -> jax.Array:
        """Epsilon-greedy actions [n] for observations [n, ...] (outputs: `Agent.outputs`)."""
        key_explore, key_random = jax.random.split(key)
        values = self.algorithm.greedy_values(self.outputs(params, memory, obs))
        greedy = jnp.argmax(values, axis=-1)
        random = jax.random.randint(key_random, greedy.shape, 0, self.env.num_actions)
        explore = jax.random.uniform(key_explore, greedy.shape) < epsilon
        return jnp.where(explore, random, greedy).astype(jnp.int32)

    def learn(self, learner, batch: dict[str, jax.Array], key: jax.Array, updates: jax.Array):
        """One gradient update on ``batch``, then the interventions' after-update hooks
        (`Applied.after_update`, events due at ``updates``, the count after this update, drawing
        from ``key``). ``learner``: any state with params, target_params, opt_state, memory, logs,
        loss_sum, loss_count and diverged (`TrainState`, the Atari host loop's `Learner`)."""
        params, memory = learner.params, learner.memory
        logs = dict(learner.logs)
        if self.has_loss_terms:
            (loss, (td_loss, terms)), grads = jax.value_and_grad(self.training_loss, has_aux=True)(
                params, learner.target_params, batch, memory
            )
            logs["losses/interventions"] = logs["losses/interventions"] + terms
        else:
            td_loss, grads = jax.value_and_grad(self.batch_loss)(
                params, learner.target_params, batch, memory
            )
            loss = td_loss
        updates_tree, opt_state = self.optimizer.update(grads, learner.opt_state, params)
        params = optax.apply_updates(params, updates_tree)
        if self.interventions:
            params, opt_state, memory, logged = self.applied.after_update(
                params, opt_state, memory, key, self.cast(batch["obs"]), updates
            )
            logs.update({k: logs[k] + v for k, v in logged.items()})
        return learner.replace(
            params=params,
            opt_state=opt_state,
            memory=memory,
            logs=logs,
            loss_sum=learner.loss_sum + td_loss,
            loss_count=learner.loss_count + 1,
            diverged=learner.diverged | ~jnp.isfinite(loss),
        )

    def _update(self, state: TrainState, key: jax.Array) -> TrainState:
        batch = replay_lib.sample(state.replay, key, self.config.batch_size)
        updates = state.updates + 1
        key_events = jax.random.fold_in(key, streams.INTERVENTIONS) if self.interventions else key
        return self.learn(state, batch, key_events, updates).replace(updates=updates)

    def copy_target(self, learner):
        """The target copy: the online network's effective parameters (`effective_params`)."""
        return self.effective_params(learner.params, learner.memory)

    def _iteration(self, state: TrainState, _) -> tuple[TrainState, None]:
        """One vectorised environment step, its replay write, the updates due, the target copy."""
        config = self.config
        n = config.num_envs
        key, key_act, key_env, key_update = jax.random.split(state.key, 4)
        epsilon = epsilon_at(config, state.frames)
        action = self.act(state.params, state.obs, key_act, epsilon, state.memory)
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
        target = jax.lax.cond(copy, lambda: self.copy_target(state), lambda: state.target_params)
        return state.replace(target_params=target), None

    def segment(self, state: TrainState, iterations: int) -> TrainState:
        """``iterations`` scan steps (pure; jit it with iterations static)."""
        state, _ = jax.lax.scan(self._iteration, state, None, length=iterations)
        return state

    def jit_segment(self) -> Callable[[TrainState], TrainState]:
        """The compiled segment of ``config.segment_frames`` frames, donating the old state."""
        iterations = self.config.segment_frames // self.config.num_envs
        return jax.jit(lambda state: self.segment(state, iterations), donate_argnums=0)

    def make_train(self) -> Train:
        """The pure train functions: init(key) and one segment of ``config.segment_frames``."""
        iterations = self.config.segment_frames // self.config.num_envs
        return Train(self._init, lambda state: (self.segment(state, iterations), None))


def intervention_values(logs: dict[str, Any], loss_count) -> dict[str, float]:
    """The metric line's values of the interventions' accumulators (host arrays): each event's
    ``interventions/<name>/<what>`` summed over its firings since the last line, and
    ``losses/interventions``, the loss terms' mean over the updates."""
    values = {}
    for name, total in logs.items():
        if name == "losses/interventions":
            if int(loss_count) > 0:
                values[name] = float(total / loss_count)
        else:
            values[name] = total.item()
    return values


def reset_accumulators(state: TrainState) -> TrainState:
    """Zero the since-last-log accumulators (after a log line is written)."""
    return state.replace(
        return_sum=jnp.zeros_like(state.return_sum),
        episodes=jnp.zeros_like(state.episodes),
        loss_sum=jnp.zeros_like(state.loss_sum),
        loss_count=jnp.zeros_like(state.loss_count),
        logs=jax.tree.map(jnp.zeros_like, state.logs),
    )
