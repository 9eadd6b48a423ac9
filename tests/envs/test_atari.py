"""envpool Atari behind `make_env("atari/<Game>")`: NHWC uint8 stacks, resets, reward modes."""

import dataclasses

import numpy as np
import pytest

envpool = pytest.importorskip("envpool")

from tdgen.envs import make_env  # noqa: E402
from tdgen.envs.atari import AtariSpec, emulator_frames  # noqa: E402
from tdgen.envs.wrappers import host_reward_mode  # noqa: E402


def _rollout(spec, steps, seed=0, num_envs=2):
    env = spec.vector(num_envs, seed)
    rng = np.random.default_rng(0)
    rows = [(env.reset(),)]
    for _ in range(steps):
        rows.append(env.step(rng.integers(0, spec.num_actions, num_envs)))
    env.close()
    return rows


@pytest.mark.parametrize(("game", "actions"), [("Pong", 6), ("Breakout", 4)])
def test_games_give_nhwc_uint8_frame_stacks_and_step(game, actions):
    spec = make_env(f"atari/{game}")
    assert isinstance(spec, AtariSpec)
    assert spec.observation_shape == (84, 84, 4) and spec.observation_dtype == np.uint8
    assert spec.num_actions == actions
    env = spec.vector(2, seed=3)
    obs = env.reset()
    assert obs.shape == (2, 84, 84, 4) and obs.dtype == np.uint8 and obs.flags.c_contiguous
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.int32))
    assert obs.shape == (2, 84, 84, 4) and obs.dtype == np.uint8
    assert reward.shape == (2,) and reward.dtype == np.float32
    assert terminated.dtype == truncated.dtype == np.bool_
    assert not info["reset_step"].any()
    # The same pixels envpool gives channels-first: the newest frame is the last channel.
    raw = envpool.make(f"{game}-v5", env_type="gymnasium", num_envs=2, seed=3,
                       episodic_life=False, reward_clip=False)  # fmt: skip
    raw.reset()
    raw_obs = raw.step(np.zeros(2, np.int32))[0]
    np.testing.assert_array_equal(obs, raw_obs.transpose(0, 2, 3, 1))
    assert emulator_frames(10) == 40


def test_time_limit_truncates_then_auto_resets_on_the_next_step():
    spec = dataclasses.replace(make_env("atari/Breakout"), max_episode_steps=5)
    rows = _rollout(spec, 7)
    truncated = np.array([r[3] for r in rows[1:]])
    reset_step = np.array([r[4]["reset_step"] for r in rows[1:]])
    assert truncated[4].all() and not truncated[[0, 1, 2, 3, 5, 6]].any()
    assert reset_step[5].all() and not reset_step[[0, 1, 2, 3, 4, 6]].any()
    np.testing.assert_array_equal(rows[5][4]["episode_length"], [5, 5])


def test_send_then_recv_is_step():
    spec = make_env("atari/Pong")
    a, b = spec.vector(2, 1), spec.vector(2, 1)
    a.reset(), b.reset()
    for action in ([0, 1], [2, 3], [1, 1]):
        stepped = a.step(np.array(action))
        b.send(np.array(action))
        received = b.recv()
        for x, y in zip(stepped[:4], received[:4], strict=True):
            np.testing.assert_array_equal(x, y)


def test_zero_and_sparse_rewards_keep_the_dynamics_and_the_game_score():
    steps = 40  # Boxing scores within ~10 random steps
    dense = _rollout(make_env("atari/Boxing"), steps)
    zero = _rollout(make_env("atari/Boxing", reward="zero"), steps)
    never = _rollout(make_env("atari/Boxing", reward="sparse", keep_prob=0.0), steps)
    always = _rollout(make_env("atari/Boxing", reward="sparse", keep_prob=1.0), steps)
    assert make_env("atari/Boxing", reward="zero").name == "atari/Boxing+zero_reward"
    assert any(np.any(r[1] != 0) for r in dense[1:]), "no reward to zero: lengthen the rollout"
    for d, z, n, a in zip(dense[1:], zero[1:], never[1:], always[1:], strict=True):
        np.testing.assert_array_equal(d[0], z[0])  # same states
        assert not np.any(z[1]) and not np.any(n[1])
        np.testing.assert_array_equal(a[1], d[1])
        np.testing.assert_array_equal(z[4]["score"], d[1])  # the game's score is still there
        np.testing.assert_array_equal(z[4]["episode_return"], d[4]["episode_return"])


def test_sparse_rewards_keep_about_keep_prob_of_them_reproducibly():
    spec = make_env("atari/Boxing", reward="sparse", keep_prob=0.3)
    env, again = spec.vector(1, seed=5), spec.vector(1, seed=5)
    scores = np.ones(10_000, np.float32)  # the mask on many rewards at once

    def mask(e):  # the reward mode exactly as the environment applies it at its current step
        return host_reward_mode(scores, e.spec.reward, e.spec.keep_prob, e.seed, e._steps)

    kept = mask(env)
    np.testing.assert_array_equal(kept, mask(again))
    assert set(np.unique(kept)) == {0.0, 1.0} and abs(kept.mean() - 0.3) < 0.02
    env.close(), again.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("atari/Brakout", "did you mean 'atari/Breakout'"),
        ("atari/pong", "did you mean 'atari/Pong'"),
        ("atari/Xyzzyplugh", "unknown environment 'atari/Xyzzyplugh'"),
    ],
)
def test_bad_game_names_are_refused_with_a_suggestion(name, message):
    with pytest.raises(ValueError, match=message):
        make_env(name)


def test_bad_reward_mode_is_refused():
    with pytest.raises(ValueError, match="unknown reward mode 'none'"):
        make_env("atari/Pong", reward="none")
