"""What each experiment declares (its kind, its planned runs) and what the tools read from it."""

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from tdgen.experiments import (
    KINDS,
    REGISTRY,
    Experiment,
    PlannedRun,
    TheoryConfig,
    _declared_kind,
    experiment_kind,
    experiment_names,
    experiments_of,
    get_experiment,
)
from tdgen.experiments.base import Outcome
from tdgen.sweep.reproduce import planned_runs

# The paper's Sections 4.1-4.3 and Appendix C: no agent is trained.
THEORY = ("fig1_mountaincar_spectrum", "thm41_td_error_bound", "fig2_high_frequency_pretraining",
          "obs42_second_order_dynamics", "fig9_kernel_td",
          "fig10_smooth_kernel_regression")  # fmt: skip


@pytest.mark.parametrize("name", experiment_names())
def test_the_kind_read_from_the_source_is_the_declared_one(name):
    experiment = get_experiment(name)
    source = inspect.getsource(sys.modules[REGISTRY[name]])
    assert experiment.kind in KINDS
    assert _declared_kind(source) == experiment.kind  # written out, not left to the default
    assert experiment_kind(name) == experiment.kind
    theory = experiment.kind == "theory"
    # a theory experiment runs in seconds: its smoke preset is its quick one, and it trains no agent
    assert issubclass(experiment.config_type, TheoryConfig) == theory
    assert not (theory and experiment.planned_runs)


def test_asking_for_the_kinds_imports_no_experiment_and_no_jax():
    code = (
        "import sys; from tdgen.experiments import experiments_of, REGISTRY; "
        "print(sorted(experiments_of('theory'))); print(len(experiments_of('deep_rl'))); "
        "print([m for m in sys.modules if m in REGISTRY.values() or m.split('.')[0] == 'jax'])"
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.splitlines()  # fmt: skip
    assert lines == [
        str(sorted(THEORY)),
        str(len(experiment_names()) - len(THEORY)),
        "[]",
    ]
    with pytest.raises(ValueError, match="unknown experiment kind 'rl'"):
        experiments_of("rl")
    with pytest.raises(ValueError, match="did you mean 'fig9_kernel_td'"):
        experiment_kind("fig9_kernel_tdd")


def test_an_experiment_entry_is_validated():
    @dataclasses.dataclass(frozen=True)
    class Config(TheoryConfig):
        size: int = 3

        @classmethod
        def paper(cls):
            return cls(size=30)

    def run(config, seed, out_dir):
        return Outcome([], [])

    entry = dict(name="e", paper_ref="Fig. 0", description="d", config_type=Config, run=run)
    experiment = Experiment(**entry, kind="theory")
    assert experiment.config("smoke") == experiment.config("quick") == Config(size=3)
    assert experiment.config("paper") == Config(size=30)
    with pytest.raises(ValueError, match="kind 'theroy' unknown: choose one of theory, deep_rl"):
        Experiment(**entry, kind="theroy")
    with pytest.raises(ValueError, match="planned_runs must be a function"):
        Experiment(**entry, kind="deep_rl", planned_runs=[])
    assert Experiment(**entry).kind == "deep_rl"  # one that does not say is taken to train agents


def test_figure3_plans_every_run_it_trains():
    """The declaration against the plan written out plainly (what sweep/reproduce.py wrote by
    hand before the experiments declared it)."""
    from tdgen.experiments import fig3_value_update_rank as fig3

    config, name = fig3.Config.quick(), fig3.EXPERIMENT.name
    expected = [
        (run := fig3.run_name(agent, game, reward, s), agent,
         fig3.agent_config(config, agent, game, reward, s), Path("out", name, "runs", run))
        for game in config.games for agent in config.agents for reward in config.rewards
        for s in range(5, 5 + config.num_seeds)
    ]  # fmt: skip
    declared = fig3.planned_runs(config, 5, Path("out") / name)
    assert all(isinstance(r, PlannedRun) for r in declared)
    assert [(r.name, r.agent, r.config, r.run_dir) for r in declared] == expected
    assert planned_runs(name, config, 5, "out") == expected
    assert len(expected) == len(config.agents) * len(config.rewards) * config.num_seeds == 16


@pytest.mark.parametrize("scale", ["quick", "smoke"])
def test_figure4_plans_every_run_it_trains(scale):
    from tdgen.experiments import fig4_actor_critic_update_rank as fig4

    config = fig4.EXPERIMENT.config(scale)
    expected = [
        (run := fig4.run_name(agent, game, s), agent, fig4.agent_config(config, agent, game, s),
         Path("out", fig4.EXPERIMENT.name, "runs", run))
        for game in config.games for agent in fig4.AGENTS for s in range(0, config.num_seeds)
    ]  # fmt: skip
    assert planned_runs(fig4.EXPERIMENT.name, config, 0, "out") == expected
    assert len({run_dir for *_, run_dir in expected}) == len(expected)


def test_an_experiment_that_declares_no_runs_plans_none():
    assert get_experiment("fig12_update_matrices").planned_runs is None  # reuses Figure 3's
    assert planned_runs("fig9_kernel_td", None, 0, "out") == []
