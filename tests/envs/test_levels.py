"""Levels for jittable environments (`with_levels`) and the train/test split (`held_out_levels`)."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.envs import held_out_levels, make_env, with_levels
from tdgen.envs.levels import FULL_DISTRIBUTION, ROOT_SEED


def rollout(spec, env_key, actions):
    """Scan of step_batch (jit it at the call): actions [steps, num_envs], env keys from env_key.

    Returns the first observations and the stacked (obs, reward, done, info) of every step.
    """

    def _env_step(carry, inputs):
        obs, state = carry
        key, action = inputs
        obs, state, reward, done, info = spec.step_batch(key, state, action)
        return (obs, state), (obs, reward, done, info)

    k_reset, k_run = jax.random.split(env_key)
    carry = spec.reset_batch(k_reset, actions.shape[1])
    keys = jax.random.split(k_run, actions.shape[0])
    return carry[0], jax.lax.scan(_env_step, carry, (keys, actions))[1]


def same_actions(spec, steps, num_envs, seed=0):
    """Random actions [steps, num_envs], the same in every environment."""
    column = jax.random.randint(jax.random.key(seed), (steps, 1), 0, spec.num_actions)
    return jnp.broadcast_to(column, (steps, num_envs))


@pytest.mark.slow
def test_an_episode_is_a_function_of_its_level_and_actions_whatever_the_keys():
    # asterix draws spawns from the step key every step: the keys matter unless levels fix them
    spec = make_env("minatar/asterix", num_levels=2, start_level=3)
    steps, actions = 40, same_actions(spec, 40, 8)
    first, (obs, reward, done, info) = jax.jit(rollout, static_argnums=0)(
        spec, jax.random.key(0), actions
    )
    obs, reward, done, level = map(np.asarray, (obs, reward, done, info["level"]))
    assert set(level[0]) == {3, 4} and set(level.ravel()) <= {3, 4}
    ended = np.where(done.any(0), done.argmax(0), steps)  # each env's first episode: [0, ended]
    for i in range(8):
        for j in range(i + 1, 8):  # envs i and j got different keys at every step
            horizon = min(ended[i], ended[j])
            same = np.array_equal(obs[:horizon, i], obs[:horizon, j])
            assert same == (level[0, i] == level[0, j]), (i, j, horizon)
            if level[0, i] == level[0, j]:
                np.testing.assert_array_equal(reward[: horizon + 1, i], reward[: horizon + 1, j])
    # A slow reference written plainly on gymnax: reset key fold_in(ROOT, level), step t key
    # fold_in(fold_in(ROOT, level), t + 1); env 0's first episode.
    env, params = gymnax.make("Asterix-MinAtar")
    level_key = jax.random.fold_in(jax.random.key(ROOT_SEED), int(level[0, 0]))
    reference, state = env.reset(level_key, params)
    np.testing.assert_array_equal(first[0], reference)
    for t in range(ended[0]):
        reference, state, r, *_ = env.step(
            jax.random.fold_in(level_key, t + 1), state, actions[t, 0], params
        )
        np.testing.assert_array_equal(obs[t, 0], reference)
        assert reward[t, 0] == r


def test_one_level_restarts_the_same_level_and_breakout_levels_differ_in_the_ball():
    spec = make_env("minatar/breakout", num_levels=1, start_level=9, max_steps_in_episode=5)
    first, (obs, _, done, info) = jax.jit(rollout, static_argnums=0)(
        spec, jax.random.key(2), jax.random.randint(jax.random.key(1), (12, 3), 0, 3)
    )
    np.testing.assert_array_equal(np.asarray(done)[:, 0], [0, 0, 0, 0, 1] * 2 + [0, 0])
    assert bool(info["truncated"][4].all()) and not bool(info["terminated"][4].any())
    np.testing.assert_array_equal(info["episode_length"][4], [5, 5, 5])
    np.testing.assert_array_equal(obs[4], first)  # level 9's first frame again
    assert not np.array_equal(info["final_observation"][4], obs[4])
    assert (np.asarray(info["level"]) == 9).all()
    # breakout draws one bit (the ball's side) at reset: its levels give exactly two starts
    breakout = make_env("minatar/breakout", num_levels=64, start_level=0)
    starts = np.asarray(jax.jit(lambda k: breakout.reset_batch(k, 256)[0])(jax.random.key(0)))
    assert len({s.tobytes() for s in starts}) == 2


def test_the_key_passed_to_step_draws_the_next_episodes_level():
    spec = with_levels(make_env("minatar/breakout", max_steps_in_episode=1), 1000, 0)
    _, state = spec.reset(jax.random.key(0))
    _, state, _, done, info = spec.step(jax.random.key(7), state, 0)
    _, fresh = spec.reset(jax.random.key(7))
    assert bool(done) and int(state.level) == int(fresh.level) != int(info["level"])
    assert int(state.t) == 0


def test_levels_lie_in_the_training_range_and_test_levels_after_it():
    def levels(spec, n=2000):
        return np.asarray(jax.jit(lambda k: spec.reset_batch(k, n)[1].level)(jax.random.key(0)))

    def make(**levels):
        return make_env("minatar/breakout", episode_statistics=False, **levels)

    train = make(num_levels=10, start_level=5)
    assert train.name == "minatar/breakout+levels10@5"
    assert set(levels(train).tolist()) == set(range(5, 15))
    start, count = held_out_levels(10, 5, 20)
    assert set(levels(make(num_levels=count, start_level=start)).tolist()) == set(range(15, 35))
    full = make(num_levels=0)
    assert full.name == "minatar/breakout+all_levels"
    drawn = levels(full)
    assert len(set(drawn.tolist())) > 1990 and drawn.min() >= 0 and drawn.max() > 2**30
    assert make_env("minatar/breakout").name == "minatar/breakout"  # no levels by default


def test_reward_modes_keep_the_dynamics_with_levels():
    dense = make_env("minatar/breakout", num_levels=5)
    zero = make_env("minatar/breakout", num_levels=5, reward="zero")
    assert zero.name == "minatar/breakout+levels5@0+zero_reward"
    actions = jax.random.randint(jax.random.key(3), (150, 4), 0, 3)
    both = jax.jit(lambda k: (rollout(dense, k, actions)[1], rollout(zero, k, actions)[1]))
    (obs, reward, _, info), (zero_obs, zero_reward, _, zero_info) = both(jax.random.key(4))
    np.testing.assert_array_equal(obs, zero_obs)
    assert np.asarray(reward).sum() > 0 and not np.asarray(zero_reward).any()
    np.testing.assert_array_equal(info["episode_return"], zero_info["episode_return"])
    np.testing.assert_array_equal(info["level"], zero_info["level"])


def test_split_of_level_ranges():
    assert held_out_levels(200, 0, 0) == (0, 0)
    assert held_out_levels(200, 0, 100) == (200, 100)
    assert held_out_levels(10, 1000, 5) == (1010, 5)
    with pytest.raises(ValueError, match="test_num_levels > 0 needs num_levels > 0"):
        held_out_levels(0, 0, 10)
    with pytest.raises(ValueError, match="test_num_levels must be >= 0, got -1"):
        held_out_levels(10, 0, -1)
    with pytest.raises(ValueError, match="exceed the int32 level seeds"):
        held_out_levels(10, FULL_DISTRIBUTION - 15, 10)
    with pytest.raises(ValueError, match="num_levels must be >= 0, got -2"):
        make_env("minatar/breakout", num_levels=-2)
    spec = with_levels(make_env("minatar/breakout", episode_statistics=False), 3, 2)
    _, state = spec.reset(jax.random.key(0))
    assert state.level.dtype == jnp.int32 and state.t.dtype == jnp.int32
