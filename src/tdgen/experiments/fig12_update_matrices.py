"""Figure 12 (Appendix D.2): update matrices of DQN and C51 over training on four games.

Heatmaps of the update matrices A[i, j] = v_{theta_i}(x_j) - v_theta(x_j) (Eq. 21) that the agents'
probes save (`probes/step_<frames>.npz`, first draw of k transitions sampled uniformly from the
replay buffer), at several training iterations, on games of differing reward density (MinAtar:
breakout, asterix, freeway, space_invaders; the paper: Atari). Rows and columns are ordered by
clustering (`tdgen.interference.plot_update_matrix`), as in the paper "to improve readability".

The training settings are those of Figure 3 (`fig3_value_update_rank.agent_config`), so a Figure 3
run of the same agent, game and seed in ``reuse_from`` (a sibling folder by default) is read instead
of trained again when its config matches on every field that shapes the trajectory and it holds
the probes shown. Otherwise the run is trained into ``out_dir/runs``.

Appendix D.2 observes that "even early in training, the DQN and C51 agents both exhibit
significant overfitting": an update at one transition moves mostly that transition's own value, so
the update matrix concentrates on its diagonal. The rule, stated before measuring: per agent,
pooled over the games (mean over games), the diagonal's share of the squared mass of A
(`diagonal_share`) at the shown frames after initialisation exceeds that of a freshly initialised
network on the same transitions (the probes' `update_matrix_random`) by more than
``diagonal_margin``, with a 95% t interval over seeds (probes averaged within a seed; pooled over
games: the pooled t of `tdgen.stats`). It can fail: a trained network whose updates generalise
more than a random one's (off-diagonal mass) makes the gap negative. That the heatmaps show what
was measured (the update rank recomputed from every saved matrix equals the logged one) is
bookkeeping, checked by the tests and kept in the summary.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents import agents_of, ensure_runs
from tdgen.errors import InputError, read_npz
from tdgen.experiments.base import Claim, Experiment, Outcome
from tdgen.experiments.fig3_value_update_rank import (
    SMOKE_SCHEDULE,
    agent_config,
    read_curve,
    run_name,
)
from tdgen.experiments.verdicts import mean_test
from tdgen.interference import plot_update_matrix, update_rank
from tdgen.runs import RunDir
from tdgen.runs.reuse import is_complete

# Fields that change neither the trajectory nor a probe at a given frame (probe keys derive from
# the training state alone), so a run differing only in these can stand in for ours.
SCHEDULE_ONLY = ("frames", "probe_every", "log_every", "checkpoint_every", "keep_checkpoints")
EPS = 0.1  # update-rank threshold of Appendix B.1, as the agents' probes use


@dataclass(frozen=True)
class Config:
    """Figure 12 settings; training fields as in Figure 3 (None keeps the preset's value)."""

    games: tuple[str, ...] = (
        "minatar/breakout",
        "minatar/asterix",
        "minatar/freeway",
        "minatar/space_invaders",
    )  # games of differing reward density, heatmap rows
    agents: tuple[str, ...] = ("dqn", "c51")  # one figure per agent
    show_frames: tuple[int, ...] = (20_000, 40_000, 60_000)  # probes shown, heatmap columns
    preset: str = "tandem"  # agent preset (Tandem DQN, centred RMSProp)
    encoder: str | None = None  # network torso (None: the preset's, MinAtar or Nature CNN)
    buffer_size: int | None = None  # replay capacity in transitions (None: the preset's)
    frames: int = 60_000  # training frames per run (at least the last shown frame)
    learning_starts: int = 20_000  # frames before the first update
    target_period: int | None = 1_000  # frames between target copies (None: the preset's)
    epsilon_decay_frames: int | None = 50_000  # epsilon decay length (None: the preset's)
    probe_every: int = 20_000  # frames between probes
    probe_k: int = 128  # transitions per update matrix (k x k)
    probe_draws: int = 2  # draws per probe (the heatmap shows the first; ranks use all)
    log_every: int = 10_000  # frames between metric lines
    checkpoint_every: int = 0  # frames between checkpoints (0: only the last)
    keep_checkpoints: int = 1  # newest complete checkpoints kept per run
    reuse_from: str = "../fig3_value_update_rank/runs"  # runs to reuse, relative to out_dir
    num_seeds: int = 3  # runs per (agent, game); seeds are seed, seed + 1, ... (Figure 3's)
    diagonal_margin: float = 0.0  # trained minus random-parameters diagonal share must exceed it

    def __post_init__(self) -> None:
        if self.num_seeds < 1:
            raise InputError(f"num_seeds must be at least 1, got {self.num_seeds}")
        if not any(f > self.learning_starts for f in self.show_frames):
            raise InputError(
                f"show_frames {self.show_frames} need one after learning_starts "
                f"({self.learning_starts}): the claim reads the trained network there"
            )
        value_based = agents_of("value_based")
        unknown = sorted(set(self.agents) - set(value_based))
        if unknown:
            raise InputError(f"agents {unknown} unknown: choose from {', '.join(value_based)}")
        bad = [f for f in self.show_frames if f % self.probe_every or not 0 < f <= self.frames]
        if bad or not self.show_frames:
            raise InputError(
                f"show_frames {bad or '()'} must be non-empty multiples of probe_every "
                f"({self.probe_every}) within frames ({self.frames})"
            )

    @classmethod
    def quick(cls) -> Config:
        """MinAtar, 3 seeds x 60k frames, probes at initialisation (20k), 40k and 60k; Figure 3's
        settings, so its breakout runs are reused when present."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (Atari, its four games) with Figure 3's smoke schedule, heatmaps at
        256, 512 and 1,024 frames: the code paths, not a test of the observation."""
        return dataclasses.replace(cls.paper(), show_frames=(256, 512, 1_024),
                                   **{k: v for k, v in SMOKE_SCHEDULE.items()})  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """Atari, the first 7M frames as in Figure 12 (iterations of 1e5 frames), the settings of
        Figure 3's paper preset."""
        return cls(
            games=("atari/Pong", "atari/Boxing", "atari/Seaquest", "atari/MontezumaRevenge"),
            show_frames=(100_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 7_000_000),
            frames=7_000_000,
            learning_starts=100_000,
            target_period=None,
            epsilon_decay_frames=None,
            probe_every=100_000,
            log_every=100_000,
            checkpoint_every=1_000_000,
            keep_checkpoints=2,  # the final (Figure 8 reads its replay) and one to resume from
            num_seeds=5,  # Figure 3's paper seeds, so its runs are reused
        )


def probe_path(run_dir: Path, frames: int) -> Path:
    return Path(run_dir) / "probes" / f"step_{frames:012d}.npz"


def reusable(run_dir: Path, agent: str, wanted: dict[str, Any], show: tuple[int, ...]) -> bool:
    """True when ``run_dir`` is a complete run of ``agent`` matching ``wanted`` on every field
    but the schedule-only ones, and holds a probe at every frame of ``show``."""
    if not (Path(run_dir) / "config.json").exists():
        return False
    stored = RunDir.open(run_dir)
    same = all(stored.config.get(k) == v for k, v in wanted.items() if k not in SCHEDULE_ONLY)
    return (
        stored.kind == agent
        and same
        and is_complete(run_dir, stored.config["frames"])
        and all(probe_path(run_dir, f).exists() for f in show)
    )


def _runs(config: Config, agent: str, game: str, seed: int, out_dir: Path) -> list[Any]:
    """Per seed: (run directory, reused); Figure 3's runs where reusable, the rest trained as one
    seed group into ``out_dir/runs``."""
    found, missing = [], []
    for s in range(seed, seed + config.num_seeds):
        cfg, name = agent_config(config, agent, game, "dense", s), run_name(agent, game, "dense", s)
        # normpath: out_dir/../x must resolve even before out_dir exists
        candidate = Path(os.path.normpath(out_dir / config.reuse_from / name))
        if reusable(candidate, agent, cfg.to_dict(), config.show_frames):
            found.append((candidate, True))
        else:
            found.append((out_dir / "runs" / name, False))
            missing.append(cfg)
    if missing:
        ensure_runs(agent, missing, [d for d, reused in found if not reused])
    return found


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """Per agent/game: the first seed's shown matrices; per seed the logged and recomputed ranks
    and the diagonal shares of the trained and random-parameters matrices (mean over draws)."""
    out_dir = Path(out_dir)
    panels: dict[str, Any] = {}
    for agent in config.agents:
        for game in config.games:
            runs = _runs(config, agent, game, seed, out_dir)
            per_seed = [_read_probes(run_dir, config) for run_dir, _ in runs]
            returns = [read_curve(d)["episodic_return"] for d, _ in runs]
            panels[f"{agent}/{game}"] = {
                "runs": [str(d) for d, _ in runs],
                "reused": [reused for _, reused in runs],
                "frames": list(config.show_frames),
                "matrices": per_seed[0]["matrices"],
                **{key: [p[key] for p in per_seed] for key in per_seed[0] if key != "matrices"},
                "return_last_log": [r[-1] if r else float("nan") for r in returns],
            }
    return {"panels": panels}


def _read_probes(run_dir: Path, config: Config) -> dict[str, list]:
    """The shown probes of one run: first-draw matrices, ranks, diagonal shares per frame."""
    logged = dict(zip(*[read_curve(run_dir)[k] for k in ("frames", "update_rank")], strict=True))
    out: dict[str, list] = {k: [] for k in ("matrices", "update_rank_logged",
                                            "update_rank_recomputed", "diagonal_share",
                                            "diagonal_share_random")}  # fmt: skip
    for frames in config.show_frames:
        probe = read_npz(probe_path(run_dir, frames), "a probe of update matrices",
                         ("update_matrix", "update_matrix_random"))  # fmt: skip
        draws = probe["update_matrix"]
        out["matrices"].append(draws[0])
        out["update_rank_logged"].append(logged[frames])
        out["update_rank_recomputed"].append(
            float(np.mean([int(update_rank(a, EPS)) for a in draws]))
        )
        out["diagonal_share"].append(float(np.mean([diagonal_share(a) for a in draws])))
        out["diagonal_share_random"].append(
            float(np.mean([diagonal_share(a) for a in probe["update_matrix_random"]]))
        )
    return out


def diagonal_share(A: np.ndarray) -> float:
    """sum_i A_ii^2 / sum_ij A_ij^2: 1 for a tabular (diagonal) update matrix, ~1/k for rank one
    with equal entries."""
    A = np.asarray(A, dtype=np.float64)
    total = float(np.sum(A**2))
    return float(np.sum(np.diag(A) ** 2) / total) if total > 0 else float("nan")


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Appendix D.2's observation, per agent pooled over games (module docstring): the diagonal
    share of the trained update matrix minus that of random parameters on the same transitions,
    at the shown frames after learning_starts, per seed and probe."""
    trained = [i for i, f in enumerate(config.show_frames) if f > config.learning_starts]
    checks, evidence = {}, {}
    for agent in config.agents:
        gaps = []
        for game in config.games:
            p = measurements["panels"][f"{agent}/{game}"]
            gap = np.asarray(p["diagonal_share"], float) - np.asarray(
                p["diagonal_share_random"], float
            )
            gaps.append(gap[:, trained])  # [seeds, shown frames after initialisation]
            evidence[f"{agent}/{game}"] = {
                "diagonal_share": float(np.mean(np.asarray(p["diagonal_share"])[:, trained])),
                "diagonal_share_random": float(
                    np.mean(np.asarray(p["diagonal_share_random"])[:, trained])
                ),
                "gap": float(np.mean(gaps[-1])),
            }
        checks[f"{agent} (pooled over {len(config.games)} games)"] = mean_test(
            gaps, ">", config.diagonal_margin
        )
    frames = [config.show_frames[i] for i in trained]
    return [
        Claim.measured(
            "updates_concentrate_on_the_diagonal_early",
            f'Appendix D.2 ("even early in training, the DQN and C51 agents both exhibit '
            f'significant overfitting"): for every agent, pooled over {list(config.games)}, the '
            f"diagonal's share of the squared mass of the update matrix (k={config.probe_k}, mean "
            f"over {config.probe_draws} draws) at frames {frames} exceeds that of freshly "
            f"initialised parameters on the same transitions by more than "
            f"{config.diagonal_margin:g} (mean over {config.num_seeds} seeds and those probes, "
            "95% t interval over seeds).",
            checks,
            evidence,
        )
    ]


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """One figure per agent: rows games, columns iterations, clustered heatmaps."""
    names = []
    rows, cols = len(config.games), len(config.show_frames)
    with plots.style():
        for agent in config.agents:
            fig, axes = plots.figure(rows, cols, width=3.3, height=2.7)
            for i, game in enumerate(config.games):
                p = measurements["panels"][f"{agent}/{game}"]
                for j, frames in enumerate(config.show_frames):
                    ax = axes[i, j]
                    plot_update_matrix(p["matrices"][j], ax=ax)
                    ax.grid(False)
                    ax.set_title(
                        f"{game.split('/')[-1]}, {frames / 1e3:g}k frames: "
                        f"rank {p['update_rank_logged'][0][j]:g}",
                        fontsize=8,
                    )
                    if j:
                        ax.set_ylabel("")
                    if i < rows - 1:
                        ax.set_xlabel("")
            fig.suptitle(
                f"{agent.upper()} update matrices (k={config.probe_k}, clustered order; "
                f"first probe at {config.learning_starts / 1e3:g}k frames = initialisation)",
                fontsize=9,
            )
            names.append(plots.save(fig, Path(out_dir) / f"fig12_update_matrices_{agent}.png"))
    return names


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Train (or reuse) the seeds of every agent and game, plot the heatmaps (first seed), check
    the claim."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    summary = {
        key: {k: v for k, v in p.items() if k != "matrices"}
        for key, p in measurements["panels"].items()
    }
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig12_update_matrices",
    paper_ref="Figure 12, Appendix D.2",
    description="Update matrices of DQN and C51 over training on four games of differing reward "
    "density, states ordered by clustering",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "diagonal_share", "measure", "run"]
