"""Figure 3 (Section 5.1, H1): the update rank of DQN and C51 rises with training on dense rewards.

Each agent is trained on each game twice, with the game's reward ("dense") and with every reward
zeroed ("zero", the paper's no-reward control), for several seeds. The agents' own probes
(`tdgen.agents`, Appendix B.1: k transitions from the replay buffer, current parameters and
optimiser state, max over actions, C51's expectation first, eps = 0.1) give the update rank every
``probe_every`` frames, and the same for a freshly initialised network on the same transitions
("random parameters"). The first probe is taken at ``learning_starts`` frames, before the first
update: that is the rank at initialisation.

Runs are ordinary run directories (`tdgen.agents.train`) under ``out_dir/runs/<name>``, so they can
be inspected, resumed and reused (Figure 12 reads them from a sibling folder). A run directory that
already holds the same config is reused when complete and resumed when not.

Quick scale (MinAtar breakout) uses the paper's base agent, Tandem DQN's centred RMSProp
(`ValueBasedConfig.tandem`), with three schedules shortened to fit 100k frames, because the Atari
schedules would leave the run without a single target copy and almost fully exploring:
learning_starts 20k frames (Tandem's value, kept; the first probe sits there), target period 1000
frames (Dopamine's MinAtar setting; Tandem's 120k is longer than the run), epsilon decay over 50k
frames (Tandem's 1M is 10x the run; 50k leaves the last 30k frames near-greedy). Zeroed-reward
breakout still carries a learning signal through termination: a transition that loses the ball
bootstraps from zero while every other one bootstraps from the network's own (non-zero) values, so
until Q has collapsed to zero the greedy policy prefers staying alive. Measured at quick scale the
game score of the zero-reward runs rose from 0.4 to ~2.4 (DQN) and ~1.6 (C51) against ~4.5 and
~3.5 with the game's reward; the returns figure shows it beside the ranks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents import agents_of, config_class, ensure_runs
from tdgen.errors import InputError
from tdgen.experiments.base import Claim, Experiment, Outcome, PlannedRun
from tdgen.experiments.verdicts import mean_test
from tdgen.runs.metrics import read_metrics

RANK = "interference/update_rank"
RANK_RANDOM = "interference/update_rank_random"
RETURN = "charts/episodic_return"


@dataclass(frozen=True)
class Config:
    """Figure 3 settings; training fields left None keep the value of the agent preset."""

    games: tuple[str, ...] = ("minatar/breakout",)  # environments, dense-reward games
    agents: tuple[str, ...] = ("dqn", "c51")  # value-based agents (tdgen.agents.registry)
    rewards: tuple[str, ...] = ("dense", "zero")  # the game's reward and the no-reward control
    num_seeds: int = 4  # runs per (agent, game, reward); seeds are seed, seed + 1, ...
    preset: str = "tandem"  # agent preset (Tandem DQN: the paper's base, centred RMSProp)
    encoder: str | None = None  # network torso (None: the preset's, MinAtar or Nature CNN)
    buffer_size: int | None = None  # replay capacity in transitions (None: the preset's)
    frames: int = 100_000  # training frames per run
    learning_starts: int = 20_000  # frames before the first update; the first probe lands here
    target_period: int | None = 1_000  # frames between target copies (None: the preset's)
    epsilon_decay_frames: int | None = 50_000  # epsilon decay length (None: the preset's)
    probe_every: int = 20_000  # frames between update-rank probes (the paper: 1e5)
    probe_k: int = 128  # transitions per update matrix (k x k)
    probe_draws: int = 2  # independent draws of k transitions per probe, ranks averaged
    log_every: int = 10_000  # frames between metric lines (returns)
    checkpoint_every: int = 0  # frames between checkpoints (0: only the last, for Figure 8)
    keep_checkpoints: int = 1  # newest complete checkpoints kept per run
    late_probes: int = 2  # "after training": the mean over the last late_probes probes
    rise_margin: float = 2.0  # dense: late rank - first-probe rank must exceed this
    control_margin: float = 2.0  # zero reward: |late rank - random-params rank| at most this

    def __post_init__(self) -> None:
        value_based = agents_of("value_based")
        unknown = sorted(set(self.agents) - set(value_based))
        if unknown:
            raise InputError(f"agents {unknown} unknown: choose from {', '.join(value_based)}")
        if set(self.rewards) != {"dense", "zero"}:
            raise InputError(f"rewards must be ('dense', 'zero'), got {self.rewards}")
        if self.num_seeds < 1 or self.late_probes < 1:
            raise InputError("num_seeds and late_probes must be at least 1")
        if (
            self.probe_every < 1
            or self.learning_starts % self.probe_every
            or (self.learning_starts < self.probe_every)
        ):
            raise InputError(
                f"learning_starts ({self.learning_starts}) must be a multiple of probe_every "
                f"({self.probe_every}), and at least one, so that a probe at learning_starts sees "
                "the network at initialisation"
            )
        probes_after = (self.frames - self.learning_starts) // self.probe_every
        if probes_after < self.late_probes:
            raise InputError(
                f"frames {self.frames} leave {probes_after} probes after learning_starts, fewer "
                f"than late_probes ({self.late_probes}): raise frames or lower probe_every"
            )

    @classmethod
    def quick(cls) -> Config:
        """MinAtar breakout, 2 agents x 2 rewards x 4 seeds x 100k frames (module docstring)."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (Atari, Tandem DQN/C51, its games, rewards and seeds) cut to four
        probe iterations of 256 frames, a 2,048-transition replay and k = 16: every code path
        of the paper run in minutes, not a test of the claim."""
        return dataclasses.replace(cls.paper(), **SMOKE_SCHEDULE)

    @classmethod
    def paper(cls) -> Config:
        """Atari as Figure 3: ~7M frames (> 50 iterations of 1e5), a probe per iteration, the Tandem
        schedules unchanged except learning_starts = one iteration (a probe at initialisation),
        checkpoints every 1M frames, the newest two kept (Figure 8 reads the final one's replay;
        each Atari checkpoint holds a 6.6 GiB replay)."""
        return cls(
            games=("atari/Pong", "atari/Boxing", "atari/Seaquest"),
            num_seeds=5,  # every deep-RL claim gets at least 5 seeds at paper scale
            frames=7_000_000,
            learning_starts=100_000,
            target_period=None,
            epsilon_decay_frames=None,
            probe_every=100_000,
            log_every=100_000,
            checkpoint_every=1_000_000,
            keep_checkpoints=2,  # the final (Figure 8 reads its replay) and one to resume from
            late_probes=3,
        )


# The smoke scale's cut of the value-based schedules (Figures 3, 12 and 8): a probe at
# initialisation and three after it, target copies and checkpoints inside the run, update
# matrices of k = 16 (one draw: a Nature-CNN probe at k = 128 costs more than the whole cut run).
SMOKE_SCHEDULE = dict(frames=1_024, learning_starts=256, probe_every=256, log_every=256,
                      target_period=256, checkpoint_every=512, buffer_size=2_048, probe_k=16,
                      probe_draws=1)  # fmt: skip


def run_name(agent: str, game: str, reward: str, seed: int) -> str:
    """The run directory name, e.g. ``dqn_minatar-breakout_dense_s0``."""
    return f"{agent}_{game.replace('/', '-')}_{reward}_s{seed}"


def agent_config(config: Any, agent: str, game: str, reward: str, seed: int):
    """The agent config of one run: the preset for ``game`` with this experiment's fields.

    ``config`` is any experiment config with the training fields of `Config` (Figure 12 shares it).
    """
    overrides = {
        "reward": reward, "frames": config.frames, "learning_starts": config.learning_starts,
        "probe_every": config.probe_every, "probe_k": config.probe_k,
        "probe_draws": config.probe_draws,
        "probe_center": "none",  # momentum-free RMSProp: no shared drift to remove
        "log_every": config.log_every, "checkpoint_every": config.checkpoint_every,
        "keep_checkpoints": config.keep_checkpoints, "seed": seed,
        "keep_replay": agent == "dqn" and reward == "dense",  # Figure 8 reads their final replay
    }  # fmt: skip
    for name in ("target_period", "epsilon_decay_frames", "encoder", "buffer_size"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    return config_class(agent).preset(config.preset, game, **overrides)


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    """Probe frames, update ranks (trained and random parameters) and logged returns of a run."""
    rows = read_metrics(run_dir)
    probes = [r for r in rows if RANK in r]
    returns = [r for r in rows if RETURN in r]
    return {
        "frames": [r["step"] for r in probes],
        "update_rank": [float(r[RANK]) for r in probes],
        "update_rank_random": [float(r[RANK_RANDOM]) for r in probes],
        "return_frames": [r["step"] for r in returns],
        "episodic_return": [float(r[RETURN]) for r in returns],
    }


def curve_key(agent: str, game: str, reward: str) -> str:
    return f"{agent}/{game}/{reward}"


def seed_group(
    config: Config, agent: str, game: str, reward: str, seed: int, out_dir: Path
) -> list[PlannedRun]:
    """The runs of one (agent, game, reward), seeds seed, seed + 1, ...: trained as one group."""
    names = {s: run_name(agent, game, reward, s) for s in range(seed, seed + config.num_seeds)}
    return [PlannedRun(name, agent, agent_config(config, agent, game, reward, s),
                       Path(out_dir) / "runs" / name) for s, name in names.items()]  # fmt: skip


def planned_runs(config: Config, seed: int, out_dir: Path) -> list[PlannedRun]:
    """Every run `measure` trains, in its order: games, agents, rewards, seeds."""
    return [run for game in config.games for agent in config.agents for reward in config.rewards
            for run in seed_group(config, agent, game, reward, seed, out_dir)]  # fmt: skip


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """Train (or reuse) every run; curves[agent/game/reward] = per-seed probe series."""
    curves: dict[str, Any] = {}
    for game in config.games:
        for agent in config.agents:
            for reward in config.rewards:
                group = seed_group(config, agent, game, reward, seed, out_dir)
                run_dirs = ensure_runs(agent, [r.config for r in group], [r.run_dir for r in group])
                per_seed = [read_curve(run_dir) for run_dir in run_dirs]
                curves[curve_key(agent, game, reward)] = {
                    "frames": per_seed[0]["frames"],
                    "update_rank": [c["update_rank"] for c in per_seed],
                    "update_rank_random": [c["update_rank_random"] for c in per_seed],
                    "return_frames": per_seed[0]["return_frames"],
                    "episodic_return": [c["episodic_return"] for c in per_seed],
                    "runs": [r.name for r in group],
                }
    return {"curves": curves}


def _late(series: list[list[float]], late: int) -> float:
    """Mean over seeds and over the last ``late`` probes."""
    return float(np.mean([s[-late:] for s in series]))


def _at(series: list[list[float]], index: int) -> float:
    """Mean over seeds of probe ``index``."""
    return float(np.mean([s[index] for s in series]))


def summarise(measurements: dict[str, Any], config: Config) -> dict[str, dict[str, float]]:
    """Per agent/game/reward: rank at the first probe, late rank, late random-params rank, returns."""
    table = {}
    for key, c in measurements["curves"].items():
        # The rank at initialisation: the probe at learning_starts, the last before any update.
        init = c["frames"].index(config.learning_starts)
        returns = [r for r in c["episodic_return"] if r]
        table[key] = {
            "rank_at_initialisation": _at(c["update_rank"], init),
            "rank_late": _late(c["update_rank"], config.late_probes),
            "rank_random_at_initialisation": _at(c["update_rank_random"], init),
            "rank_random_late": _late(c["update_rank_random"], config.late_probes),
            "return_first_log": float(np.mean([r[0] for r in returns]))
            if returns
            else float("nan"),
            "return_last_logs": float(np.mean([r[-2:] for r in returns]))
            if returns
            else float("nan"),
            "late_probe_frames": c["frames"][-config.late_probes :],
            "initialisation_probe_frames": c["frames"][init],
        }
    return table


def _late_values(series: list[list[float]], late: int) -> np.ndarray:
    """The last ``late`` probes of every seed: [seeds, late]."""
    return np.array([s[-late:] for s in series], dtype=float)


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Figure 3's claims, per (agent, game), each holding only if it holds for every pair.

    "late" = the last ``late_probes`` probes; "first probe" = the probe at learning_starts (the
    network at initialisation, before any update). Each check is the mean over seeds with its 95%
    t interval over seeds, late probes averaged within a seed (`verdicts.mean_test`): the rise
    and the control are differences within a run (paired per seed and probe: Student t), the
    dense-minus-zero gap a difference of two groups of runs (Welch t).
    """
    table = summarise(measurements, config)
    curves = measurements["curves"]
    rise, control, separation = {}, {}, {}
    for game in config.games:
        for agent in config.agents:
            dense = curves[curve_key(agent, game, "dense")]
            zero = curves[curve_key(agent, game, "zero")]
            init = dense["frames"].index(config.learning_starts)
            dense_late = _late_values(dense["update_rank"], config.late_probes)
            zero_late = _late_values(zero["update_rank"], config.late_probes)
            dense_init = np.array([s[init] for s in dense["update_rank"]], dtype=float)
            pair = f"{agent}/{game}"
            rise[pair] = mean_test(dense_late - dense_init[:, None], ">", config.rise_margin)
            control[pair] = mean_test(
                zero_late - _late_values(zero["update_rank_random"], config.late_probes),
                "|x|<=", config.control_margin,
            )  # fmt: skip
            separation[pair] = mean_test(dense_late, ">", config.rise_margin, minus=zero_late)
    late = (
        f"mean over {config.num_seeds} seeds and the last {config.late_probes} probes "
        f"({config.probe_draws} draws of k={config.probe_k} per probe; 95% t interval over "
        "seeds)"
    )
    return [
        Claim.measured(
            "dense_rank_rises_above_initialisation",
            f"On every dense-reward game, for every agent, the update rank after training ({late}) "
            f"exceeds the update rank at the first probe (at learning_starts, before any update) "
            f"by more than {config.rise_margin:g}.",
            rise,
            {"table": {k: v for k, v in table.items() if k.endswith("/dense")}},
        ),
        Claim.measured(
            "zero_reward_rank_stays_near_random_parameters",
            f"With every reward zeroed, for every agent and game, the update rank after training "
            f"({late}) lies within {config.control_margin:g} of the random-parameters update rank "
            f"on the same probes.",
            control,
            {"table": {k: v for k, v in table.items() if k.endswith("/zero")}},
        ),
        Claim.measured(
            "dense_rank_above_zero_reward_rank",
            f"For every agent and game, the update rank after training ({late}) with the game's "
            f"reward exceeds that with zeroed reward by more than {config.rise_margin:g}.",
            separation,
        ),
    ]


def _band(ax, frames, series, label, **style):
    values = np.asarray(series, dtype=float)
    x = np.asarray(frames, dtype=float) / 1e3
    (line,) = ax.plot(x, values.mean(axis=0), label=label, **style)
    ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """Update rank vs frames (rows: agents, columns: games) and returns, min-max over seeds."""
    curves = measurements["curves"]
    names = []
    rows, cols = len(config.agents), len(config.games)
    with plots.style():
        for quantity in ("rank", "return"):
            fig, axes = plots.figure(rows, cols, width=3.6, height=2.6)
            for i, agent in enumerate(config.agents):
                for j, game in enumerate(config.games):
                    ax = axes[i, j]
                    dense = curves[curve_key(agent, game, "dense")]
                    zero = curves[curve_key(agent, game, "zero")]
                    if quantity == "rank":
                        _band(ax, dense["frames"], dense["update_rank"], "game reward",
                              color=plots.COLORS[0], linestyle="-")  # fmt: skip
                        _band(ax, zero["frames"], zero["update_rank"], "zero reward",
                              color=plots.COLORS[1], linestyle="--")  # fmt: skip
                        random = dense["update_rank_random"] + zero["update_rank_random"]
                        _band(ax, dense["frames"], random, "random parameters",
                              color=plots.COLORS[2], linestyle=":")  # fmt: skip
                        ax.axvline(config.learning_starts / 1e3, color="0.6", lw=0.8)
                        ax.set_ylabel(f"update rank (k={config.probe_k}, eps=0.1)")
                    else:
                        _band(ax, dense["return_frames"], dense["episodic_return"],
                              "game reward", color=plots.COLORS[0], linestyle="-")  # fmt: skip
                        _band(ax, zero["return_frames"], zero["episodic_return"],
                              "zero reward (game score shown)", color=plots.COLORS[1],
                              linestyle="--")  # fmt: skip
                        ax.set_ylabel("episodic return (game score)")
                    ax.set_xlabel("frames (thousands)")
                    ax.set_title(f"{agent.upper()}, {game}")
            axes[0, 0].legend(loc="upper left")
            what = "Update rank" if quantity == "rank" else "Training returns"
            fig.suptitle(
                f"{what}: mean over {config.num_seeds} seeds, shaded min-max"
                + ("; grey line: first update" if quantity == "rank" else ""),
                fontsize=9,
            )
            suffix = "" if quantity == "rank" else "_returns"
            names.append(plots.save(fig, Path(out_dir) / f"fig3_value_update_rank{suffix}.png"))
    return names


def returns_note(table: dict[str, dict[str, Any]]) -> str:
    """What the zero-reward control learned, in game score: it is not a no-learning control."""
    parts = [
        f"{name.removesuffix('/zero')}: {row['return_first_log']:.2f} -> {row['return_last_logs']:.2f}"
        f" (game reward: {table[name.removesuffix('zero') + 'dense']['return_last_logs']:.2f})"
        for name, row in table.items()
        if name.endswith("/zero") and name.removesuffix("zero") + "dense" in table
    ]
    return (
        "Runs with zeroed reward are trained on zero reward but scored by the game's reward, and "
        "still learn from episode termination (bootstrapping stops when the episode ends): game "
        "score from the first to the last logs, " + "; ".join(parts) + "."
    )


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Train (or reuse) every run, plot Figure 3's bottom row, check its claims."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    table = summarise(measurements, config)
    summary = {"table": table, "runs_dir": str(out_dir / "runs"), "note": returns_note(table)}
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig3_value_update_rank",
    paper_ref="Figure 3, Section 5.1",
    description="Update rank of DQN and C51 over training, game reward vs zero reward vs random "
    "parameters (H1)",
    config_type=Config,
    run=run,
    kind="deep_rl",
    planned_runs=planned_runs,
)

__all__ = ["EXPERIMENT", "Config", "agent_config", "check_claims", "measure", "planned_runs", "run"]
