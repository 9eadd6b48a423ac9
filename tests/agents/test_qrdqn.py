"""QR-DQN: one module and one registry line. It learns MinAtar breakout on the DQN test's budget,
and its probe reads the mean over quantiles, then the max over actions."""

import jax
import jax.numpy as jnp
import numpy as np

from tdgen.agents import AGENTS, QRDQNConfig, build_agent, make_value_probe
from tdgen.agents.probes import VALUE, probe_key
from tdgen.agents.value_based.loop import reset_accumulators
from tdgen.agents.value_based.probe import make_draw
from tdgen.interference import make_update_matrix


def test_qrdqn_is_registered_with_its_presets():
    spec = AGENTS["qrdqn"]
    assert spec.config_cls is QRDQNConfig and spec.family.name == "value_based"
    assert QRDQNConfig.dopamine(env="atari/Pong").lr == 5e-5  # Dopamine's quantile.gin
    assert QRDQNConfig.minatar().num_quantiles == 200


def test_qrdqn_improves_on_minatar_breakout():
    # The DQN learning test's settings and threshold (tests/agents/test_learning.py), 51 quantiles.
    config = QRDQNConfig.minatar(
        frames=60_000, buffer_size=10_000, learning_starts=1_000, log_every=5_000,
        probe_every=0, checkpoint_every=0, encoder="mlp", num_envs=8, train_every=8,
        lr=1e-3, eps=1e-5, target_period=1_000, epsilon_decay_frames=20_000, num_quantiles=51,
    )  # fmt: skip
    agent = build_agent("qrdqn", config)
    segment = agent.jit_segment()
    state = agent.init()
    returns = []
    while int(state.frames) < config.frames:
        state = segment(state)
        returns.append((float(state.return_sum), int(state.episodes)))
        state = reset_accumulators(state)
    first = returns[0][0] / returns[0][1]
    last = sum(r for r, _ in returns[-2:]) / sum(n for _, n in returns[-2:])
    assert first < 1.0, f"the near-random start already scores {first:.2f}"
    assert last > 2.0, f"QR-DQN reached only {last:.2f} (start {first:.2f})"
    assert not bool(jax.device_get(state.diverged))


def test_qrdqn_probe_reads_the_mean_over_quantiles_then_the_max(make_config):
    config = make_config(QRDQNConfig, num_quantiles=8, probe_k=12)
    agent = build_agent("qrdqn", config)
    state = jax.jit(lambda s: agent.segment(s, 40))(agent.init())
    result = make_value_probe(agent)(state)
    assert result.matrices[VALUE].shape == (1, 12, 12) and 1 <= result.update_rank <= 12
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
