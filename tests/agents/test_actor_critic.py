"""PPO and DAAC end to end on MinAtar: learning, exact resume, probes, level split, divergence."""

import shutil

import jax
import numpy as np
import pytest

from tdgen.agents import DAACConfig, PPOConfig, build_agent, resume, train
from tdgen.agents.actor_critic.agent import flat_batch, make_level_envs
from tdgen.agents.actor_critic.probe import make_actor_critic_probe
from tdgen.runs import RunDir, load_checkpoint
from tdgen.runs.checkpoint import complete_checkpoints
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow

CONFIGS = {"ppo": PPOConfig, "daac": DAACConfig}


def tiny(kind="ppo", **overrides):
    values = dict(
        num_envs=4, num_steps=16, frames=512, num_minibatches=2, eval_every=128, eval_envs=2,
        eval_steps=200, probe_every=256, probe_k=16, checkpoint_every=128, encoder="mlp",
        hidden_size=32, value_epochs=2,
    )  # fmt: skip
    if kind == "ppo":
        values.pop("value_epochs")
    return CONFIGS[kind].minatar(**{**values, **overrides})


def _final_eval(agent, state, seed=0):
    return jax.jit(agent.evaluate)(state.params, jax.random.PRNGKey(seed))


def plain_rank(A, eps=0.1):
    """Update rank (Appendix B.1): singular values above eps times the largest, numpy SVD."""
    s = np.linalg.svd(np.asarray(A, np.float64), compute_uv=False)
    return int(np.sum(s > eps * s[0]))


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("kind", "frames"), [("ppo", 98_304), ("daac", 131_072)])
def test_agents_learn_breakout_well_above_a_random_policy(kind, frames, tmp_path):
    # The minatar preset as is (64 envs x 128 steps, MinAtar CNN), evaluations only at the end.
    config = CONFIGS[kind].minatar(frames=frames, eval_every=frames, probe_every=0,
                                   checkpoint_every=0)  # fmt: skip
    train(kind, config, tmp_path / kind, progress=False)
    rows = read_metrics(tmp_path / kind)
    first = rows[0]["charts/episodic_return"]  # the near-uniform initial policy
    final = rows[-1]["charts/train_return"]
    # A uniformly random policy scores about 0.5 per episode on Breakout-MinAtar.
    assert first < 0.8
    assert final > 1.0 + first, (first, final)


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_resume_from_a_checkpoint_replays_the_uninterrupted_run_exactly(kind, tmp_path):
    config = tiny(kind)
    reference = tmp_path / "reference"
    train(kind, config, reference, progress=False)
    # An interrupted run: the state of the reference at its first checkpoint, later ones lost.
    interrupted = tmp_path / "interrupted"
    shutil.copytree(reference, interrupted)
    run = RunDir.open(interrupted)
    for frames in complete_checkpoints(run.checkpoints)[1:]:
        for path in run.checkpoints.glob(f"ckpt_{frames:012d}*"):
            path.unlink()
    resume(interrupted, progress=False)

    def comparable(path):
        rows = read_metrics(path)
        return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in rows]

    assert comparable(interrupted) == comparable(reference)
    assert any("charts/test_return" in r for r in comparable(reference))
    assert any("interference/critic_update_rank" in r for r in comparable(reference))
    agent = build_agent(config.kind, config)
    last = complete_checkpoints(run.checkpoints)[-1]
    name = f"ckpt_{last:012d}.msgpack"
    _, a = load_checkpoint(reference / "checkpoints" / name, agent.init(), kind=kind)
    _, b = load_checkpoint(interrupted / "checkpoints" / name, agent.init(), kind=kind)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["ppo", "daac"])
def test_probes_give_actor_probability_norms_and_critic_steps_toward_the_targets(kind):
    config = tiny(kind, probe_draws=2, probe_center="drift")
    agent = build_agent(config.kind, config)
    state, rollout = jax.jit(lambda s: agent.segment(s, 2))(agent.init())
    probe = make_actor_critic_probe(agent)
    result = probe(state, rollout)
    again = probe(state, rollout)
    for name in ("actor", "critic"):
        assert result.matrices[name].shape == (2, 16, 16)
        np.testing.assert_array_equal(result.matrices[name], again.matrices[name])
        assert 1 <= result.ranks[name] <= 16
        # each rank is the mean over the draws of its matrices' ranks, trained and random
        for ranks, matrices in ((result.ranks, result.matrices),
                                (result.ranks_random, result.matrices_random)):  # fmt: skip
            assert ranks[name] == np.mean([plain_rank(A) for A in matrices[name]]), name
    assert (result.matrices["actor"] >= 0).all()  # norms of probability changes
    # Without Adam's shared momentum step, the critic's step on sample i moves V(x_i) toward
    # that sample's return: the diagonal's signs follow return - V.
    data = flat_batch(rollout)
    for draw, idx in enumerate(result.indices):
        _, value = agent.algorithm.policy_value(state.params, data["obs"][idx])
        error = np.asarray(data["return"][idx] - value)
        diagonal = np.diag(result.matrices["critic"][draw])
        agree = np.mean(np.sign(diagonal) == np.sign(error))
        assert agree >= 0.8, (agree, diagonal, error)
    metrics = result.metrics()  # drift-centred: the keys say so (tdgen.interference.keys)
    assert {name for name in metrics if name.startswith("interference/")} == {
        "interference/actor_update_rank_drift", "interference/actor_update_rank_drift_random",
        "interference/critic_update_rank_drift", "interference/critic_update_rank_drift_random",
    }  # fmt: skip
    for name in ("actor", "critic"):
        assert metrics[f"interference/{name}_update_rank_drift"] == result.ranks[name]
        assert metrics[f"interference/{name}_update_rank_drift_random"] == result.ranks_random[name]
    assert "dynamics/actor/dormant_0.025" in metrics and "perf/dynamics_seconds" in metrics


def test_daac_critic_probe_moves_only_the_value_network():
    # DAAC's critic step acts on the value network alone: the policy's outputs cannot change, so
    # an actor matrix computed from the critic's step would be zero. Check the selection itself.
    agent = build_agent("daac", tiny("daac"))
    state = agent.init()
    targets = agent.algorithm.probe_targets()
    params, _ = targets["critic"].select(state.params, state.opt_state)
    assert params is state.params["value"]
    params, _ = targets["actor"].select(state.params, state.opt_state)
    assert params is state.params["policy"]


def test_train_and_test_levels_are_disjoint_when_asked():
    config = tiny("ppo", num_levels=5, start_level=100, test_num_levels=7)
    train_env, test_env = make_level_envs(config)

    def levels(env, seed):
        obs, state = env.reset_batch(jax.random.PRNGKey(seed), 64)
        step = jax.jit(env.step_batch)
        seen = set()
        for i in range(300):
            action = np.zeros(64, np.int32)
            obs, state, _, done, info = step(jax.random.PRNGKey(i), state, action)
            seen |= set(np.asarray(info["level"]).tolist())
        return seen

    train_levels, test_levels = levels(train_env, 0), levels(test_env, 1)
    assert train_levels <= set(range(100, 105)) and len(train_levels) == 5
    assert test_levels <= set(range(105, 112)) and len(test_levels) > 3
    assert not train_levels & test_levels


def test_a_diverging_run_stops_cleanly_and_reports_it(tmp_path):
    config = tiny("ppo", lr=1e12, max_grad_norm=0.0, eval_every=0, probe_every=0, frames=2048,
                  checkpoint_every=0)  # fmt: skip
    train("ppo", config, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert rows[-1].get("charts/diverged") == 1
    assert rows[-1]["step"] < 2048


def test_unknown_environment_fails_before_writing(tmp_path):
    with pytest.raises(ValueError, match="did you mean"):
        train("ppo", tiny("ppo", env="minatar/brakout"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="minatar/<game> or procgen/<game>"):
        train("ppo", tiny("ppo", env="atari/Pong"), tmp_path / "run", progress=False)
