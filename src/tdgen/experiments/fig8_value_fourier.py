"""Figure 8 (Appendix C.1): Fourier spectra of a trained DQN's value as a function of time.

From the final replay buffer of a trained DQN we take windows of k consecutive transitions of one
environment column (the replay is laid out [rows, num_envs]; consecutive rows of a column are
consecutive steps of one environment), evaluate Q(x_t, a=0) on each (the paper: "fixing an
arbitrary action") to get V: {1..k} -> R, and take the magnitudes of its discrete Fourier
coefficients (`tdgen.theory.spectral.fourier_spectrum`, frequencies 0..k/2). The rewards r_t of
the same transitions give the reward spectrum shown beside it.

A window never crosses an episode boundary or the ring buffer's write position: every step t in
it but the last must be continued by the next row, i.e. not terminated and next_obs[t] == obs[t+1]
(this also catches time-limit truncations and the wrap of the ring); in the Atari frame ring, not
terminated and not followed by an auto-reset step (its stacks are rebuilt from the ring). Windows whose rewards are all
equal (zero variance, e.g. no reward at all: no non-constant reward energy to compare with) are
skipped, and their count is reported.

The claim's rule: the share of non-constant spectral energy (|F_j|^2, j = 1..k/2) in the lowest
``low_fraction`` of those frequencies, averaged over up to ``num_windows`` windows of a run, is
higher for the value than for the reward in a strict majority of the games that have windows. A
game's check is a Student t interval over its runs (``num_seeds`` seeds): per run, value minus
reward share per window, averaged over that run's windows (windows of one run are not independent
samples and never count as such); a game with windows in fewer than 2 runs has no interval, and
its check is inconclusive.

Runs: for each game and each seed seed, seed + 1, ... (``num_seeds``: at quick scale Figure 12's 3,
so that every game reads runs of one length and nothing is trained; at paper scale Figure 3's), a
DQN run with the game's reward and that seed is reused from a sibling folder
(Figure 3's and Figure 12's runs, newest complete checkpoint) whatever its length; the seeds
without one are trained here as one seed group, a short run each (Figure 3's Tandem settings,
shortened), into ``out_dir/runs``. The figure shows, per game, the mean over runs of each run's
mean spectrum over its windows; the summary lists the runs, their windows and counts per seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tdgen import plots
from tdgen.agents import ensure_runs, get_agent
from tdgen.agents.value_based.frame_replay import HostReplay, candidate_rows, gather_stacks
from tdgen.errors import InputError
from tdgen.experiments.base import HELD, Claim, Experiment, Outcome
from tdgen.experiments.fig3_value_update_rank import SMOKE_SCHEDULE, agent_config, run_name
from tdgen.experiments.fig3_value_update_rank import Config as Figure3
from tdgen.experiments.verdicts import mean_test, share_verdict
from tdgen.runs import RunDir, dropped_fields, find_checkpoint
from tdgen.runs.checkpoint import REPLAY, complete_checkpoints, require_replay
from tdgen.theory.spectral import fourier_spectrum


@dataclass(frozen=True)
class Config:
    """Figure 8 settings; training fields are used only when no run can be reused."""

    games: tuple[str, ...] = (
        "minatar/breakout",
        "minatar/asterix",
        "minatar/space_invaders",
        "minatar/freeway",
    )  # figure rows
    agent: str = "dqn"  # value-based agent whose Q(x, action) is decomposed
    action: int = 0  # the fixed ("arbitrary") action
    k: int = 64  # consecutive states per window (MinAtar breakout episodes last <= ~80 steps)
    num_windows: int = 16  # windows per run, non-overlapping, drawn at random
    num_seeds: int = 3  # runs per game; seeds are seed, seed + 1, ... (Figure 12's at quick)
    low_fraction: float = 0.1  # "low frequencies": the lowest share of the k/2 non-constant ones
    show_frequencies: int = 50  # frequencies 0..50 shown, as the paper's top row
    reuse_from: tuple[str, ...] = (
        "../fig3_value_update_rank/runs",
        "../fig12_update_matrices/runs",
    )  # run folders to reuse, relative to out_dir
    preset: str = "tandem"  # agent preset of a run trained here
    encoder: str | None = None  # network torso (None: the preset's)
    buffer_size: int | None = None  # replay capacity in transitions (None: the preset's)
    frames: int = 50_000  # training frames of a run trained here
    learning_starts: int = 10_000  # frames before the first update
    target_period: int | None = 1_000  # frames between target copies (Dopamine's MinAtar)
    epsilon_decay_frames: int | None = 25_000  # epsilon decay length
    probe_every: int = 0  # no update-rank probes needed here
    probe_k: int = 128
    probe_draws: int = 1
    log_every: int = 10_000
    checkpoint_every: int = 0  # only the final checkpoint
    keep_checkpoints: int = 1

    def __post_init__(self) -> None:
        if self.agent != "dqn":
            raise InputError(f"agent must be 'dqn' (Q-values per action), got {self.agent!r}")
        if self.k < 8 or self.k % 2:
            raise InputError(f"k must be even and at least 8, got {self.k}")
        if not 0 < self.low_fraction < 1:
            raise InputError(f"low_fraction must lie in (0, 1), got {self.low_fraction}")
        if self.num_windows < 1:
            raise InputError(f"num_windows must be positive, got {self.num_windows}")
        if self.num_seeds < 1:
            raise InputError(f"num_seeds must be at least 1, got {self.num_seeds}")

    @classmethod
    def quick(cls) -> Config:
        """MinAtar, four games, Figure 12's quick seeds (3); reuses Figure 3/12 quick runs (100k /
        60k frames) when present, else trains 50k frames per run (learning_starts 10k, epsilon
        decay 25k)."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (Atari, Figure 3's games and seeds) with Figure 3's smoke schedule, so
        it reuses Figure 3's smoke runs: the code paths, not a test of the claim."""
        schedule = {k: v for k, v in SMOKE_SCHEDULE.items() if not k.startswith("probe_")}
        return dataclasses.replace(cls.paper(), **schedule)

    @classmethod
    def paper(cls) -> Config:
        """Atari games and seeds of Figure 3's paper preset, whose runs (and their frame-once
        replay at the final checkpoint) it reuses."""
        return cls(
            games=("atari/Pong", "atari/Boxing", "atari/Seaquest"),
            num_seeds=Figure3.paper().num_seeds,
            reuse_from=("../fig3_value_update_rank/runs",),
            frames=7_000_000,
            learning_starts=100_000,
            target_period=None,
            epsilon_decay_frames=None,
            log_every=100_000,
        )


def low_frequency_share(spectrum: np.ndarray, low_fraction: float) -> np.ndarray:
    """Share of non-constant energy sum_{j=1..m} |F_j|^2 / sum_{j>=1} |F_j|^2, m = ceil(low_fraction
    * (number of non-constant frequencies)). spectrum [..., k/2 + 1] magnitudes; NaN if no energy."""
    power = np.asarray(spectrum, dtype=np.float64)[..., 1:] ** 2
    m = max(1, math.ceil(low_fraction * power.shape[-1]))
    total = power.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, power[..., :m].sum(axis=-1) / total, np.nan)


def contiguous_windows(replay, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (row, column) of every k-step window of one column holding one stretch of an episode.

    Rows are taken in write order (oldest first once the ring is full). Returns time-ordered row
    indices [rows_filled] and the starts as an int array [n, 2] of (position in time order, column).
    """
    order, continued = _time_order(replay)
    # A start s is valid when continued[s .. s+k-2] all hold: a sliding sum over k-1 steps.
    sums = np.cumsum(np.vstack([np.zeros((1, continued.shape[1]), int), continued]), axis=0)
    ok = (sums[k - 1 :] - sums[: -(k - 1)]) == k - 1  # [T-k+1, num_envs]
    starts = np.argwhere(ok)
    return order, starts


def _time_order(replay) -> tuple[np.ndarray, np.ndarray]:
    """Rows oldest first [T], and continued [T-1, num_envs]: step t is followed by step t+1 of
    the same episode. The gymnax replay stores next_obs (a continuation repeats it as the next
    row's obs); the Atari frame ring marks it (valid: not an auto-reset step)."""
    if isinstance(replay, HostReplay):
        first, count = candidate_rows(replay)
        order = (first + np.arange(count + 1)) % replay.slots  # the newest row has its obs
        return order, replay.valid[order[:-1]] & ~replay.terminated[order[:-1]]
    filled, rows = int(replay.filled), replay.obs.shape[0]
    order = np.arange(filled) if filled < rows else (int(replay.position) + np.arange(rows)) % rows
    obs, next_obs = np.asarray(replay.obs)[order], np.asarray(replay.next_obs)[order]
    terminated = np.asarray(replay.terminated)[order]
    same = np.all((next_obs[:-1] == obs[1:]).reshape(len(order) - 1, obs.shape[1], -1), axis=-1)
    return order, same & ~terminated[:-1]


def _observations(replay, rows: np.ndarray, col: int) -> np.ndarray:
    if isinstance(replay, HostReplay):
        return gather_stacks(replay, rows, np.full(len(rows), col))
    return np.asarray(replay.obs)[rows, col]


def value_and_reward_windows(agent, state, config: Config, seed: int) -> dict[str, Any]:
    """``num_windows`` non-overlapping windows with non-constant reward: Q(x_t, action), r_t."""
    replay = state.replay
    params = state.learner.params if hasattr(state, "learner") else state.params  # Atari: host
    order, starts = contiguous_windows(replay, config.k)
    rewards = np.asarray(replay.reward)[order]  # [T, num_envs]
    offsets = np.arange(config.k)
    varied = [s for s in starts if np.ptp(rewards[s[0] + offsets, s[1]]) > 0]
    rng = np.random.default_rng(seed)
    chosen, taken = [], {}
    for i in rng.permutation(len(varied)):
        t, col = varied[i]
        if any(abs(t - u) < config.k for u in taken.get(col, [])):
            continue
        taken.setdefault(col, []).append(t)
        chosen.append((int(t), int(col)))
        if len(chosen) == config.num_windows:
            break
    apply = jax.jit(lambda params, obs: agent.algorithm.greedy_values(agent.apply(params, obs)))
    values, reward_windows = [], []
    for t, col in chosen:
        rows = order[t + offsets]
        q = np.asarray(apply(params, _observations(replay, rows, col)))
        values.append(q[:, config.action])
        reward_windows.append(rewards[t + offsets, col])
    return {
        "windows": chosen,
        "values": np.asarray(values).reshape(len(chosen), config.k),
        "rewards": np.asarray(reward_windows).reshape(len(chosen), config.k),
        "contiguous_windows": len(starts),
        "zero_reward_variance_windows": len(starts) - len(varied),
    }


def _spectra(windows: np.ndarray, k: int) -> np.ndarray:
    """Fourier magnitudes of each window, [n, k/2 + 1] (also for n = 0)."""
    return np.asarray([fourier_spectrum(w) for w in windows]).reshape(len(windows), k // 2 + 1)


def _reusable(config: Config, game: str, seed: int, out_dir: Path) -> Path | None:
    """A complete dense-reward run of the agent on ``game`` with ``seed`` in a sibling folder,
    whose newest checkpoint kept its replay."""
    name = run_name(config.agent, game, "dense", seed)
    for folder in config.reuse_from:
        candidate = Path(os.path.normpath(Path(out_dir) / folder / name))
        if not (candidate / "config.json").exists():
            continue
        stored = RunDir.open(candidate)
        c = stored.config
        if (
            stored.kind == config.agent
            and (c.get("env"), c.get("reward"), c.get("seed")) == (game, "dense", seed)
            and complete_checkpoints(stored.checkpoints)
            and REPLAY not in dropped_fields(find_checkpoint(stored.checkpoints))
        ):
            return candidate
    return None


def find_runs(config: Config, game: str, seed: int, out_dir: Path) -> list[tuple[Path, bool]]:
    """Per seed seed, seed + 1, ... (``num_seeds``): (run directory, reused), a complete
    dense-reward run of the agent on ``game`` reused from a sibling folder, else trained into
    ``out_dir/runs`` (the seeds to train as one seed group)."""
    found: list[tuple[Path, bool]] = []
    missing, missing_dirs = [], []
    for s in range(seed, seed + config.num_seeds):
        reused = _reusable(config, game, s, out_dir)
        if reused is not None:
            found.append((reused, True))
            continue
        run_dir = Path(out_dir) / "runs" / run_name(config.agent, game, "dense", s)
        found.append((run_dir, False))
        missing.append(
            agent_config(config, config.agent, game, "dense", s).replace(keep_replay=True)
        )
        missing_dirs.append(run_dir)
    if missing:
        ensure_runs(config.agent, missing, missing_dirs)
    return found


def measure_run(config: Config, run_dir: Path, seed: int) -> dict[str, Any]:
    """One run: value and reward windows (drawn with ``seed``) and their spectra from its newest
    complete checkpoint."""
    run = RunDir.open(run_dir)
    spec = get_agent(run.kind)
    agent = spec.build(run.load_config(spec.config_cls))
    path = find_checkpoint(run.checkpoints)
    require_replay(path, "Figure 8")
    frames, state = spec.family.load_run_state(agent, run, path)
    w = value_and_reward_windows(agent, state, config, seed)
    return {
        **w,
        "value_spectrum": _spectra(w["values"], config.k),
        "reward_spectrum": _spectra(w["rewards"], config.k),
        "checkpoint_frames": frames,
    }


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """Per game, per seed (``runs``, in seed order): the run, whether it was reused, and its value
    and reward windows with their spectra (`measure_run`, windows drawn with the run's seed)."""
    games = {}
    for game in config.games:
        runs = find_runs(config, game, seed, out_dir)
        games[game] = {
            "runs": [
                {**measure_run(config, run_dir, s), "run": str(run_dir), "reused": reused}
                for s, (run_dir, reused) in enumerate(runs, start=seed)
            ]
        }
    return {"games": games}


def _shares(run: dict[str, Any], config: Config) -> tuple[np.ndarray, np.ndarray]:
    """One run's low-frequency shares of value and reward, per window (NaN: no energy)."""
    width = config.k // 2 + 1
    value_spectrum = np.asarray(run["value_spectrum"], dtype=float).reshape(-1, width)
    reward_spectrum = np.asarray(run["reward_spectrum"], dtype=float).reshape(-1, width)
    return (low_frequency_share(value_spectrum, config.low_fraction),
            low_frequency_share(reward_spectrum, config.low_fraction))  # fmt: skip


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """The value's spectrum concentrates at low frequencies more than the reward's (rule above):
    per game and run, value minus reward low-frequency share per window, averaged over the run's
    windows (the run is the unit; its windows are not independent samples), then the mean over
    the runs with windows and its 95% Student t interval (`verdicts.mean_test` over seeds); a game
    with windows in fewer than 2 runs has no interval, so its check is inconclusive. The claim: a
    strict majority of the games with windows."""
    evidence, checks = {}, {}
    for game, g in measurements["games"].items():
        shares = [_shares(run, config) for run in g["runs"]]
        entry: dict[str, Any] = {"windows": [len(v) for v, _ in shares]}  # per seed
        finite = [np.isfinite(v - r) for v, r in shares]
        with_windows = [(v[f], r[f]) for (v, r), f in zip(shares, finite, strict=True) if f.any()]
        if with_windows:
            value = np.array([v.mean() for v, _ in with_windows])  # per seed, over its windows
            reward = np.array([r.mean() for _, r in with_windows])
            checks[game] = mean_test(value - reward, ">", 0.0)  # [seeds]
            v, r = float(value.mean()), float(reward.mean())
            entry.update(value_low_share=v, reward_low_share=r, value_more_concentrated=v > r,
                         gap_per_seed=[float(x) for x in value - reward])  # fmt: skip
        evidence[game] = entry
    verdict = share_verdict([c.verdict for c in checks.values()], 0.5, strict=True)
    wins, counted = sum(c.verdict == HELD for c in checks.values()), len(checks)
    k_half = config.k // 2
    m = max(1, math.ceil(config.low_fraction * k_half))
    return [
        Claim(
            "value_spectrum_decays_faster_than_reward",
            f"Along k={config.k} consecutive replay states (Q(x, a={config.action}) of the final "
            f"DQN, windows with non-constant reward), the share of non-constant spectral energy "
            f"in the lowest {m} of {k_half} frequencies, averaged over up to {config.num_windows} "
            f"windows of a run, is higher for the value than for the reward (value minus reward "
            f"per window averaged over each run's windows, mean over {config.num_seeds} seeds "
            f"with a 95% t interval over seeds above 0; fewer than 2 seeds with windows give no "
            f"interval) in a strict majority of games ({wins} of {counted} games with windows "
            f"held).",
            verdict == HELD,
            {**evidence, "games_value_more_concentrated": wins, "games_with_windows": counted},
            checks,
            verdict,
        )
    ]


def _mean_spectra(runs: list[dict[str, Any]], key: str) -> np.ndarray:
    """Mean over ``runs`` (each with windows) of each run's mean spectrum over its windows."""
    return np.mean([np.mean(r[key], axis=0) for r in runs], axis=0)


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """Rows: games. Columns: mean |F_j| for j = 0..50 (with the constant), then j >= 1 normalised
    to unit sum so that the decay of value and reward compare on one axis. Each curve is the mean
    over a game's runs of each run's mean spectrum over its windows."""
    games = measurements["games"]
    show = min(config.show_frequencies, config.k // 2)
    with plots.style():
        fig, axes = plots.figure(len(games), 2, width=3.8, height=2.4)
        for i, (game, g) in enumerate(games.items()):
            name = game.split("/")[-1]
            runs = [r for r in g["runs"] if len(r["values"])]
            if not runs:
                for ax in axes[i]:
                    ax.text(0.5, 0.5, "no window with reward", ha="center", transform=ax.transAxes)
                    ax.set_title(name)
                continue
            spectra = {
                f"value Q(x, a={config.action})": _mean_spectra(runs, "value_spectrum"),
                "reward": _mean_spectra(runs, "reward_spectrum"),
            }
            for (label, s), color, style, marker in zip(
                spectra.items(), plots.COLORS, ("-", "--"), ("o", "s"), strict=False
            ):
                j = np.arange(show + 1)
                axes[i, 0].plot(j, s[: show + 1], linestyle=style, color=color, label=label,
                                marker=marker, markersize=2)  # fmt: skip
                rest = s[1 : show + 1] / s[1:].sum()
                axes[i, 1].plot(j[1:], rest, linestyle=style, color=color, label=label,
                                marker=marker, markersize=2)  # fmt: skip
            n = sum(len(r["values"]) for r in runs)
            axes[i, 0].set_title(f"{name}: with k=0 ({len(runs)} runs, {n} windows)")
            axes[i, 1].set_title(f"{name}: without k=0")
            axes[i, 0].set_ylabel("mean |Fourier coefficient|")
            axes[i, 1].set_ylabel("|coefficient| / sum over j>=1")
            for ax in axes[i]:
                ax.set_xlabel("frequency index j (cycles per window)")
        axes[0, 0].legend(loc="upper right")
        fig.suptitle(
            f"Spectra along k={config.k} consecutive replay states (final DQN checkpoint; mean "
            "over runs of each run's mean over its windows)",
            fontsize=9,
        )
        return [plots.save(fig, Path(out_dir) / "fig8_value_fourier.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Reuse (or train) ``num_seeds`` DQN runs per game, decompose value and reward windows,
    check the claim. The summary lists, per game, each field per seed (in seed order)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    fields = ("run", "reused", "checkpoint_frames", "windows", "contiguous_windows",
              "zero_reward_variance_windows")  # fmt: skip
    summary = {
        game: {key: [r[key] for r in g["runs"]] for key in fields}
        for game, g in measurements["games"].items()
    }
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig8_value_fourier",
    paper_ref="Figure 8, Appendix C.1",
    description="Fourier spectra of a trained DQN's value and of the reward along consecutive "
    "replay states, with and without the constant term",
    config_type=Config,
    run=run,
    kind="deep_rl",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "low_frequency_share", "measure", "run"]
