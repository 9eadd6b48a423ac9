"""PPO and DAAC losses against hand computations: GAE, clipping, value clipping, entropy, DAAC."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.agents.actor_critic.config import DAACConfig, PPOConfig
from tdgen.agents.actor_critic.daac import DAAC, advantage_loss, value_update_due
from tdgen.losses.policy import (
    categorical_entropy,
    clipped_surrogate,
    clipped_value_loss,
    gae,
    log_prob,
)


def test_gae_matches_a_hand_computed_example():
    # One environment, three steps, an episode end after step 1; gamma 0.9, lambda 0.5.
    reward = jnp.array([[1.0], [2.0], [3.0]])
    value = jnp.array([[0.5], [1.0], [2.0]])
    done = jnp.array([[False], [True], [False]])
    last_value = jnp.array([4.0])
    adv, ret = gae(reward, value, done, last_value, gamma=0.9, lam=0.5)
    # Step 2: delta = 3 + 0.9 * 4 - 2 = 4.6; advantage 4.6.
    # Step 1: the episode ends: delta = 2 - 1 = 1; no carry from step 2: advantage 1.
    # Step 0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4; advantage = 1.4 + 0.9 * 0.5 * 1 = 1.85.
    np.testing.assert_allclose(adv[:, 0], [1.85, 1.0, 4.6], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [2.35, 2.0, 6.6], rtol=1e-6)


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    reward = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    value = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    done = jnp.zeros((6, 2), bool)
    last = jnp.asarray(rng.normal(size=2), jnp.float32)
    adv, _ = gae(reward, value, done, last, gamma=0.95, lam=1.0)
    expected = np.zeros((6, 2))
    g = np.asarray(last, np.float64)
    for t in reversed(range(6)):
        g = np.asarray(reward[t]) + 0.95 * g
        expected[t] = g - np.asarray(value[t])
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)


def test_clipped_surrogate_clips_the_ratio_in_the_direction_of_the_advantage():
    logp_old = jnp.log(jnp.array([0.5, 0.5, 0.5, 0.5]))
    # ratios 1.5, 1.5, 0.5, 0.5 with advantages +1, -1, +1, -1
    logp = jnp.log(jnp.array([0.75, 0.75, 0.25, 0.25]))
    advantage = jnp.array([1.0, -1.0, 1.0, -1.0])
    loss, stats = clipped_surrogate(logp, logp_old, advantage, clip=0.2)
    # min(r A, clip(r) A): +1 at r=1.5 -> 1.2; -1 at 1.5 -> -1.5; +1 at 0.5 -> 0.5; -1 at 0.5 -> -0.8
    np.testing.assert_allclose(loss, -np.mean([1.2, -1.5, 0.5, -0.8]), rtol=1e-6)
    assert float(stats["clipfrac"]) == 1.0
    # Gradient: zero where clipping binds (A>0, r>1+eps and A<0, r<1-eps), nonzero elsewhere.
    grad = jax.grad(lambda lp: clipped_surrogate(lp, logp_old, advantage, 0.2)[0])(logp)
    assert grad[0] == 0.0 and grad[3] == 0.0
    assert grad[1] != 0.0 and grad[2] != 0.0


def test_clipped_value_loss_takes_the_pessimistic_branch():
    v_old, target = jnp.array([0.0]), jnp.array([1.0])
    # V moved 0 -> 0.5 toward the target: clipped to 0.2, whose error is larger.
    np.testing.assert_allclose(
        clipped_value_loss(jnp.array([0.5]), v_old, target, 0.2, True), 0.5 * 0.8**2
    )
    np.testing.assert_allclose(
        clipped_value_loss(jnp.array([0.5]), v_old, target, 0.2, False), 0.5 * 0.5**2
    )


def test_entropy_and_log_prob():
    logits = jnp.log(jnp.array([[0.25, 0.25, 0.5]]))
    np.testing.assert_allclose(
        categorical_entropy(logits), [-(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5))], rtol=1e-6
    )
    np.testing.assert_allclose(log_prob(logits, jnp.array([2])), [np.log(0.5)], rtol=1e-6)


def _daac(**overrides):
    config = DAACConfig.minatar(num_envs=4, num_steps=8, num_minibatches=2, probe_k=16, **overrides)
    return DAAC.build(config, (10, 10, 4), 3)


def test_daac_advantage_head_reads_the_action_and_its_loss_weight():
    daac = _daac(adv_loss_coef=0.25, ent_coef=0.0)
    obs = jnp.asarray(np.random.default_rng(0).integers(0, 2, (5, 10, 10, 4)), jnp.float32)
    params, _, _ = daac.init(jax.random.PRNGKey(0), obs[:1])
    every = daac.policy_network.apply(params["policy"], obs)["advantage"]
    assert every.shape == (5, 3)
    action = jnp.array([0, 1, 2, 1, 0])
    chosen = daac.policy_network.apply(params["policy"], obs, action)["advantage"]
    np.testing.assert_allclose(chosen, every[jnp.arange(5), action], rtol=1e-5, atol=1e-6)
    # With zero advantages the surrogate is 0: the loss is 0.25 * mean(A(s, a)^2).
    logits = daac.policy_network.apply(params["policy"], obs)["policy"]
    batch = {"obs": obs, "action": action, "logprob": log_prob(logits, action),
             "advantage": jnp.zeros(5)}  # fmt: skip
    loss, stats = daac.policy_loss(params["policy"], batch)
    np.testing.assert_allclose(loss, 0.25 * np.mean(np.square(chosen)), rtol=1e-5)
    np.testing.assert_allclose(stats["advantage_loss"], advantage_loss(chosen, 0.0), rtol=1e-6)


def test_daac_value_network_trains_every_value_freq_iterations_only():
    assert [bool(value_update_due(jnp.int32(i), 3)) for i in range(7)] == [
        True, False, False, True, False, False, True,
    ]  # fmt: skip
    daac = _daac(value_freq=2, value_epochs=2)
    rng = np.random.default_rng(1)
    n = 32
    obs = jnp.asarray(rng.integers(0, 2, (n, 10, 10, 4)), jnp.float32)
    params, opt_state, memory = daac.init(jax.random.PRNGKey(0), obs[:1])
    logits, value = daac.policy_value(params, obs)
    action = jnp.asarray(rng.integers(0, 3, n))
    data = {"obs": obs, "action": action, "logprob": log_prob(logits, action), "value": value,
            "advantage": jnp.asarray(rng.normal(size=n), jnp.float32),
            "return": jnp.asarray(rng.normal(size=n), jnp.float32)}  # fmt: skip
    key = jax.random.PRNGKey(1)
    skipped, _, _, stats, _ = daac.update(params, opt_state, memory, data, key, jnp.int32(1))
    trained, _, _, stats_trained, _ = daac.update(params, opt_state, memory, data, key,
                                                  jnp.int32(2))  # fmt: skip
    same = jax.tree.map(np.array_equal, skipped["value"], params["value"])
    assert all(jax.tree.leaves(same)), "the value network must not move off its schedule"
    assert np.isnan(stats["value_loss"]) and np.isfinite(stats_trained["value_loss"])
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), trained["value"], params["value"])
    assert any(jax.tree.leaves(moved))
    # The policy network trains in both.
    assert any(
        jax.tree.leaves(
            jax.tree.map(lambda a, b: not np.array_equal(a, b), skipped["policy"], params["policy"])
        )  # fmt: skip
    )


def test_configs_validate_and_presets_cite_their_numbers():
    ppo = PPOConfig.procgen()
    assert (ppo.num_envs, ppo.num_steps, ppo.num_minibatches, ppo.lr, ppo.eps) == (
        64, 256, 8, 5e-4, 1e-5,
    )  # fmt: skip
    assert (ppo.gamma, ppo.gae_lambda, ppo.clip_coef, ppo.ent_coef, ppo.encoder) == (
        0.999, 0.95, 0.2, 0.01, "impala",
    )  # fmt: skip
    daac = DAACConfig.procgen()
    assert (daac.epochs, daac.value_epochs, daac.value_freq, daac.adv_loss_coef) == (1, 9, 1, 0.25)
    assert (
        PPOConfig.minatar(num_envs=4, num_steps=8, probe_k=16).log_period == 32  # every iteration
    )  # 0 = every iteration
    with pytest.raises(ValueError, match="frames"):
        PPOConfig.minatar(num_envs=4, num_steps=8, probe_k=16, frames=100)
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig.minatar(num_envs=4, num_steps=8, num_minibatches=5, log_every=32, frames=32,
                          eval_every=0, probe_every=0, checkpoint_every=0)  # fmt: skip
    with pytest.raises(ValueError, match="unknown preset"):
        PPOConfig.preset("atari")
    with pytest.raises(ValueError, match="value_freq"):
        DAACConfig.minatar(value_freq=0)
