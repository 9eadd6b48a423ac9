import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.envs import MINATAR_GAMES, make_env, random_actions

NUM_ACTIONS = {"asterix": 5, "breakout": 3, "freeway": 3, "space_invaders": 4}
CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "space_invaders": 6}


def rollout(spec, key, num_envs, num_steps):
    """Random-action rollout; returns the stacked (obs, reward, done, info) per step."""

    def _env_step(carry, key):
        obs, state = carry
        k_act, k_step = jax.random.split(key)
        action = random_actions(k_act, spec, num_envs)
        obs, state, reward, done, info = spec.step_batch(k_step, state, action)
        return (obs, state), (obs, reward, done, info)

    k_reset, k_run = jax.random.split(key)
    carry = spec.reset_batch(k_reset, num_envs)
    _, out = jax.lax.scan(_env_step, carry, jax.random.split(k_run, num_steps))
    return out


@pytest.mark.parametrize("game", sorted(MINATAR_GAMES))
def test_reset_and_step_shapes_and_dtypes(game):
    spec = make_env(f"minatar/{game}")
    assert spec.num_actions == NUM_ACTIONS[game]
    assert spec.observation_shape == (10, 10, CHANNELS[game])
    # traced, not compiled, to keep the test fast; test_same_key_same_trajectory runs a real step
    obs, state = jax.eval_shape(lambda k: spec.reset_batch(k, 3), jax.random.key(0))
    assert obs.shape == (3, *spec.observation_shape) and obs.dtype == spec.observation_dtype
    obs, state, reward, done, info = jax.eval_shape(
        spec.step_batch, jax.random.key(1), state, jnp.zeros(3, jnp.int32)
    )
    assert obs.shape == (3, *spec.observation_shape)
    assert reward.shape == (3,) and reward.dtype == jnp.float32
    assert done.shape == (3,) and done.dtype == jnp.bool_
    assert info["terminated"].dtype == jnp.bool_ and info["truncated"].dtype == jnp.bool_
    assert info["final_observation"].shape == obs.shape
    assert info["episode_return"].dtype == jnp.float32


def test_auto_reset_at_the_time_limit():
    spec = make_env("minatar/breakout", max_steps_in_episode=5)  # the ball needs > 5 steps to fall
    obs, reward, done, info = jax.jit(lambda k: rollout(spec, k, 2, 12))(jax.random.key(0))
    np.testing.assert_array_equal(
        done[:, 0], [False] * 4 + [True] + [False] * 4 + [True] + [False] * 2
    )
    assert bool(info["truncated"][4].all()) and not bool(info["terminated"][4].any())
    np.testing.assert_array_equal(info["episode_length"][4], [5, 5])
    # after the reset the paddle is back where a fresh episode starts it
    fresh, _ = spec.reset(jax.random.key(3))
    np.testing.assert_array_equal(obs[4, 0, ..., 0], fresh[..., 0])


def test_same_key_same_trajectory():
    spec = make_env("minatar/breakout")
    run = jax.jit(lambda k: rollout(spec, k, 2, 60))
    a, b, c = run(jax.random.key(5)), run(jax.random.key(5)), run(jax.random.key(6))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_episode_return_is_the_sum_of_rewards_since_the_last_reset():
    spec = make_env("minatar/breakout")
    _, reward, done, info = jax.jit(lambda k: rollout(spec, k, 4, 300))(jax.random.key(0))
    reward, done = np.asarray(reward), np.asarray(done)
    assert done.any(), "no episode ended in 300 random breakout steps"
    for env in range(4):
        running = 0.0
        for t in range(300):
            running += reward[t, env]
            assert info["episode_return"][t, env] == pytest.approx(running)
            if done[t, env]:
                running = 0.0
