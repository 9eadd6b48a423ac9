"""The shared loop: epsilon schedule, target-network period, the no-reward control, configs."""

import jax
import numpy as np
import pytest

from tdgen.agents import C51Config, DQNConfig, build_agent, epsilon_at


def test_epsilon_schedule_dopamine_linear_decay():
    config = DQNConfig.minatar(learning_starts=1_000, epsilon_decay_frames=4_000, epsilon_end=0.1)
    frames = np.array([0, 1_000, 2_000, 3_000, 5_000, 100_000])
    got = np.asarray(epsilon_at(config, frames))
    np.testing.assert_allclose(got, [1.0, 1.0, 0.775, 0.55, 0.1, 0.1], atol=1e-6)


def test_target_params_change_exactly_at_multiples_of_the_period(make_config):
    tiny = make_config
    config = tiny(
        learning_starts=8,
        target_period=16,
        train_every=2,
        num_envs=2,
        buffer_size=200,
        batch_size=4,
        log_every=2,
        probe_every=0,
        checkpoint_every=0,
        frames=80,
    )
    agent = build_agent("dqn", config)
    step = jax.jit(lambda s: agent.segment(s, 1))
    state = agent.init()
    copies = []
    for _ in range(40):
        before = state.target_params
        state = step(state)
        changed = any(
            not np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(before), jax.tree.leaves(state.target_params), strict=True
            )
        )
        if changed:
            copies.append(int(state.frames))
            for a, b in zip(
                jax.tree.leaves(state.params), jax.tree.leaves(state.target_params), strict=True
            ):
                np.testing.assert_array_equal(a, b)
    assert copies == [16, 32, 48, 64, 80]


def test_zero_reward_control_stores_zero_rewards_on_the_same_states(make_config):
    tiny = make_config
    dense = build_agent("dqn", tiny(learning_starts=10_000, probe_every=0, checkpoint_every=0))
    zero = build_agent(
        "dqn", tiny(reward="zero", learning_starts=10_000, probe_every=0, checkpoint_every=0)
    )
    s_dense = jax.jit(lambda s: dense.segment(s, 150))(dense.init())
    s_zero = jax.jit(lambda s: zero.segment(s, 150))(zero.init())
    # same actions, dynamics and terminals; only the rewards differ
    np.testing.assert_array_equal(s_dense.replay.obs, s_zero.replay.obs)
    np.testing.assert_array_equal(s_dense.replay.terminated, s_zero.replay.terminated)
    assert np.asarray(s_dense.replay.reward).sum() > 0
    np.testing.assert_array_equal(s_zero.replay.reward, 0.0)
    # so the TD target is discount * max Q(x') alone: zero for a zero target network
    params = s_zero.params
    zeros = jax.tree.map(np.zeros_like, params)
    batch = {
        k: getattr(s_zero.replay, k)[:8, 0]
        for k in ("obs", "action", "reward", "next_obs", "terminated")
    }
    q = np.asarray(zero.apply(params, batch["obs"]))
    q_taken = q[np.arange(8), np.asarray(batch["action"])]
    expected = np.mean(0.5 * q_taken**2)  # mse against a target of exactly 0
    np.testing.assert_allclose(zero.batch_loss(params, zeros, batch), expected, rtol=1e-6)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="num_envs"):
        DQNConfig(target_period=1_001, num_envs=4)
    with pytest.raises(ValueError, match="loss"):
        DQNConfig(loss="l1")
    with pytest.raises(ValueError, match="vmax"):
        C51Config(vmax=-1.0)
    with pytest.raises(ValueError, match="optimizer"):
        DQNConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="unknown preset"):
        DQNConfig.preset("atari100k")


def test_presets_cite_and_differ_only_where_the_algorithm_does():
    dqn, c51 = DQNConfig.minatar(), C51Config.minatar()
    assert (dqn.lr, dqn.eps, dqn.target_period, dqn.buffer_size) == (
        2.5e-4,
        3.125e-4,
        1000,
        100_000,
    )
    assert c51.vmax == 100.0 and dqn.loss == "mse"
    tandem = DQNConfig.tandem()
    assert tandem.optimizer == "rmsprop" and tandem.centered and tandem.target_period == 120_000
    assert tandem.encoder == "minatar" and DQNConfig.nature().encoder == "nature"
    assert DQNConfig.dopamine().lr == 6.25e-5 and C51Config.dopamine().vmax == 10.0
    assert DQNConfig.preset("tandem", env="minatar/asterix").env == "minatar/asterix"
    for name in ("minatar", "nature", "dopamine", "tandem"):
        assert getattr(DQNConfig, name).__doc__


def test_unknown_environment_error_comes_from_make_env(make_config):
    tiny = make_config
    with pytest.raises(ValueError, match="did you mean 'minatar/breakout'"):
        build_agent("dqn", tiny(env="minatar/brakout"))


@pytest.mark.slow  # three short compiled segments
@pytest.mark.parametrize(("train_every", "expected"), [(8, 4), (4, 8), (2, 16)])
def test_updates_per_frame_follow_train_every_below_and_above_the_env_count(
    make_config, train_every, expected
):
    """4 environments, 10 iterations (40 frames), learning after frame 8: an update every
    train_every frames of the 32 that learn, several per iteration when train_every < 4."""
    config = make_config(learning_starts=8, train_every=train_every, num_envs=4, buffer_size=200,
                         batch_size=4, target_period=16, log_every=4, probe_every=0,
                         checkpoint_every=0, frames=40)  # fmt: skip
    agent = build_agent("dqn", config)
    state = jax.jit(lambda s: agent.segment(s, 10))(agent.init())
    assert int(state.frames) == 40 and int(state.updates) == expected
