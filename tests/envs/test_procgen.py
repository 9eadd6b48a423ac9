"""envpool ProcGen behind `make_env("procgen/<game>")`: NHWC frames, same-step resets, levels."""

import dataclasses
import sys
import types

import numpy as np
import pytest

envpool = pytest.importorskip("envpool")

from tdgen.envs import held_out_levels, make_env  # noqa: E402
from tdgen.envs import procgen as procgen_module  # noqa: E402
from tdgen.envs.procgen import ProcgenSpec, load_qt  # noqa: E402

try:
    load_qt()
except ImportError as error:
    pytest.skip(str(error), allow_module_level=True)


def _rollout(spec, steps, seed=0, num_envs=2, action_seed=0):
    """(first observations, [(obs, reward, terminated, truncated, info)] per step), random actions."""
    env = spec.vector(num_envs, seed)
    rng = np.random.default_rng(action_seed)
    first = env.reset()
    rows = [env.step(rng.integers(0, spec.num_actions, num_envs)) for _ in range(steps)]
    env.close()
    return first, rows


def _level_seeds(spec, num_envs=4, steps=40):
    """Level seeds of every transition, episodes cut to 2 steps to visit many levels."""
    _, rows = _rollout(dataclasses.replace(spec, max_episode_steps=2), steps, num_envs=num_envs)
    return np.concatenate([r[4]["level_seed"] for r in rows])


def test_bigfish_gives_nhwc_uint8_frames_equal_to_envpools_channels_first_ones():
    spec = make_env("procgen/bigfish", distribution_mode="easy", num_levels=10, start_level=0)
    assert isinstance(spec, ProcgenSpec) and spec.task == "BigfishEasy-v0"
    assert spec.name == "procgen/bigfish+levels10@0"
    assert spec.observation_shape == (64, 64, 3) and spec.observation_dtype == np.uint8
    assert spec.num_actions == 15 and spec.max_episode_steps == 6000
    actions = np.random.default_rng(1).integers(0, 15, (20, 3))
    env = spec.vector(3, seed=4)
    raw = envpool.make_gymnasium("BigfishEasy-v0", num_envs=3, seed=4, num_levels=10)
    obs, raw_obs = env.reset(), raw.reset()[0]
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8 and obs.flags.c_contiguous
    np.testing.assert_array_equal(obs, raw_obs.transpose(0, 2, 3, 1))
    for action in actions:  # bigfish episodes last > 20 random steps: no resets to align
        obs, reward, terminated, truncated, info = env.step(action)
        raw_obs = raw.step(action.astype(np.int32))[0]
        np.testing.assert_array_equal(obs, raw_obs.transpose(0, 2, 3, 1))
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    assert reward.shape == (3,) and reward.dtype == np.float32
    assert terminated.dtype == truncated.dtype == np.bool_
    assert info["final_observation"].shape == obs.shape
    env.close(), raw.close()


def _envpool_reference(actions, seed):
    """envpool's own bigfish stream, one env, its delayed reset moved back one step by hand:
    after a done, one more envpool step (action ignored, elapsed_step 0) gives the new episode."""
    raw = envpool.make_gymnasium("BigfishEasy-v0", num_envs=1, seed=seed, channel_first=False)
    obs, finals, dones, scores, lengths, seeds = [raw.reset()[0][0]], [], [], [], [], []
    for action in actions:
        o, score, terminated, truncated, info = raw.step(np.array([action], np.int32))
        finals.append(o[0])
        dones.append(bool(terminated[0] or truncated[0]))
        scores.append(score[0])
        lengths.append(info["elapsed_step"][0])
        seeds.append(info["level_seed"][0])
        if dones[-1]:
            o, score, _, _, info = raw.step(np.array([0], np.int32))
            assert info["elapsed_step"][0] == 0 and score[0] == 0  # envpool's reset step
        obs.append(o[0])
    raw.close()
    return obs, finals, dones, scores, lengths, seeds


def test_the_step_that_ends_an_episode_returns_the_next_episodes_first_frame():
    actions = np.random.default_rng(2).integers(0, 15, 200)
    obs, finals, dones, scores, lengths, seeds = _envpool_reference(actions, seed=3)
    assert sum(dones) >= 2, "no two bigfish episodes ended: lengthen the rollout"
    assert len(set(seeds)) >= 3  # every episode on its own level
    env = make_env("procgen/bigfish").vector(1, seed=3)
    np.testing.assert_array_equal(env.reset()[0], obs[0])
    running = 0.0
    for t, action in enumerate(actions):
        o, reward, terminated, truncated, info = env.step(np.array([action]))
        np.testing.assert_array_equal(o[0], obs[t + 1])
        np.testing.assert_array_equal(info["final_observation"][0], finals[t])
        assert bool(terminated[0] | truncated[0]) == dones[t] and reward[0] == scores[t]
        assert info["level_seed"][0] == seeds[t]  # the level of the episode the step ended
        running += scores[t]
        if dones[t]:
            assert not np.array_equal(o[0], info["final_observation"][0])
            assert info["episode_length"][0] == lengths[t]
            assert info["episode_return"][0] == pytest.approx(running)
            running = 0.0
    env.close()


def test_one_level_and_a_time_limit_restart_the_same_level_every_episode():
    spec = make_env("procgen/bigfish", num_levels=1, start_level=7, max_steps_in_episode=5)
    assert spec.max_episode_steps == 5
    first, rows = _rollout(spec, 12, num_envs=3)
    truncated = np.array([r[3] for r in rows])
    np.testing.assert_array_equal(truncated[:, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0])
    assert not np.array([r[2] for r in rows]).any()
    for t in (4, 9):
        np.testing.assert_array_equal(rows[t][0], first)  # level 7's first frame again
        np.testing.assert_array_equal(rows[t][4]["episode_length"], [5, 5, 5])
    np.testing.assert_array_equal(first, np.broadcast_to(first[0], first.shape))
    assert (np.array([r[4]["level_seed"] for r in rows]) == 7).all()


def test_same_seed_same_observations():
    spec = make_env("procgen/chaser", num_levels=10)
    a, b, c = (_rollout(spec, 200, seed=s)[1] for s in (5, 5, 6))
    assert any((r[2] | r[3]).any() for r in a), "no episode ended: lengthen the rollout"
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x[:4], y[:4], strict=True):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(x[4]["level_seed"], y[4]["level_seed"])
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_train_and_test_levels_are_disjoint_ranges_and_the_full_distribution_is_wide():
    train = _level_seeds(make_env("procgen/bigfish", num_levels=10, start_level=5))
    start, count = held_out_levels(10, 5, 20)
    assert (start, count) == (15, 20)
    test = _level_seeds(make_env("procgen/bigfish", num_levels=count, start_level=start))
    assert set(train) <= set(range(5, 15)) and len(set(train)) == 10
    assert set(test) <= set(range(15, 35)) and len(set(test)) > 10
    assert held_out_levels(10, 5, 0) == (0, 0)  # the full distribution
    full = _level_seeds(make_env("procgen/bigfish", num_levels=0))
    assert len(set(full)) > 50 and full.max() > 2**20


def test_zero_and_sparse_rewards_keep_the_dynamics_and_the_game_score():
    dense = _rollout(make_env("procgen/fruitbot"), 40)[1]  # fruitbot scores within ~10 steps
    zero = _rollout(make_env("procgen/fruitbot", reward="zero"), 40)[1]
    never = _rollout(make_env("procgen/fruitbot", reward="sparse", keep_prob=0.0), 40)[1]
    always = _rollout(make_env("procgen/fruitbot", reward="sparse", keep_prob=1.0), 40)[1]
    assert make_env("procgen/fruitbot", reward="zero").name == "procgen/fruitbot+zero_reward"
    assert any(np.any(r[1] != 0) for r in dense), "no reward to zero: lengthen the rollout"
    for d, z, n, a in zip(dense, zero, never, always, strict=True):
        np.testing.assert_array_equal(d[0], z[0])  # same states
        assert not np.any(z[1]) and not np.any(n[1])
        np.testing.assert_array_equal(a[1], d[1])
        np.testing.assert_array_equal(z[4]["score"], d[1])
        np.testing.assert_array_equal(z[4]["episode_return"], d[4]["episode_return"])


def test_send_then_recv_is_step():
    spec = make_env("procgen/bigfish")
    a, b = spec.vector(2, 1), spec.vector(2, 1)
    a.reset(), b.reset()
    for action in ([0, 1], [2, 3], [14, 5]):
        stepped = a.step(np.array(action))
        b.send(np.array(action))
        received = b.recv()
        for x, y in zip(stepped[:4], received[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    a.close(), b.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distribution_mode": "extreme"}, "unknown distribution_mode 'extreme': choose one of"),
        ({"num_levels": -1}, "num_levels must be >= 0, got -1"),
        ({"num_levels": 10, "start_level": -3}, "start_level must be >= 0, got -3"),
        ({"start_level": 4}, "start_level=4 needs num_levels"),
    ],
)
def test_bad_level_arguments_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as error:
        make_env("procgen/bigfish", **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_time_limit_beyond_the_games_timeout_is_refused():
    assert make_env("procgen/maze").max_episode_steps == 500
    with pytest.raises(ValueError, match=r"must be in \[1, 500\] \(maze's own timeout\), got 501"):
        make_env("procgen/maze", max_steps_in_episode=501)
    spec = dataclasses.replace(make_env("procgen/maze"), max_episode_steps=501)
    with pytest.raises(ValueError, match="exceeds maze's own timeout of 500 steps"):
        spec.vector(1, 0)


def test_missing_qt_wheel_names_the_extra(monkeypatch):
    broken = types.ModuleType("envpool.procgen")

    def missing(name):
        raise ImportError("libQt5Gui.so.5: cannot open shared object file")

    def no_wheel(name):
        raise procgen_module.importlib.metadata.PackageNotFoundError(name)

    broken.__getattr__ = missing
    monkeypatch.setitem(sys.modules, "envpool.procgen", broken)
    monkeypatch.setattr(envpool, "procgen", broken)
    monkeypatch.setattr(procgen_module.importlib.metadata, "distribution", no_wheel)
    with pytest.raises(
        ImportError, match=r"needs pyqt5-qt5 \(Qt 5\): pip install 'tdgen\[procgen\]'"
    ):
        load_qt.__wrapped__()
