"""GPU check: about a minute of each paper preset's training on the default JAX device.

    tdgen gpu-check [--seconds 40] [--cases fig3-dqn fig4-ppo ...] [--dry-run] [--results DIR]

For each distinct training program the paper presets run, it trains that preset's first run on the
default device for ``--seconds`` and then sends itself SIGTERM, as a scheduler's preemption would
(the run checkpoints at the segment it reached and stops: `tdgen.runs.loop`). It prints, per case:
frames/s (updates/s for students) over the log lines after the first (so compilation is excluded;
"~" marks a figure that includes it), the seconds of one update-rank probe, the device's peak
memory (`Device.memory_stats`, GPU only), the process's peak host RSS, and the projected wall time
of every run of that kind in the experiment's full paper run, one after another on this device:
runs x (length / rate + probes x probe seconds); evaluations are not included.

The measured run is the paper's run with three things changed so that a minute shows it: metric
lines every ``log_frames`` frames, a probe every 20k frames and the first update after at most
that (value-based); a line every iteration and a probe every two (actor-critic); a line every 1k
updates and a probe every 2k (students; a quarter and half of a shorter run); no evaluations. A student
distils a teacher trained for the smoke preset's length (its data is that teacher's buffer, so its
memory is not the paper's). Each case runs in its own subprocess (peak RSS is per process) with a
timeout. ``--dry-run`` runs the smoke presets on the CPU instead: a test runs it. ``--results DIR``
writes the table as a benchmark record (`tdgen.bench.record`), never for a dry run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tdgen.bench.record import column


@dataclasses.dataclass(frozen=True)
class Case:
    """One training program of a paper preset: ``build(config) -> (agent, run config, runs)``
    where ``runs`` counts the runs of this kind the experiment trains; ``teacher``: the case whose
    run this one distils (students)."""

    experiment: str
    build: Callable[[Any], tuple[str, Any, int]]
    teacher: str | None = None


def _fig3(agent: str):
    def build(c):
        from tdgen.experiments.fig3_value_update_rank import agent_config

        runs = len(c.games) * len(c.rewards) * c.num_seeds
        return agent, agent_config(c, agent, c.games[0], "dense", 0), runs

    return build


def _fig4(agent: str):
    def build(c):
        from tdgen.experiments.fig4_actor_critic_update_rank import agent_config

        return agent, agent_config(c, agent, c.games[0], 0), len(c.games) * c.num_seeds

    return build


def _fig5_teacher(c):
    from tdgen.experiments.fig5_distillation_robustness import teacher_config

    return "dqn", teacher_config(c, c.games[0], 0), len(c.games)


def _fig5_student(c, teacher: Path):
    from tdgen.experiments.fig5_distillation_robustness import STUDENTS, student_config

    return "distill", student_config(c, teacher, "q", 0), len(c.games) * len(STUDENTS) * c.num_seeds


def _fig6_student(c, teacher: Path):
    from tdgen.experiments.fig6_policy_distillation_generalization import student_config

    return "distill", student_config(c, teacher, c.games[0], 0), len(c.games) * c.num_seeds


# Figures 12 and 8 train Figure 3's runs (reused); Figure 11 distils Figure 5's teacher; Figure 6's
# teachers are Figure 4's PPO runs.
CASES: dict[str, Case] = {
    "fig3-dqn": Case("fig3_value_update_rank", _fig3("dqn")),
    "fig3-c51": Case("fig3_value_update_rank", _fig3("c51")),
    "fig4-ppo": Case("fig4_actor_critic_update_rank", _fig4("ppo")),
    "fig4-daac": Case("fig4_actor_critic_update_rank", _fig4("daac")),
    "fig5-teacher": Case("fig5_distillation_robustness", _fig5_teacher),
    "fig5-student": Case("fig5_distillation_robustness", _fig5_student, teacher="fig5-teacher"),
    "fig6-student": Case(
        "fig6_policy_distillation_generalization", _fig6_student, teacher="fig4-ppo"
    ),
}


def check_config(config: Any, log_frames: int) -> Any:
    """The run config with the changes the module docstring lists (nothing else)."""
    if hasattr(config, "objective"):  # a student: steps are updates
        return config.replace(log_every=min(1_000, max(config.steps // 4, 1)),
                              probe_every=min(2_000, max(config.steps // 2, 1)),
                              eval_every=0)  # fmt: skip
    if hasattr(config, "learning_starts"):
        every = min(config.probe_every or 20_000, 20_000)
        return config.replace(log_every=min(log_frames, every), probe_every=every,
                              learning_starts=min(config.learning_starts, every))  # fmt: skip
    batch = config.num_envs * config.num_steps
    return config.replace(log_every=batch, probe_every=2 * batch, eval_every=0)


def build_case(name: str, scale: str, teacher: Path | None) -> tuple[str, Any, int, int]:
    """(agent, measured config, runs of this kind, paper length) of case ``name`` at ``scale``."""
    from tdgen.experiments import get_experiment

    case = CASES[name]
    config = get_experiment(case.experiment).config(scale)
    agent, run, runs = case.build(config) if teacher is None else case.build(config, teacher)
    return agent, run, runs, run.length


def train_teacher(name: str, out: Path) -> Path:
    """The teacher run of student case ``name``, trained for its smoke preset's length."""
    from tdgen.agents import train

    agent, config, _, _ = build_case(CASES[name].teacher, "smoke", None)
    return train(agent, config, out / "teacher", progress=False)


def measure(name: str, scale: str, seconds: float, log_frames: int) -> dict[str, Any]:
    """One case in this process: train until SIGTERM after ``seconds``; read the rates. Its runs
    go to a temporary directory, removed afterwards (each case leaves ~160 MB otherwise)."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        return _measure(name, scale, seconds, log_frames, Path(tmp))


def _measure(name: str, scale: str, seconds: float, log_frames: int, out: Path) -> dict[str, Any]:
    import jax

    from tdgen.errors import Interrupted
    from tdgen.runs.metrics import read_metrics

    teacher = train_teacher(name, out) if CASES[name].teacher else None
    agent, config, runs, length = build_case(name, scale, teacher)
    config = check_config(config, log_frames)
    # SIGTERM after ``seconds``, repeated every 5 s until the loop has taken it (a signal that
    # lands before the loop installs its handler is only recorded, by the handler set here).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    done = threading.Event()

    def preempt():
        if not done.wait(seconds):
            while not done.is_set():
                os.kill(os.getpid(), signal.SIGTERM)
                done.wait(5.0)

    threading.Thread(target=preempt, daemon=True).start()
    start = time.perf_counter()
    try:
        if agent == "distill":
            from tdgen.distill import distill

            distill(config, out / "run", progress=False)
        else:
            from tdgen.agents import train

            train(agent, config, out / "run", progress=False)
    except Interrupted:
        pass
    finally:
        done.set()
    wall = time.perf_counter() - start
    rows = read_metrics(out / "run")
    logged = [r for r in rows if "charts/SPS" in r]
    steady = [r["charts/SPS"] for r in logged[1:]]
    probes = [r["perf/probe_seconds"] for r in rows if "perf/probe_seconds" in r]
    reached = rows[-1]["step"] if rows else 0
    rate = sum(steady) / len(steady) if steady else reached / wall
    probe_seconds = min(probes) if probes else 0.0
    num_probes = length // config.probe_every if config.probe_every else 0
    stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "case": name, "device": str(jax.local_devices()[0].device_kind), "unit": config_unit(agent),
        "rate": rate, "rate_includes_compile": not steady, "probe_seconds": probe_seconds,
        "device_peak_mib": stats.get("peak_bytes_in_use", 0) / 2**20 or None,
        "host_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reached": reached, "runs": runs, "length": length,
        "projected_hours": runs * (length / max(rate, 1e-9) + num_probes * probe_seconds) / 3600,
    }  # fmt: skip


def config_unit(agent: str) -> str:
    """What a case's rate counts: updates for students, frames for agents."""
    return "updates/s" if agent == "distill" else "frames/s"


def run_child(name: str, seconds: float, log_frames: int, timeout: float, dry_run: bool) -> dict:
    """Case ``name`` measured in a fresh process (``python -m tdgen.bench.gpu_check --child``)."""
    command = [sys.executable, "-m", "tdgen.bench.gpu_check", "--child", name, "--seconds",
               str(seconds), "--log-frames", str(log_frames)] + (["--dry-run"] if dry_run else [])  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"} if dry_run else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"no result within {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"case": name, "error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(lines[-1])


def table(results: list[dict[str, Any]]) -> str:
    """The cases' results as a Markdown table (an error in place of a failed case's figures)."""
    rows = ["| case | device | rate | probe s | device peak MiB | host RSS MiB | runs | projected h |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        if "error" in r:
            rows.append(f"| {r['case']} | error: {r['error']} | | | | | | |")
            continue
        peak = "-" if r["device_peak_mib"] is None else f"{r['device_peak_mib']:,.0f}"
        rate = ("~" if r["rate_includes_compile"] else "") + f"{r['rate']:,.0f} {r['unit']}"
        rows.append(f"| {r['case']} | {r['device']} | {rate} | {r['probe_seconds']:.2f} | {peak} "
                    f"| {r['host_rss_mib']:,.0f} | {r['runs']} | {r['projected_hours']:,.3g} |")  # fmt: skip
    return "\n".join(rows)


def record(results: list[dict[str, Any]], seconds: float, record_: Any) -> None:
    """Add the cases' results to a benchmark record as one table."""
    rows = record_.table("cases", f"each paper program trained for {seconds:g} s, then SIGTERM",
                         [column("case"), column("device"), column("rate"), column("unit"),
                          column("rate includes compilation"), column("probe", "s"),
                          column("device peak", "MiB"), column("host RSS", "MiB"),
                          column("runs"), column("projected", "h"), column("error")])  # fmt: skip
    for r in results:
        if "error" in r:
            rows.add(r["case"], *[None] * 9, r["error"])
        else:
            rows.add(r["case"], r["device"], r["rate"], r["unit"], r["rate_includes_compile"],
                     r["probe_seconds"], r["device_peak_mib"], r["host_rss_mib"], r["runs"],
                     r["projected_hours"], None)  # fmt: skip


def check(cases: list[str], seconds: float, log_frames: int, timeout: float, dry_run: bool,
          results_dir: Path | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Measure each case in its own process, printing its row as it finishes, then the table;
    with ``results_dir`` (never on a dry run), write the benchmark record ``gpu_check``."""
    from tdgen.bench.record import Record

    rec = Record("gpu_check") if results_dir is not None and not dry_run else None
    results = []
    for name in cases:
        results.append(run_child(name, seconds, log_frames, timeout, dry_run))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    if rec is not None:
        record(results, seconds, rec)
        rec.write(results_dir)
    return results


def _child() -> None:
    """One case in this process (what `run_child` starts): its result as one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True, choices=list(CASES))
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--log-frames", type=int, required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    scale = "smoke" if args.dry_run else "paper"
    print(json.dumps(measure(args.child, scale, args.seconds, args.log_frames)))


if __name__ == "__main__":
    _child()
