"""QR-DQN: one module and one registry line; its probe reads the mean over quantiles, then the max
over actions. (It learns MinAtar breakout: tests/agents/test_learning.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.agents import AGENTS, QRDQNConfig, build_agent, make_value_probe
from tdgen.agents.probes import VALUE, probe_key
from tdgen.agents.value_based.probe import make_draw
from tdgen.interference import make_update_matrix

pytestmark = pytest.mark.slow


def test_qrdqn_is_registered_with_its_presets():
    spec = AGENTS["qrdqn"]
    assert spec.config_cls is QRDQNConfig and spec.family.name == "value_based"
    assert QRDQNConfig.dopamine(env="atari/Pong").lr == 5e-5  # Dopamine's quantile.gin
    assert QRDQNConfig.minatar().num_quantiles == 200


def test_qrdqn_probe_reads_the_mean_over_quantiles_then_the_max(make_config):
    config = make_config(QRDQNConfig, num_quantiles=8, probe_k=12)
    agent = build_agent("qrdqn", config)
    state = jax.jit(lambda s: agent.segment(s, 40))(agent.init())
    result = make_value_probe(agent)(state)
    assert result.matrices[VALUE].shape == (1, 12, 12) and 1 <= result.update_rank <= 12
    sigma = np.linalg.svd(np.asarray(result.matrices[VALUE][0], np.float64), compute_uv=False)
    assert result.update_rank == int(np.sum(sigma > 0.1 * sigma[0]))  # Appendix B.1, by numpy
    # the same matrix from a plain definition: Q = mean over quantiles, then max over actions
    key = jax.random.split(probe_key(state.key), 1)[0]
    d = make_draw(agent)(state.target_params, state.replay, key)

    def loss_fn(params, t):
        theta = agent.apply(params, t["obs"][None])[0]
        return agent.algorithm.transition_loss(theta, t["action"], t["reward"], t["discount"],
                                               t["target_outputs"])  # fmt: skip

    def q_values(params, obs):
        return jnp.mean(agent.apply(params, obs), axis=-1)

    plain = make_update_matrix(q_values, loss_fn, agent.optimizer, reduce="max", method="exact")
    np.testing.assert_allclose(result.matrices[VALUE][0],
                               plain(state.params, state.opt_state, d.trained), rtol=1e-5,
                               atol=1e-7)  # fmt: skip
