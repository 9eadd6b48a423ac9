"""The smoke scale end to end on envpool, in three chains of experiments that reuse each other's
runs: Atari value-based runs (Figures 3, 12, 8); ProcGen actor-critic runs (Figure 4) and their KL
students (Figure 6); an Atari Tandem teacher and its value and BC students collecting from envpool
(Figure 5), and Figure 11's five value objectives distilled from Figure 5's teacher (their centred
ranks read the Atari frame ring). Each chain trains, probes, checkpoints, reuses, distils,
evaluates and reports; the chains share nothing, and each is a class of its own, so that
pytest-xdist (``--dist loadscope``) runs them on different workers.

`tdgen reproduce --scale smoke` runs every game and seed of the paper presets; these tests keep the
paper's first game and one seed of each, everything else as the smoke presets say.
"""

import dataclasses
import json

import pytest

from tdgen.experiments import get_experiment
from tdgen.experiments.report import SMOKE, write_report
from tdgen.experiments.runner import run_experiment
from tdgen.runs import RunDir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

pytest.importorskip("envpool")


def one_game_one_seed(config):
    changes = {"games": config.games[:1]} if hasattr(config, "games") else {}
    if hasattr(config, "num_seeds"):
        changes["num_seeds"] = 1
    return dataclasses.replace(config, **changes)


def run_smoke(names, out):
    results = {}
    for name in names:
        config = one_game_one_seed(get_experiment(name).config("smoke"))
        results[name] = run_experiment(name, "smoke", 0, out, config)
    report = write_report(out).read_text()
    assert SMOKE in report and "0 of 0 claims held" in report
    return results


class TestAtariValueRuns:
    def test_are_probed_and_reused_by_figures_12_and_8(self, tmp_path):
        results = run_smoke(
            ("fig3_value_update_rank", "fig12_update_matrices", "fig8_value_fourier"), tmp_path
        )
        runs = tmp_path / "fig3_value_update_rank" / "runs"
        assert sorted(p.name for p in runs.iterdir()) == [
            f"{agent}_atari-Pong_{reward}_s0"
            for agent in ("c51", "dqn")
            for reward in ("dense", "zero")
        ]
        rows = [
            json.loads(line) for line in (runs / "dqn_atari-Pong_dense_s0" / "metrics.jsonl").open()
        ]
        assert [r["step"] for r in rows if "interference/update_rank" in r] == [256, 512, 768, 1024]
        assert (
            results["fig12_update_matrices"]["claims"] and results["fig8_value_fourier"]["claims"]
        )
        assert not (tmp_path / "fig12_update_matrices" / "runs").exists()  # Figure 3's runs reused


class TestProcgenActorCriticRuns:
    def test_are_distilled_by_figure_6_and_a_rerun_reads_back(self, tmp_path):
        names = ("fig4_actor_critic_update_rank", "fig6_policy_distillation_generalization")
        results = run_smoke(names, tmp_path)
        ppo = tmp_path / "fig4_actor_critic_update_rank" / "runs" / "ppo_procgen-bigfish_s0"
        rows = [json.loads(line) for line in (ppo / "metrics.jsonl").open()]
        assert any("charts/test_return" in r for r in rows)
        # Figure 6 distils Figure 4's PPO run (reused, not retrained) into a KL student on ProcGen
        assert not (
            tmp_path / "fig6_policy_distillation_generalization" / "runs" / ppo.name
        ).exists()
        student = (
            tmp_path / "fig6_policy_distillation_generalization" / "runs" / "kl_procgen-bigfish_s0"
        )
        assert (student / "metrics.jsonl").exists()
        gap = results["fig6_policy_distillation_generalization"]["claims"][0]
        assert set(gap["checks"]["procgen/bigfish"]) >= {"estimate", "low", "high", "verdict"}
        assert set(gap["evidence"]["table"]["procgen/bigfish"]) == {"teacher", "student"}
        # A rerun reuses the runs and reads their evaluations back: the same numbers, nothing evaluated
        assert len(list((student / "evaluations").glob("*.json"))) == 1
        name = "fig6_policy_distillation_generalization"
        config = one_game_one_seed(get_experiment(name).config("smoke"))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                "tdgen.policies.evaluate_policy", lambda *a, **k: pytest.fail("evaluated")
            )
            again = run_experiment(name, "smoke", 0, tmp_path, config)
        assert again["claims"] == results[name]["claims"]


class TestAtariTeacher:
    def test_students_collect_and_figure_11_reuses_the_teacher(self, tmp_path):
        results = run_smoke(
            ("fig5_distillation_robustness", "fig11_value_distillation_objectives"), tmp_path
        )
        fig5 = results["fig5_distillation_robustness"]["summary"]["table"]["atari/Pong"]
        assert set(fig5) == {"teacher", "q", "bc"}
        assert all(0.0 <= row["action_agreement"] <= 1.0 for row in fig5.values())
        bc = tmp_path / "fig5_distillation_robustness" / "runs" / "bc_atari-Pong_s0"
        assert RunDir.open(bc).config["collect"] and (bc / "metrics.jsonl").exists()
        fig11 = tmp_path / "fig11_value_distillation_objectives"
        assert not (fig11 / "runs" / "teacher_atari-Pong").exists()  # Figure 5's teacher, reused
        curves = results["fig11_value_distillation_objectives"]["summary"]
        assert curves and (fig11 / "runs" / "qa_atari-Pong_s0" / "metrics.jsonl").exists()
