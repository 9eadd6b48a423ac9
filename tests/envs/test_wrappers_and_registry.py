import sys

import jax
import numpy as np
import pytest

from tdgen.envs import make_env, parse_env_name, random_actions


def trajectory(spec, seed=0, num_envs=4, num_steps=300):
    def _env_step(carry, key):
        obs, state = carry
        k_act, k_step = jax.random.split(key)
        obs, state, reward, done, info = spec.step_batch(
            k_step, state, random_actions(k_act, spec, num_envs)
        )
        return (obs, state), (obs, reward, info["episode_return"])

    key = jax.random.key(seed)
    carry = spec.reset_batch(key, num_envs)
    return jax.jit(lambda c: jax.lax.scan(_env_step, c, jax.random.split(key, num_steps))[1])(carry)


@pytest.fixture(scope="module")
def dense():
    return trajectory(make_env("minatar/breakout"))


def test_zero_reward_wrapper_zeroes_rewards_and_keeps_dynamics(dense):
    obs, reward, episode_return = trajectory(make_env("minatar/breakout", reward="zero"))
    assert np.asarray(dense[1]).sum() > 0
    assert not np.asarray(reward).any()
    np.testing.assert_array_equal(obs, dense[0])
    np.testing.assert_array_equal(episode_return, dense[2])  # statistics keep the game score


def test_sparse_reward_wrapper_keeps_a_fraction(dense):
    obs, half, _ = trajectory(make_env("minatar/breakout", reward="sparse", keep_prob=0.5))
    np.testing.assert_array_equal(obs, dense[0])
    kept, given = np.asarray(half).sum(), np.asarray(dense[1]).sum()
    assert 0 < kept < given
    # every reward kept is the reward the game gave at that step
    np.testing.assert_array_equal(np.where(np.asarray(half) != 0, dense[1], 0), half)


def test_reward_wrapper_names_and_bad_arguments():
    assert make_env("minatar/asterix", reward="zero").name == "minatar/asterix+zero_reward"
    with pytest.raises(ValueError, match="unknown reward mode 'none': choose one of dense, zero"):
        make_env("minatar/asterix", reward="none")
    with pytest.raises(ValueError, match=r"keep_prob must be in \[0, 1\]"):
        make_env("minatar/asterix", reward="sparse", keep_prob=2.0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "minatar/brakout",
            "unknown environment 'minatar/brakout': did you mean 'minatar/breakout'?",
        ),
        ("Brakout", "unknown environment 'Brakout': did you mean 'minatar/breakout'?"),
        ("procgen/bigfsh", "did you mean 'procgen/bigfish'?"),
        ("atari/pong", "did you mean 'atari/Pong'?"),
        ("minatar", "name a game too, e.g. 'minatar/breakout'"),
        ("foo/bar", "choose minatar/<game>"),
    ],
)
def test_unknown_environment_names_suggest_a_fix(name, message):
    with pytest.raises(ValueError) as error:
        make_env(name)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_names_parse_into_suite_and_game():
    assert parse_env_name("minatar/space_invaders") == ("minatar", "space_invaders")
    assert parse_env_name("atari/MontezumaRevenge") == ("atari", "MontezumaRevenge")
    assert parse_env_name("procgen/heist") == ("procgen", "heist")


@pytest.mark.parametrize(
    ("name", "extra"), [("atari/Pong", "atari"), ("procgen/bigfish", "procgen")]
)
def test_envpool_suites_without_envpool_name_the_extra(monkeypatch, name, extra):
    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool -> ImportError
    with pytest.raises(ImportError, match=rf"needs envpool: pip install 'tdgen\[{extra}\]'"):
        make_env(name)
