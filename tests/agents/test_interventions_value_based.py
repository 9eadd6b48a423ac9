"""Plasticity interventions in the value-based agents: they train (gymnax and envpool Atari), log
their events, resume bit for bit across a firing, leave a run without them as it was, and bad
input fails before anything is written."""

import dataclasses
import shutil

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen import cli
from tdgen.agents import build_agent, resume, train
from tdgen.agents.value_based import replay as replay_lib
from tdgen.agents.value_based.agent import Agent
from tdgen.agents.value_based.launch import load_state
from tdgen.errors import InputError
from tdgen.runs import RunDir, checkpoint_path, load_checkpoint, save_checkpoint
from tdgen.runs.checkpoint import marker_path
from tdgen.runs.loop import WALL_CLOCK_FIELDS
from tdgen.runs.metrics import read_metrics

pytestmark = pytest.mark.slow

MANY = ("layer_norm", "l2_init", "parseval", "infer", "weight_decay", "redo:period=20",
        "reset:period=30", "shrink_perturb:period=40")  # fmt: skip
EVENTS = ("interventions/redo/recycled", "interventions/reset/layers",
          "interventions/shrink_perturb/firings")  # fmt: skip


def _comparable(rows):
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_FIELDS} for row in rows]


def _leaves_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_many_interventions_train_log_and_resume_bit_for_bit(make_config, tmp_path):
    """Eight interventions at once; events fire before and after the checkpoint of frame 400,
    from which a copy of the run resumes to the same metrics, parameters and memory."""
    config = make_config(interventions=MANY)
    run = train("dqn", config, tmp_path / "dqn", progress=False)
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [200, 400, 600, 800]
    assert not any("charts/diverged" in r for r in rows)
    for key in (*EVENTS, "interventions/redo/firings", "losses/interventions"):
        assert all(key in r for r in rows), key
    for key in EVENTS:  # each fired before and after frame 400
        assert sum(r[key] for r in rows[:2]) > 0 and sum(r[key] for r in rows[2:]) > 0, key
    assert all(np.isfinite(r["losses/td_loss"]) for r in rows)
    assert sum("interference/update_rank" in r for r in rows) == 2  # probes read InFeR's params

    got = _resumes_bit_for_bit("dqn", config, run, tmp_path / "copy", last=800)
    assert "infer" in got.params and len(got.memory) == len(MANY)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(got.params))


def _resumes_bit_for_bit(agent_name, config, run, copy, last):
    """A copy of ``run`` that lost its final checkpoint (frame ``last``: as if killed after the
    one before) resumes to the same metrics, parameters, target, optimiser state, memory and key;
    returns the resumed final state."""
    shutil.copytree(run, copy)
    final = checkpoint_path(copy / "checkpoints", last)
    final.unlink(), marker_path(final).unlink()
    resume(copy, progress=False)
    assert _comparable(read_metrics(copy)) == _comparable(read_metrics(run))
    agent = build_agent(agent_name, config)
    _, expected = load_state(agent, RunDir.open(run), checkpoint_path(run / "checkpoints", last))
    _, got = load_state(agent, RunDir.open(copy), final)
    _leaves_equal(
        (got.params, got.target_params, got.opt_state, got.memory, got.key),
        (expected.params, expected.target_params, expected.opt_state, expected.memory,
         expected.key),
    )  # fmt: skip
    return got


@pytest.mark.parametrize(
    ("agent", "interventions"),
    [("dqn", ("trac", "plasticity_injection:period=30", "crelu")),
     ("c51", ("normalize_project", "fourier", "shrink_perturb:period=25")),
     ("qrdqn", ("layer_norm", "reset:layers=2,period=25", "l2_init", "redo:period=30"))],
)  # fmt: skip
def test_the_other_interventions_train_each_algorithm(make_config, tmp_path, agent, interventions):
    """Each fires after the checkpoint of frame 200, and a copy resumed from it is exact."""
    from tdgen.agents import get_agent

    cls = get_agent(agent).config_cls
    config = make_config(cls, frames=400, checkpoint_every=200, interventions=interventions)
    run = train(agent, config, tmp_path / agent, progress=False)
    rows = read_metrics(run)
    assert not any("charts/diverged" in r for r in rows)
    assert all(np.isfinite(r["losses/td_loss"]) for r in rows)
    events = {k for r in rows for k in r if k.startswith("interventions/")}
    if agent == "dqn":
        assert sum(r["interventions/plasticity_injection/injected"] for r in rows) == 1
    else:
        assert events and all(sum(r[k] for r in rows) > 0 for k in events if "recycled" not in k)
    _resumes_bit_for_bit(agent, config, run, tmp_path / "copy", last=400)


def _batch(state, n=16):
    batch, _ = replay_lib.sample_distinct(state.replay, jax.random.PRNGKey(1), n)
    return batch


def test_the_target_copies_the_injected_network(make_config):
    agent = build_agent("dqn", make_config(interventions=("plasticity_injection:period=1",)))
    state = jax.jit(lambda s: agent.segment(s, 30))(agent.init())  # 120 frames: updates begun
    assert int(state.updates) > 0 and bool(state.memory[0]["injected"])
    obs = _batch(state)["obs"]
    online = agent.outputs(state.params, state.memory, obs)
    target = agent.apply(agent.copy_target(state), obs)
    np.testing.assert_array_equal(online, target)
    # The failure it guards against: the plain parameters alone are not the injected network.
    assert not np.array_equal(agent.apply(state.params, obs), online)


def test_no_interventions_computes_as_the_code_before_them(make_config, tmp_path):
    config = make_config()
    agent = build_agent("dqn", config)
    assert agent.optimizer is agent.base_optimizer

    @dataclasses.dataclass(frozen=True)
    class Before(Agent):
        """The update as written before interventions existed."""

        def _update(self, state, key):
            batch = replay_lib.sample(state.replay, key, self.config.batch_size)
            loss, grads = jax.value_and_grad(self.batch_loss)(
                state.params, state.target_params, batch
            )
            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
            return state.replace(
                params=optax.apply_updates(state.params, updates), opt_state=opt_state,
                updates=state.updates + 1, loss_sum=state.loss_sum + loss,
                loss_count=state.loss_count + 1, diverged=state.diverged | ~jnp.isfinite(loss),
            )  # fmt: skip

    before = Before(**{f.name: getattr(agent, f.name) for f in dataclasses.fields(Agent)})
    state = agent.init()
    assert state.memory == () and state.logs == {}
    now = jax.jit(lambda s: agent.segment(s, 100))(state)
    then = jax.jit(lambda s: before.segment(s, 100))(agent.init())
    assert int(now.updates) > 50
    _leaves_equal(now, then)
    # A checkpoint written before the state had memory and logs loads (and resumes) as it was.
    stored = {k: v for k, v in now.__dict__.items() if k not in ("memory", "logs")}
    path = save_checkpoint(tmp_path, int(now.frames), stored, kind="dqn")
    _, loaded = load_checkpoint(path, agent.init(), kind="dqn")
    _leaves_equal(loaded, now)


@pytest.mark.parametrize(
    ("interventions", "encoder", "expected"),
    [(("sgd_restart",), "mlp", "unknown intervention 'sgd_restart'"),
     (("reset:period=0",), "mlp", "reset period must be >= 1"),
     (("crelu", "fourier"), "mlp", "'crelu' and 'fourier' both set"),
     (("redo",), "impala", "redo")],
)  # fmt: skip
def test_bad_interventions_are_refused_at_config_or_build_time(
    make_config, interventions, encoder, expected
):
    with pytest.raises(InputError, match=expected):
        build_agent("dqn", make_config(encoder=encoder, interventions=interventions))


def test_the_command_refuses_a_bad_intervention_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "dqn", "--interventions", "redo", "shrink_perturb:lam=x",
                  "--out", str(out), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "lam='x' is not a number" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists() and not list(tmp_path.iterdir())


def test_the_command_line_takes_interventions(make_config):
    from tdgen.agents import DQNConfig
    from tdgen.arguments import parse

    config = parse(DQNConfig, ["--interventions", "redo", "reset:layers=1"], prog="t",
                   default=make_config())  # fmt: skip
    assert config.interventions == ("redo", "reset:layers=1")
    assert DQNConfig.from_dict(config.to_dict()) == config
    assert "interventions" not in make_config().to_dict()  # config.json as before them


def test_interventions_run_in_the_atari_host_loop(tmp_path):
    pytest.importorskip("envpool")
    from tdgen.agents import DQNConfig
    from tdgen.agents.value_based import host as hl

    config = DQNConfig.nature(
        env="atari/Pong", frames=240, num_envs=4, buffer_size=400, batch_size=8,
        learning_starts=80, target_period=80, epsilon_decay_frames=200, log_every=80,
        probe_every=0, checkpoint_every=240, encoder="mlp", interventions=("reset:period=10",),
    )  # fmt: skip
    agent = build_agent("dqn", config)
    agent = dataclasses.replace(agent, env=dataclasses.replace(agent.env, max_episode_steps=30))
    run = RunDir.create(tmp_path / "dqn", "dqn", config.to_dict())
    hl.train_host(agent, run, progress=False)
    rows = read_metrics(run.path)
    assert sum(r.get("interventions/reset/layers", 0) for r in rows) > 0
    assert all(np.isfinite(r["losses/td_loss"]) for r in rows if "losses/td_loss" in r)
    # A host checkpoint written before the learner had memory and logs loads as it was.
    plain = dataclasses.replace(agent, interventions=())
    state = hl.init_state(plain)
    stored = flax.serialization.to_state_dict(state)
    del stored["learner"]["memory"], stored["learner"]["logs"]
    path = save_checkpoint(tmp_path / "old", 0, stored, kind="dqn")
    _leaves_equal(load_checkpoint(path, hl.init_state(plain), kind="dqn")[1], state)
