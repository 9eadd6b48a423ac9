"""DQN and QR-DQN learn MinAtar breakout on a small budget (60k frames, MLP, ~15 s each on 2
loaded cores).

Threshold: the mean return of the episodes finished in the last 10k frames must exceed 2.0, while
those of the first 5k frames (epsilon >= 0.8, close to a random policy) stay below 1.0. Measured
while writing the test (seed 0): 0.44 in the first 5k frames (a random policy scores ~0.4 per
episode on MinAtar breakout), 5.3 and 6.6 over the last two 5k-frame windows; 2.0 is 4.5x the
random policy's level and leaves a wide margin below what a learning agent reaches. QR-DQN (51
quantiles) runs the same settings against the same thresholds.
"""

import jax
import pytest

from tdgen.agents import DQNConfig, QRDQNConfig, build_agent
from tdgen.agents.value_based.agent import reset_accumulators

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [("dqn", DQNConfig, {}), ("qrdqn", QRDQNConfig, {"num_quantiles": 51})],
)
def test_value_agents_improve_on_minatar_breakout(name, cls, extra):
    config = cls.minatar(
        frames=60_000, buffer_size=10_000, learning_starts=1_000, log_every=5_000,
        probe_every=0, checkpoint_every=0, encoder="mlp", num_envs=8, train_every=8,
        lr=1e-3, eps=1e-5, target_period=1_000, epsilon_decay_frames=20_000, **extra,
    )  # fmt: skip
    agent = build_agent(name, config)
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
    assert last > 2.0, f"{name} reached only {last:.2f} (start {first:.2f})"
    assert not bool(jax.device_get(state.diverged))
