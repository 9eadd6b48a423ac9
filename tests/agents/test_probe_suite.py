"""The learning-dynamics suite in every family's probe: names, values against the measures
themselves, probe files, the config field, and old runs' configs."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.agents import (
    DAACConfig,
    PPOConfig,
    build_agent,
    make_actor_critic_probe,
    make_value_probe,
)
from tdgen.agents.actor_critic.agent import flat_batch
from tdgen.agents.value_based.c51 import C51Config
from tdgen.agents.value_based.dqn import DQNConfig
from tdgen.agents.value_based.qrdqn import QRDQNConfig
from tdgen.interference import active_units, capture_activations, parameter_norms
from tdgen.losses.policy import log_prob
from tdgen.runs.config import DEFAULT_PROBE_MEASURES

pytestmark = pytest.mark.slow

VALUE_BASED = dict(
    frames=800, num_envs=4, buffer_size=2_000, batch_size=16, learning_starts=100,
    train_every=4, target_period=200, epsilon_decay_frames=400, log_every=200,
    probe_every=400, probe_k=16, checkpoint_every=400, encoder="minatar",
)  # fmt: skip
ACTOR_CRITIC = dict(
    num_envs=4, num_steps=16, frames=512, num_minibatches=2, probe_every=256, probe_k=16,
    checkpoint_every=128, encoder="mlp", hidden_size=32,
)  # fmt: skip


@pytest.mark.parametrize(("kind", "cls"), [("dqn", DQNConfig), ("c51", C51Config),
                                           ("qrdqn", QRDQNConfig)])  # fmt: skip
def test_value_probes_log_the_default_suite_as_the_measures_compute_it(kind, cls, tmp_path):
    extra = {"num_atoms": 11} if kind == "c51" else {}
    config = cls.minatar(**VALUE_BASED, probe_draws=2, **extra)
    assert config.probe_measures == DEFAULT_PROBE_MEASURES
    agent = build_agent(kind, config)
    state = jax.jit(lambda s: agent.segment(s, 30))(agent.init())
    result = make_value_probe(agent)(state)
    metrics = result.metrics()
    for name in ("dynamics/dormant_0.025", "dynamics/active", "dynamics/param_norm",
                 "dynamics/grad_norm", "dynamics/churn", "perf/dynamics_seconds",
                 "interference/update_rank", "interference/update_rank_random"):  # fmt: skip
        assert name in metrics, (name, sorted(metrics))
    assert "dynamics/feature_srank/encoder/Dense_0" in metrics
    assert all(np.isfinite(v) for v in metrics.values())
    # the parameter norm is that of the trained parameters; churn a fraction of k
    expected = float(parameter_norms(state.params)["param_norm"])
    np.testing.assert_allclose(metrics["dynamics/param_norm"], expected, rtol=1e-6)
    assert 0 <= metrics["dynamics/churn"] <= 1
    assert 32 * metrics["dynamics/churn"] == round(32 * metrics["dynamics/churn"])  # 2 draws, k=16
    # the unit measures read the drawn transitions: the mean over the two draws, recomputed
    obs = state.replay.obs.reshape(-1, *state.replay.obs.shape[2:])[result.indices]
    want = []
    for draw in obs:
        acts = capture_activations(agent.network, state.params, draw.astype(np.float32))
        want.append(float(active_units(acts)["active"]))
    np.testing.assert_allclose(metrics["dynamics/active"], np.mean(want), rtol=1e-6)
    path = result.save(tmp_path)
    with np.load(path) as saved:
        assert float(saved["dynamics/grad_norm"]) == metrics["dynamics/grad_norm"]
        assert "perf/dynamics_seconds" not in saved  # wall clock stays out of the probe file
        np.testing.assert_array_equal(saved["update_matrix"], result.matrices[""])
    again = make_value_probe(agent)(state)
    assert again.measures() == result.measures()  # a function of the state alone


def drawn_samples(agent, state, rollout, result):
    """Each draw's rollout samples as the actor-critic draw gives them to the suite: log-probs
    and values recomputed under the probed parameters."""
    data = flat_batch(rollout)
    for idx in result.indices:
        sample = jax.tree.map(lambda x, idx=idx: x[idx], data)
        logits, value = agent.algorithm.policy_value(state.params, sample["obs"])
        yield {**sample, "logprob": log_prob(logits, sample["action"]), "value": value}


def plain_step(target):
    """(params, opt_state, sample) -> (||grad||, churn): one step of the target's optimiser on
    the mean per-sample loss; churn is the mean total variation of softmax(apply_fn) it causes."""

    @jax.jit
    def step(params, opt_state, sample):
        loss = jax.vmap(target.loss_fn, (None, 0))
        grads = jax.grad(lambda p: jnp.mean(loss(p, sample)))(params)
        stepped = optax.apply_updates(params, target.optimizer.update(grads, opt_state, params)[0])
        before, after = (
            jax.nn.softmax(target.apply_fn(p, sample["obs"])) for p in (params, stepped)
        )
        return optax.tree.norm(grads), jnp.mean(0.5 * jnp.abs(after - before).sum(-1))

    return lambda *args: np.asarray(step(*args), np.float64)


@pytest.mark.parametrize(("kind", "cls"), [("ppo", PPOConfig), ("daac", DAACConfig)])
def test_actor_critic_probes_log_the_suite_per_network(kind, cls):
    config = cls.minatar(**ACTOR_CRITIC, probe_measures="dormant,param_norm,grad_norm,churn")
    agent = build_agent(kind, config)
    state, rollout = jax.jit(lambda s: agent.segment(s, 2))(agent.init())
    result = make_actor_critic_probe(agent)(state, rollout)
    metrics = result.metrics()
    assert "dynamics/actor/churn" in metrics and "dynamics/critic/churn" not in metrics  # V: none
    for network in ("actor", "critic"):
        assert f"dynamics/{network}/dormant_0.025" in metrics
        assert np.isfinite(metrics[f"dynamics/{network}/grad_norm"])
    assert 0 <= metrics["dynamics/actor/churn"] <= 1  # a total-variation distance
    targets = agent.algorithm.probe_targets()
    for network in ("actor", "critic"):
        params, opt_state = targets[network].select(state.params, state.opt_state)
        expected = float(parameter_norms(params)["param_norm"])
        np.testing.assert_allclose(metrics[f"dynamics/{network}/param_norm"], expected, rtol=1e-6)
        # the gradient norm and (actor) churn of one step on each draw's samples, by hand
        step, samples = plain_step(targets[network]), drawn_samples(agent, state, rollout, result)
        want = np.mean([step(params, opt_state, sample) for sample in samples], axis=0)
        np.testing.assert_allclose(metrics[f"dynamics/{network}/grad_norm"], want[0], rtol=1e-5)
        if network == "actor":
            np.testing.assert_allclose(metrics["dynamics/actor/churn"], want[1], rtol=1e-4)
    if kind == "daac":  # two networks: different parameters, different norms
        assert metrics["dynamics/actor/param_norm"] != metrics["dynamics/critic/param_norm"]


def test_no_measures_logs_the_update_rank_alone():
    config = DQNConfig.minatar(**{**VALUE_BASED, "encoder": "mlp"}, probe_measures="none")
    agent = build_agent("dqn", config)
    state = jax.jit(lambda s: agent.segment(s, 30))(agent.init())
    metrics = make_value_probe(agent)(state).metrics()
    assert set(metrics) == {"interference/update_rank", "interference/update_rank_random"}


@pytest.mark.parametrize(
    ("value", "message"),
    [("dormnt", "probe_measures: unknown measure 'dormnt' (did you mean 'dormant'?)"),
     ("dormant,update_rank", "probe_measures: unknown measure 'update_rank'"),
     ("init_distance", "probe_measures: unknown measure 'init_distance'")],
)  # fmt: skip
def test_a_bad_measure_is_one_line_naming_the_field(value, message):
    for cls in (DQNConfig, PPOConfig):
        with pytest.raises(ValueError, match=re.escape(message)):
            cls.minatar(probe_measures=value)


def test_an_old_runs_config_reads_as_no_measures_and_is_still_the_same_run(tmp_path):
    from tdgen.runs import RunDir
    from tdgen.runs.reuse import config_differences

    config = DQNConfig.minatar(**VALUE_BASED)
    stored = config.to_dict()
    del stored["probe_measures"]  # a config.json written before the field existed
    old = DQNConfig.from_dict(stored)
    assert old.probe_measures == "none"  # it resumes as it ran: without the suite
    RunDir.create(tmp_path / "run", "dqn", stored)
    assert config_differences(tmp_path / "run", "dqn", config.to_dict()) == []  # reused
    changed = config.replace(probe_measures="dormant").to_dict()
    assert config_differences(tmp_path / "run", "dqn", changed) == []  # measures: read-only
    assert config_differences(tmp_path / "run", "dqn", config.replace(seed=3).to_dict()) == ["seed"]
    assert config_differences(tmp_path / "run", "c51", config.to_dict()) == ["kind"]
    assert config_differences(tmp_path / "none", "dqn", config.to_dict()) is None
