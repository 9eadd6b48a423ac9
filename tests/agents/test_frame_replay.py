"""The frame-once Atari replay against the stacked buffer it replaced (tdgen 0.1.0, written plainly
below): the same transitions, value for value, around episode starts and after the ring wraps;
the same draws; the same training; refusals."""

import dataclasses

import numpy as np
import pytest

from tdgen.agents.value_based import frame_replay as fr

pytestmark = pytest.mark.slow


class StackedReplay:
    """tdgen 0.1.0's host replay: the whole [H, W, 4] stack per row, next obs = next row."""

    def __init__(self, size, num_envs, obs_shape):
        self.rows = size // num_envs
        self.num_envs = num_envs
        self.obs = np.zeros((self.rows, num_envs, *obs_shape), np.uint8)
        self.action = np.zeros((self.rows, num_envs), np.int32)
        self.reward = np.zeros((self.rows, num_envs), np.float32)
        self.terminated = np.zeros((self.rows, num_envs), np.bool_)
        self.valid = np.zeros((self.rows, num_envs), np.bool_)
        self.position = self.filled = 0

    def write_row(self, obs, action, reward, terminated, valid):
        row = self.position
        self.obs[row], self.action[row], self.reward[row] = obs, action, reward
        self.terminated[row], self.valid[row] = terminated, valid
        self.position = (row + 1) % self.rows
        self.filled = min(self.filled + 1, self.rows)
        return self

    def candidate_rows(self):
        return (self.position if self.filled == self.rows else 0), max(self.filled - 1, 0)

    def sample_indices(self, rng, n):
        first, count = self.candidate_rows()
        rows, cols = np.empty(n, np.int64), np.empty(n, np.int64)
        missing = np.arange(n)
        while missing.size:
            r = (first + rng.integers(0, count, missing.size)) % self.rows
            c = rng.integers(0, self.num_envs, missing.size)
            rows[missing], cols[missing] = r, c
            missing = missing[~self.valid[r, c]]
        return rows, cols

    def valid_flat_indices(self):
        first, count = self.candidate_rows()
        rows = (first + np.arange(count)) % self.rows
        return (rows[:, None] * self.num_envs + np.arange(self.num_envs))[self.valid[rows]]

    def gather(self, rows, cols):
        return {"obs": self.obs[rows, cols], "action": self.action[rows, cols],
                "reward": self.reward[rows, cols],
                "next_obs": self.obs[(rows + 1) % self.rows, cols],
                "terminated": self.terminated[rows, cols]}  # fmt: skip


class SyntheticStacks:
    """envpool's stacking on random frames: a reset stack repeats the first frame; the step that
    ends an episode returns its final stack; the next step ignores its action and returns a reset."""

    def __init__(self, num_envs, shape=(6, 5), seed=0, mean_length=7):
        self.rng = np.random.default_rng(seed)
        self.n, self.shape, self.mean = num_envs, shape, mean_length
        self.stack = np.stack([self._reset() for _ in range(num_envs)])
        self.pending = np.zeros(num_envs, np.bool_)

    def _frame(self):
        return self.rng.integers(0, 256, self.shape, np.uint8)

    def _reset(self):
        return np.repeat(self._frame()[..., None], 4, axis=-1)

    def step(self):
        reward = self.rng.normal(size=self.n).astype(np.float32)
        terminated = self.rng.random(self.n) < 1 / self.mean
        truncated = ~terminated & (self.rng.random(self.n) < 0.3 / self.mean)
        for i in range(self.n):
            if self.pending[i]:
                self.stack[i] = self._reset()
                reward[i], terminated[i], truncated[i] = 0.0, False, False
            else:
                self.stack[i] = np.concatenate(
                    [self.stack[i, ..., 1:], self._frame()[..., None]], -1
                )
        self.pending = np.where(self.pending, False, terminated | truncated)
        return self.stack.copy(), reward, terminated, truncated


def _drive(buffers, env, steps, seed=1):
    """The host loop's writes (`host.train_segment`): row = (obs, action, reward, term, ~prev_done)."""
    rng = np.random.default_rng(seed)
    obs, prev_done = env.stack.copy(), np.zeros(env.n, np.bool_)
    for _ in range(steps):
        action = rng.integers(0, 6, env.n).astype(np.int32)
        next_obs, reward, terminated, truncated = env.step()
        buffers = [b.write_row(obs, action, reward, terminated, ~prev_done) if isinstance(b, StackedReplay)
                   else fr.write_row(b, obs, action, reward, terminated, ~prev_done) for b in buffers]  # fmt: skip
        obs, prev_done = next_obs, terminated | truncated
    return buffers


def _same_transitions(old, new):
    """Every sampleable transition, oldest first, in both buffers: equal arrays."""
    a, b = old.valid_flat_indices(), fr.valid_flat_indices(new)
    assert a.size == b.size > 0
    ba = old.gather(*np.divmod(a, old.num_envs))
    bb = fr.gather(new, *np.divmod(b, new.num_envs))
    for key in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(ba[key], bb[key], err_msg=key)
    return bb, np.divmod(b, new.num_envs)


@pytest.mark.parametrize("steps", [5, 30, 31, 32, 33, 97, 260])  # before, at and after wraps
def test_every_transition_equals_the_stacked_buffers_around_starts_and_wraps(steps):
    n, size = 3, 3 * 30
    env = SyntheticStacks(n, seed=steps)
    old, new = _drive([StackedReplay(size, n, (6, 5, 4)), fr.init_host_replay(size, n, (6, 5, 4))],
                      env, steps)  # fmt: skip
    if steps < 3:
        return
    batch, (rows, cols) = _same_transitions(old, new)
    if steps > 40:  # the oldest transition stacks on frames 3 rows behind it: before the head
        assert (rows == (int(new.position) - new.rows) % new.slots).any()
        first = new.first[rows, cols]
        assert first.any() and (~first).any()
        # at an episode start the older frames are the first frame repeated (the reset stack)
        starts = batch["obs"][first]
        np.testing.assert_array_equal(starts, np.repeat(starts[..., -1:], 4, axis=-1))


def test_the_same_draws_give_the_same_batches():
    n, size = 4, 4 * 25
    env = SyntheticStacks(n, seed=3)
    old, new = _drive([StackedReplay(size, n, (6, 5, 4)), fr.init_host_replay(size, n, (6, 5, 4))],
                      env, 143)  # fmt: skip
    for seed in range(20):
        a = old.gather(*old.sample_indices(np.random.default_rng(seed), 32))
        b = fr.gather(new, *fr.sample_indices(new, np.random.default_rng(seed), 32))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_stack_that_does_not_chain_is_refused():
    replay = fr.init_host_replay(40, 2, (6, 5, 4))
    env = SyntheticStacks(2)
    (replay,) = _drive([replay], env, 3)
    obs = env.stack.copy()
    obs[1, ..., -2] ^= 1  # an older frame that is not lane 1's previous frame
    with pytest.raises(ValueError, match="lane 1's observation stack is not its previous frames"):
        fr.write_row(replay, obs, np.zeros(2), np.zeros(2), np.zeros(2, bool), np.ones(2, bool))
    zero_padded = env.stack.copy()  # a reset stack of zeros and the first frame: not envpool's
    zero_padded[..., :-1] = 0
    with pytest.raises(ValueError, match="lane 0's observation stack"):
        fr.write_row(fr.init_host_replay(40, 2, (6, 5, 4)), zero_padded, np.zeros(2), np.zeros(2),
                     np.zeros(2, bool), np.ones(2, bool))  # fmt: skip


def test_memory_per_transition_and_the_refusal_of_a_replay_that_does_not_fit(monkeypatch):
    assert fr.bytes_per_transition((84, 84, 4)) == 84 * 84 + 11  # 7,067 B (the stack: 28,234)
    assert fr.replay_bytes(1_000_000, 4, (84, 84, 4)) == (250_000 + 3) * 4 * 7_067
    monkeypatch.setattr(fr, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(MemoryError, match=r"buffer_size 1000000 needs 6\.6 GiB .* 2\.0 GiB is"):
        fr.init_host_replay(1_000_000, 4, (84, 84, 4))


def test_real_envpool_pong_stacks_equal_the_stacked_buffers():
    pytest.importorskip("envpool")
    from tdgen.envs import make_env

    spec = dataclasses.replace(make_env("atari/Pong"), max_episode_steps=9)
    env = spec.vector(3, seed=11)
    old, new = StackedReplay(3 * 20, 3, (84, 84, 4)), fr.init_host_replay(3 * 20, 3, (84, 84, 4))
    rng = np.random.default_rng(0)
    obs, prev_done = env.reset(), np.zeros(3, np.bool_)
    for _ in range(47):  # episodes of 9 steps + an auto-reset step; the ring wraps twice
        action = rng.integers(0, spec.num_actions, 3).astype(np.int32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        old.write_row(obs, action, reward, terminated, ~prev_done)
        new = fr.write_row(new, obs, action, reward, terminated, ~prev_done)
        obs, prev_done = next_obs, terminated | truncated
    env.close()
    batch, (rows, cols) = _same_transitions(old, new)
    assert new.first[rows, cols].any()


def test_training_on_the_frame_ring_is_bit_identical_to_the_stacked_buffer(monkeypatch):
    """The host loop with tdgen 0.1.0's stacked buffer swapped in learns the same parameters."""
    pytest.importorskip("envpool")
    import jax

    from tdgen.agents import DQNConfig, build_agent
    from tdgen.agents.value_based import host as hl

    config = DQNConfig.nature(
        env="atari/Pong", frames=200, num_envs=2, buffer_size=60, batch_size=8,
        learning_starts=40, target_period=40, epsilon_decay_frames=100, log_every=200,
        probe_every=0, checkpoint_every=0, encoder="mlp",
    )  # fmt: skip
    agent = build_agent("dqn", config)
    agent = dataclasses.replace(agent, env=dataclasses.replace(agent.env, max_episode_steps=15))

    def train():
        fns = hl.HostFunctions(agent)
        env = agent.env.vector(config.num_envs, seed=5)
        state, obs = hl.init_state(agent), env.reset()
        state, _, _ = hl.train_segment(agent, fns, state, env, obs,
                                       np.zeros(2, np.bool_), 100, True)  # fmt: skip
        env.close()
        return state

    ring = train()
    stacked = StackedReplay(60, 2, (84, 84, 4))
    monkeypatch.setattr(hl, "write_row", lambda r, *row: r.write_row(*row))
    monkeypatch.setattr(hl, "sample_indices", lambda r, rng, n: r.sample_indices(rng, n))
    monkeypatch.setattr(hl, "gather_windows", lambda r, rows, cols: r.gather(rows, cols))
    monkeypatch.setattr(hl, "window_batch", lambda batch, xp: batch)
    monkeypatch.setattr(hl, "init_host_replay", lambda *a: stacked)
    old = train()
    assert int(old.updates) == int(ring.updates) == (200 - 40) // 4
    for a, b in zip(jax.tree.leaves(old.learner), jax.tree.leaves(ring.learner), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_of_the_stacked_replay_is_refused_in_one_line(tmp_path):
    pytest.importorskip("envpool")
    from tdgen.agents import DQNConfig, build_agent
    from tdgen.agents.value_based import host as hl
    from tdgen.runs import CheckpointError, save_checkpoint

    config = DQNConfig.nature(env="atari/Pong", frames=80, num_envs=2, buffer_size=40,
                              batch_size=8, learning_starts=8, probe_every=0, encoder="mlp")  # fmt: skip
    agent = build_agent("dqn", config)
    state = hl.init_state(agent)
    old = StackedReplay(40, 2, (84, 84, 4))  # tdgen 0.1.0's fields: obs, not frames and first
    replay = {k: getattr(old, k) for k in ("obs", "action", "reward", "terminated", "valid")}
    save_checkpoint(tmp_path, 80, {**vars(state), "replay": replay, "frames": np.int32(80)},
                    kind="dqn")  # fmt: skip
    with pytest.raises(CheckpointError, match=r"stacked Atari replay of tdgen 0\.1\.0") as error:
        hl.load_host_state(agent, tmp_path, "dqn")
    assert "\n" not in str(error.value) and "restart the run" in str(error.value)


def test_a_preset_whose_replay_does_not_fit_is_refused_before_the_run_is_written(
    tmp_path, monkeypatch
):
    pytest.importorskip("envpool")
    from tdgen.agents import DQNConfig
    from tdgen.agents.launch import train

    monkeypatch.setattr(fr, "available_memory", lambda: 4 * 2**30)
    with pytest.raises(MemoryError, match=r"needs 6\.6 GiB .* but 4\.0 GiB is available"):
        train("dqn", DQNConfig.tandem(env="atari/Pong"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_cli_refuses_a_replay_larger_than_free_memory_in_one_line(tmp_path, capsys):
    pytest.importorskip("envpool")
    from tdgen.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "dqn", "--env", "atari/Pong", "--preset", "tandem", "--num-envs", "8",
              "--buffer-size", "800000000", "--out", str(tmp_path / "run")])  # fmt: skip
    captured = capsys.readouterr()
    out = (captured.out + captured.err).strip()
    assert exit_.value.code == 2 and "\n" not in out and not (tmp_path / "run").exists()
    assert out.startswith("tdgen: error: buffer_size 800000000 needs 5265.3 GiB") and "GiB" in out
