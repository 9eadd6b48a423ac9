"""The three scales: smoke is the paper preset with schedules cut, and its verdicts say so."""

import dataclasses

import pytest

from tdgen.experiments import experiment_names, experiments_of, get_experiment
from tdgen.experiments.report import SMOKE, render_html, render_markdown

# What a smoke preset may change in a paper preset: lengths and sizes (k of the update matrix
# included), never games, agents, networks, presets, seeds, levels or the claims' rules.
SCHEDULE = {
    "frames", "learning_starts", "probe_every", "log_every", "target_period", "checkpoint_every",
    "buffer_size", "show_frames", "num_envs", "num_steps", "eval_every", "eval_steps",
    "teacher_frames", "teacher_epsilon_decay", "teacher_learning_starts", "teacher_probe_every",
    "teacher_log_every", "teacher_probe_k", "student_steps", "num_states", "steps", "teacher", "probe_k",
    "probe_draws", "teacher_scale", "teacher_target_period", "teacher_buffer_size",
}  # fmt: skip
THEORY = set(experiments_of("theory"))  # as each experiment declares its kind


def changed(a, b) -> set[str]:
    return {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}


@pytest.mark.parametrize("name", experiment_names())
def test_smoke_is_the_paper_preset_with_its_schedule_cut(name):
    experiment = get_experiment(name)
    smoke, paper = experiment.config("smoke"), experiment.config("paper")
    if name in THEORY:  # seconds already: smoke runs the quick sizes of the same code
        assert smoke == experiment.config("quick")
        return
    # a nested experiment config (Figure 11's teacher: Figure 5's; the correlation experiment's
    # Figure 3 and 4 runs) is cut the same way
    nested = {n for n in changed(smoke, paper) if dataclasses.is_dataclass(getattr(smoke, n))}
    for name in nested:
        assert changed(getattr(smoke, name), getattr(paper, name)) <= SCHEDULE, name
    assert changed(smoke, paper) - nested <= SCHEDULE, changed(smoke, paper) - SCHEDULE
    assert changed(smoke, paper), "smoke must cut something"
    with pytest.raises(ValueError, match="unknown scale 'tiny'"):
        experiment.config("tiny")


def result(scale: str, holds: bool) -> dict:
    claim = {"id": "c", "statement": "s", "holds": holds, "evidence": {}}
    return {"experiment": f"e_{scale}", "paper_ref": "Fig. 0", "scale": scale, "seed": 0,
            "seconds": 1.0, "claims": [claim], "figures": [], "summary": {}}  # fmt: skip


def test_smoke_verdicts_are_not_counted_as_tests_of_the_claims():
    results = [result("quick", True), result("smoke", True), result("smoke", False)]
    for text in (render_markdown(results), render_html(results)):
        assert (
            "3 experiments, 1 of 1 claims held, 0 did not hold, 0 inconclusive; 2 claims at "
            "smoke scale"
        ) in text
        assert f"{SMOKE} (rule: held)" in text and f"{SMOKE} (rule: did not hold)" in text
    quick_only = render_markdown([result("quick", False)])
    assert "0 of 1 claims held, 1 did not hold, 0 inconclusive." in quick_only
    assert SMOKE not in quick_only


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_figure11_asks_for_figure5s_teacher_so_it_reuses_it(scale):
    """Figure 11 reuses Figure 5's teacher only when the two ask for one config (probe k too)."""
    from tdgen.experiments import fig5_distillation_robustness as fig5
    from tdgen.experiments import fig11_value_distillation_objectives as fig11

    config = getattr(fig11.Config, scale)()
    own = fig5.teacher_config(config.teacher, config.game, 0).replace(probe_k=config.probe_k)
    assert config.game in getattr(fig5.Config, scale)().games
    assert (
        own.to_dict()
        == fig5.teacher_config(getattr(fig5.Config, scale)(), config.game, 0).to_dict()
    )
