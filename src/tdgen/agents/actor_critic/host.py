"""PPO and DAAC on envpool ProcGen: rollouts stepped on the host, the same jitted `learn`.

Each iteration steps ``num_envs`` ProcGen environments ``num_steps`` times with actions sampled by
a jitted policy call, then runs `ActorCriticAgent.learn` (GAE and the algorithm's update) on the
rollout, jitted. Evaluation steps separate pools on training and held-out levels.

Resuming restores parameters, optimiser state, key and counters, but not the emulators' states
(envpool cannot save them): the resumed run restarts episodes from a seed derived from (seed,
frames), so it is reproducible but not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tdgen import streams
from tdgen.agents.actor_critic.agent import ACState, ActorCriticAgent, Rollout
from tdgen.agents.value_based.host import env_seed
from tdgen.evaluate import host_episode_returns


class HostFunctions:
    """The jitted pieces: sampling actions (and splitting the key), values, learning."""

    def __init__(self, agent: ActorCriticAgent):
        def act(params, memory, obs, key):
            key, key_act = jax.random.split(key)
            return (*agent.act(params, obs, key_act, memory), key)

        def learn(state, rollout, last_value):
            key, key_update = jax.random.split(state.key)
            state, rollout = agent.learn(state.replace(key=key), rollout, last_value, key_update)
            return state, rollout

        self.act = jax.jit(act)
        self.value = jax.jit(
            lambda params, memory, obs: agent.algorithm.policy_value(params, obs, memory)[1]
        )
        self.learn = jax.jit(learn, donate_argnums=0)


def collect(agent: ActorCriticAgent, fns: HostFunctions, params, memory, key, env, obs):
    """One rollout of ``num_steps`` host steps: (rollout [T, N, ...] on the host, last value,
    next obs, key, sum of finished episodes' returns, number finished)."""
    c = agent.config
    t_obs = np.empty((c.num_steps, *obs.shape), obs.dtype)
    actions = np.empty((c.num_steps, c.num_envs), np.int32)
    logps = np.empty((c.num_steps, c.num_envs), np.float32)
    values = np.empty((c.num_steps, c.num_envs), np.float32)
    rewards = np.empty((c.num_steps, c.num_envs), np.float32)
    dones = np.empty((c.num_steps, c.num_envs), np.bool_)
    return_sum, episodes = 0.0, 0
    for t in range(c.num_steps):
        action, logp, value, key = fns.act(params, memory, obs, key)
        t_obs[t], actions[t] = obs, np.asarray(action)
        logps[t], values[t] = np.asarray(logp), np.asarray(value)
        obs, reward, terminated, truncated, info = env.step(actions[t])
        done = terminated | truncated
        cut = truncated & ~terminated
        if cut.any():  # bootstrap time-limit truncations from the final observation
            final = np.asarray(fns.value(params, memory, info["final_observation"]))
            reward = reward + c.gamma * np.where(cut, final, 0.0)
        rewards[t], dones[t] = reward, done
        return_sum += float(np.sum(info["episode_return"][done]))
        episodes += int(np.sum(done))
    rollout = Rollout(t_obs, actions, logps, values, rewards, dones)
    return rollout, fns.value(params, memory, obs), obs, key, return_sum, episodes


def host_segment(agent, fns, state: ACState, env, obs, iterations: int):
    """``iterations`` host iterations; returns (state, next obs, last rollout with targets)."""
    c = agent.config
    rollout = None
    for _ in range(iterations):
        host_rollout, last_value, obs, key, return_sum, episodes = collect(
            agent, fns, state.params, state.memory, state.key, env, obs
        )
        state = state.replace(
            key=key, frames=state.frames + c.batch_frames,
            return_sum=state.return_sum + return_sum, episodes=state.episodes + episodes,
        )  # fmt: skip
        state, rollout = fns.learn(state, jax.tree.map(jnp.asarray, host_rollout), last_value)
    return state, obs, rollout


def host_evaluate(agent: ActorCriticAgent, fns, state: ACState) -> dict[str, Any]:
    """Mean return of the episodes ``eval_envs`` pool environments finish in ``eval_steps`` steps
    of the stochastic policy, on training and held-out levels (`host_episode_returns`)."""
    c = agent.config
    seed = env_seed(c.seed, int(state.frames), streams.EVAL_ENV)

    def act(obs, key):
        action, _, _, key = fns.act(state.params, state.memory, obs, key)
        return action, key

    def returns(spec):
        return host_episode_returns(act, spec, jax.random.PRNGKey(seed), c.eval_envs,
                                    c.eval_steps, seed)  # fmt: skip

    return {
        "charts/train_return": returns(agent.env),
        "charts/test_return": returns(agent.test_env),
    }


__all__ = ["HostFunctions", "collect", "env_seed", "host_evaluate", "host_segment"]
