"""The training loop shared by PPO and DAAC: rollouts, GAE, updates, evaluation on held-out levels.

PureJaxRL style on gymnax: the whole training state is one pytree (`ACState`) and training
advances in jitted segments, each a `lax.scan` over iterations (a rollout of ``num_steps`` vectorised
steps with actions sampled from the policy, GAE, then the algorithm's update). On envpool ProcGen
the same `learn` step follows rollouts stepped on the host (`tdgen.agents.actor_critic.host`).
An algorithm (`tdgen.agents.actor_critic.ppo.PPO`, `tdgen.agents.actor_critic.daac.DAAC`) contributes its networks, its
update and its probe targets; everything else lives here.

Advantages are normalised over the whole rollout (as the IDAAC code; DAAC's advantage head
regresses onto the normalised values). A time-limit truncation bootstraps: the reward of the
truncating step gains gamma * V(final observation).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from tdgen import streams
from tdgen.agents.actor_critic.config import PPOConfig
from tdgen.agents.actor_critic.daac import DAAC
from tdgen.agents.actor_critic.ppo import PPO
from tdgen.agents.train import Train
from tdgen.envs import EnvSpec, held_out_levels, make_env
from tdgen.errors import InputError
from tdgen.evaluate import episode_returns, sampled
from tdgen.losses.policy import gae, log_prob


@struct.dataclass
class ACState:
    """Everything a run needs to continue bit for bit: the checkpointed pytree.

    frames: frames so far; iterations: updates so far; key: PRNG key driving every draw;
    return_sum/episodes: finished training episodes since the last log line; loss_sums/
    loss_counts: per-statistic sums of finite values since the last log line; diverged: a
    non-finite loss was seen. env_state and obs are () on host-stepped environments. memory: the
    interventions' memory (`tdgen.agents.actor_critic.plasticity`; () without interventions);
    logs: what their events logged, summed since the last log line ({} without events).
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: Any
    key: jax.Array
    frames: jax.Array
    iterations: jax.Array
    return_sum: jax.Array
    episodes: jax.Array
    loss_sums: dict[str, jax.Array]
    loss_counts: dict[str, jax.Array]
    diverged: jax.Array
    memory: Any = ()
    logs: Any = struct.field(default_factory=dict)


@struct.dataclass
class Rollout:
    """One iteration's data, arrays [T, N, ...]: observations, actions, their log-probabilities and
    values under the acting parameters, rewards (with truncation bootstraps) and episode ends;
    after `learn`, also advantages (normalised) and returns."""

    obs: jax.Array
    action: jax.Array
    logprob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array
    advantage: jax.Array | None = None
    returns: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class ActorCriticAgent:
    """A config, its algorithm, training and evaluation environments, with the pure functions."""

    config: PPOConfig
    algorithm: PPO | DAAC
    env: Any  # EnvSpec (gymnax) or ProcgenSpec (envpool, host-stepped)
    test_env: Any

    @classmethod
    def build(cls, config: PPOConfig, algorithm: type[PPO] | type[DAAC]) -> ActorCriticAgent:
        """The agent of ``algorithm`` (PPO, DAAC: `build(config, obs_shape, num_actions)`)."""
        env, test_env = make_level_envs(config)
        return cls(config, algorithm.build(config, env.observation_shape, env.num_actions), env,
                   test_env)  # fmt: skip

    @property
    def host_stepped(self) -> bool:
        return not isinstance(self.env, EnvSpec)

    def dummy_obs(self) -> jax.Array:
        return jnp.zeros((1, *self.env.observation_shape), self.env.observation_dtype)

    def init(self, seed: int | None = None) -> ACState:
        """The state at frame 0 for ``seed`` (the config's seed when None)."""
        key = jax.random.PRNGKey(self.config.seed if seed is None else seed)
        return self._jit_init(key)

    @functools.cached_property
    def _jit_init(self) -> Callable[[jax.Array], ACState]:
        return jax.jit(self._init)

    def _init(self, key: jax.Array) -> ACState:
        key, key_params, key_env = jax.random.split(key, 3)
        params, opt_state, memory = self.algorithm.init(key_params, self.dummy_obs())
        if self.host_stepped:
            obs, env_state = (), ()
        else:
            obs, env_state = self.env.reset_batch(key_env, self.config.num_envs)
        names = self.algorithm.loss_names
        return ACState(
            params=params, opt_state=opt_state, env_state=env_state, obs=obs, key=key,
            frames=jnp.int32(0), iterations=jnp.int32(0), return_sum=jnp.float32(0.0),
            episodes=jnp.int32(0), loss_sums={n: jnp.float32(0.0) for n in names},
            loss_counts={n: jnp.int32(0) for n in names}, diverged=jnp.bool_(False),
            memory=memory,
            logs=self.algorithm.zero_logs(params, opt_state, memory, self.dummy_obs()),
        )  # fmt: skip

    def act(self, params, obs: jax.Array, key: jax.Array, memory=None):
        """Sampled actions [n] with their log-probabilities and values (``memory``: the
        interventions'; None: ``params`` are the effective ones)."""
        logits, value = self.algorithm.policy_value(params, obs, memory)
        action = jax.random.categorical(key, logits).astype(jnp.int32)
        return action, log_prob(logits, action), value

    def learn(self, state: ACState, rollout: Rollout, last_value: jax.Array, key: jax.Array):
        """GAE on ``rollout``, then the algorithm's update; returns (state, rollout with targets)."""
        c = self.config
        advantage, returns = gae(rollout.reward, rollout.value, rollout.done, last_value,
                                 c.gamma, c.gae_lambda)  # fmt: skip
        if c.norm_adv:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        rollout = rollout.replace(advantage=advantage, returns=returns)
        params, opt_state, memory, stats, logs = self.algorithm.update(
            state.params, state.opt_state, state.memory, flat_batch(rollout), key,
            state.iterations,
        )  # fmt: skip
        finite = {name: jnp.isfinite(value) for name, value in stats.items()}
        return state.replace(
            params=params,
            opt_state=opt_state,
            iterations=state.iterations + 1,
            loss_sums={n: state.loss_sums[n] + jnp.where(finite[n], stats[n], 0.0)
                       for n in state.loss_sums},
            loss_counts={n: state.loss_counts[n] + finite[n].astype(jnp.int32)
                         for n in state.loss_counts},
            diverged=state.diverged | ~finite["loss"],
            memory=memory,
            logs=jax.tree.map(jnp.add, state.logs, logs),
        ), rollout  # fmt: skip

    # --- the jitted loop on gymnax environments ------------------------------------------------

    def _env_step(self, carry, key):
        state_params, memory, env_state, obs = carry
        key_act, key_env = jax.random.split(key)
        action, logp, value = self.act(state_params, obs, key_act, memory)
        next_obs, env_state, reward, done, info = self.env.step_batch(key_env, env_state, action)
        truncated = info["truncated"] & ~info["terminated"]
        # Bootstrap a truncated episode from its final observation; skipped when none truncates.
        final_value = jax.lax.cond(
            jnp.any(truncated),
            lambda: self.algorithm.policy_value(state_params, info["final_observation"], memory)[1],
            lambda: jnp.zeros_like(value),
        )
        reward = reward + self.config.gamma * jnp.where(truncated, final_value, 0.0)
        step = (obs, action, logp, value, reward, done,
                jnp.where(done, info["episode_return"], 0.0))  # fmt: skip
        return (state_params, memory, env_state, next_obs), step

    def iteration(self, state: ACState) -> tuple[ACState, Rollout]:
        """One rollout of num_steps vectorised steps and one update (pure)."""
        c = self.config
        key, key_rollout, key_update = jax.random.split(state.key, 3)
        (_, _, env_state, obs), steps = jax.lax.scan(
            self._env_step, (state.params, state.memory, state.env_state, state.obs),
            jax.random.split(key_rollout, c.num_steps),
        )  # fmt: skip
        obs_t, action, logp, value, reward, done, finished_return = steps
        _, last_value = self.algorithm.policy_value(state.params, obs, state.memory)
        rollout = Rollout(obs_t, action, logp, value, reward, done)
        state = state.replace(
            env_state=env_state, obs=obs, key=key, frames=state.frames + c.batch_frames,
            return_sum=state.return_sum + jnp.sum(finished_return),
            episodes=state.episodes + jnp.sum(done).astype(jnp.int32),
        )  # fmt: skip
        return self.learn(state, rollout, last_value, key_update)

    def segment(self, state: ACState, iterations: int) -> tuple[ACState, Rollout]:
        """``iterations`` iterations (pure; jit with iterations static); returns the last rollout
        (the earlier ones are not kept: the probes read the latest)."""
        if iterations > 1:
            state, _ = jax.lax.scan(
                lambda s, _: (self.iteration(s)[0], None), state, None, iterations - 1
            )
        return self.iteration(state)

    def jit_segment(self) -> Callable[[ACState], tuple[ACState, Rollout]]:
        """The compiled segment of ``config.segment_frames`` frames, donating the old state."""
        iterations = self.config.segment_frames // self.config.batch_frames
        return jax.jit(lambda state: self.segment(state, iterations), donate_argnums=0)

    def make_train(self) -> Train:
        """The pure train functions: init(key) and one segment of ``config.segment_frames``
        frames, whose extras are the segment's last rollout (the probes read it)."""
        iterations = self.config.segment_frames // self.config.batch_frames
        return Train(self._init, lambda state: self.segment(state, iterations))

    def evaluate(self, params, key: jax.Array, memory=None) -> dict[str, jax.Array]:
        """Mean return of the episodes finished by ``eval_envs`` environments in ``eval_steps``
        steps of the stochastic policy, on training levels and on held-out levels (nan if none);
        ``memory``: the interventions' (None: ``params`` are the effective ones)."""
        key_train, key_test = jax.random.split(key)
        policy = sampled(lambda obs: self.algorithm.policy_value(params, obs, memory)[0])
        c = self.config
        return {
            "charts/train_return": episode_returns(policy, self.env, key_train, c.eval_envs,
                                                   c.eval_steps),
            "charts/test_return": episode_returns(policy, self.test_env, key_test, c.eval_envs,
                                                  c.eval_steps),
        }  # fmt: skip


def reset_accumulators(state: ACState) -> ACState:
    """Zero the since-last-log accumulators (of one run, or of every run of a group at once)."""
    return state.replace(
        return_sum=jnp.zeros_like(state.return_sum),
        episodes=jnp.zeros_like(state.episodes),
        loss_sums=jax.tree.map(jnp.zeros_like, state.loss_sums),
        loss_counts=jax.tree.map(jnp.zeros_like, state.loss_counts),
        logs=jax.tree.map(jnp.zeros_like, state.logs),
    )


def eval_key(state: ACState) -> jax.Array:
    """The evaluation's key: a function of the state's key, so a resumed run evaluates the same."""
    return jax.random.fold_in(state.key, streams.EVAL)


def flat_batch(rollout: Rollout) -> dict[str, jax.Array]:
    """The rollout as flat samples [T * N, ...] under the names the losses read."""

    def flat(x):
        return x.reshape((-1,) + x.shape[2:])

    return {
        "obs": flat(rollout.obs), "action": flat(rollout.action),
        "logprob": flat(rollout.logprob), "value": flat(rollout.value),
        "advantage": flat(rollout.advantage), "return": flat(rollout.returns),
    }  # fmt: skip


def make_level_envs(config: PPOConfig) -> tuple[Any, Any]:
    """(training environment, held-out environment) for the config's level split.

    On MinAtar, num_levels 0 is the plain game (its own random stream: the full distribution).
    """
    start, count = held_out_levels(config.num_levels, config.start_level, config.test_num_levels)
    common: dict[str, Any] = {"reward": config.reward}
    if config.env.startswith("procgen/"):
        common["distribution_mode"] = config.distribution_mode
        train = make_env(config.env, num_levels=config.num_levels,
                         start_level=config.start_level, **common)  # fmt: skip
        test = make_env(config.env, num_levels=count, start_level=start, **common)
        return train, test
    if not config.env.startswith("minatar/"):
        raise InputError(
            f"actor-critic agents run on minatar/<game> or procgen/<game>, not {config.env!r}"
        )
    if config.num_levels == 0:  # the plain game: its own random stream is the full distribution
        train = make_env(config.env, **common)
        if count == 0:
            return train, train
    else:
        train = make_env(config.env, num_levels=config.num_levels,
                         start_level=config.start_level, **common)  # fmt: skip
    test = make_env(config.env, num_levels=count, start_level=start, **common)
    return train, test


__all__ = ["ACState", "ActorCriticAgent", "Rollout", "eval_key", "flat_batch"]
