"""Figure 4 (Section 5.2, H2): update rank of the actor and critic networks of PPO and DAAC.

PPO shares one encoder between actor and critic; DAAC keeps them apart, so its critic is trained by
TD-style (GAE) value targets alone. H2: networks trained by TD show weaker interference, i.e. a
higher update rank, than networks shaped by the policy gradient. The paper: the DAAC critic has the
highest update rank early in training and the actors the lowest.

Every run's own probes (`tdgen.agents.actor_critic.probe`) give, every ``probe_every`` frames,
the update rank of the actor (one optimiser step on one sample's actor loss, read through the
change in action probabilities, reduce="policy") and of the critic (the value loss, read through
V), on k samples of the latest rollout, with the agent's optimiser state, uncentred
(probe_center "none": the paper's definition, one step of the optimiser as it is; Adam's shared
momentum step is part of it), and the same for freshly initialised networks. Actor entries are
norms of probability changes (never negative), critic entries signed value changes: the figure
puts them on one axis as the paper does, but the claims compare critic with critic and actor with
actor as well as across.

Quick scale: ProcGen's IMPALA CNN trains at ~10^2 frames/s on 2 CPU cores, so the quick scale
runs the `minatar` presets on gymnax MinAtar: SpaceInvaders, where the effect was seen within
~200k frames before this experiment was written, and Breakout, where an earlier scratch run showed
another ordering (so the quick verdict is not that of a game chosen because it showed the
effect). Each claim is checked per game and pooled over the two (mean over games). Paper scale: the ProcGen games the paper names
(bigfish, heist, miner), 10 training levels, 25M frames, 5 seeds (the paper: 4; tdgen gives every
deep-RL claim at least 5 at paper scale).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdgen import plots
from tdgen.agents import config_class, ensure_runs
from tdgen.errors import InputError
from tdgen.experiments.base import Claim, Experiment, Outcome, PlannedRun
from tdgen.experiments.verdicts import Check, mean_test
from tdgen.interference.keys import read_update_rank
from tdgen.runs import RunDir
from tdgen.runs.metrics import read_metrics

AGENTS = ("ppo", "daac")
NETWORKS = ("actor", "critic")
SERIES = tuple(f"{a}/{n}" for a in AGENTS for n in NETWORKS)  # ppo/actor, ppo/critic, ...


@dataclass(frozen=True)
class Config:
    """Figure 4 settings; agent fields not listed keep the preset's values."""

    games: tuple[str, ...] = ("minatar/space_invaders", "minatar/breakout")  # environments
    preset: str = "minatar"  # actor-critic preset (tdgen.agents.actor_critic.config)
    num_seeds: int = 3  # runs per (agent, game); seeds are seed, seed + 1, ...
    frames: int = 196_608  # training frames per run (24 iterations of 64 x 128)
    num_levels: int = 0  # training levels (0: the full distribution)
    probe_every: int = 32_768  # frames between probes
    probe_k: int = 128  # samples per update matrix (k x k)
    probe_draws: int = 2  # independent draws of k samples per probe, ranks averaged
    probe_center: str = "none"  # update-matrix centring used by the claims
    eval_every: int = 0  # frames between train/test-level evaluations (0: none)
    early_probes: int = 2  # "early in training": the first early_probes probes
    encoder: str | None = None  # network torso (None: the preset's, MinAtar CNN or IMPALA)
    num_envs: int | None = None  # parallel environments (None: the preset's)
    num_steps: int | None = None  # rollout length per environment (None: the preset's)
    eval_steps: int | None = None  # steps per evaluation environment (None: the preset's)

    def __post_init__(self) -> None:
        if self.num_seeds < 1 or self.early_probes < 1:
            raise InputError("num_seeds and early_probes must be at least 1")
        if self.frames // self.probe_every < self.early_probes:
            raise InputError(
                f"frames {self.frames} hold {self.frames // self.probe_every} probes, fewer than "
                f"early_probes ({self.early_probes})"
            )
        if self.probe_center not in ("none", "drift"):
            raise InputError(f"probe_center must be none or drift, got {self.probe_center!r}")

    @classmethod
    def quick(cls) -> Config:
        """SpaceInvaders- and Breakout-MinAtar, PPO and DAAC, 3 seeds x 196k frames, a probe
        every 32k."""
        return cls()

    @classmethod
    def smoke(cls) -> Config:
        """The paper preset (ProcGen, IMPALA, its games, levels and seeds) cut to rollouts of
        8 envs x 16 steps and three iterations, a probe of k = 16 on each, one evaluation of 64
        steps:
        the code paths, not a test of the claim."""
        batch = 8 * 16
        return dataclasses.replace(cls.paper(), num_envs=8, num_steps=16, frames=3 * batch,
                                   probe_every=batch, probe_k=16, probe_draws=1,
                                   eval_every=3 * batch, eval_steps=64)  # fmt: skip

    @classmethod
    def paper(cls) -> Config:
        """ProcGen bigfish, heist, miner (easy), 10 training levels, 25M frames, 5 seeds, a probe
        about every 1M frames, evaluation on the full distribution every ~1.6M."""
        batch = 64 * 256
        return cls(
            games=("procgen/bigfish", "procgen/heist", "procgen/miner"),
            preset="procgen", num_seeds=5, frames=1525 * batch, num_levels=10,
            probe_every=61 * batch, eval_every=100 * batch, early_probes=3,
        )  # fmt: skip


def run_name(agent: str, game: str, seed: int) -> str:
    return f"{agent}_{game.replace('/', '-')}_s{seed}"


def agent_config(config: Config, agent: str, game: str, seed: int):
    """The agent config of one run: the preset for ``game`` with this experiment's fields."""
    overrides = {
        "frames": config.frames, "num_levels": config.num_levels,
        "probe_every": config.probe_every, "probe_k": config.probe_k,
        "probe_draws": config.probe_draws, "probe_center": config.probe_center,
        "eval_every": config.eval_every, "checkpoint_every": 0, "seed": seed,
    }  # fmt: skip
    for name in ("encoder", "num_envs", "num_steps", "eval_steps"):
        if getattr(config, name) is not None:
            overrides[name] = getattr(config, name)
    return config_class(agent).preset(config.preset, game, **overrides)


def read_curves(run_dir: Path) -> dict[str, Any]:
    """Probe frames and per-network ranks (trained, random) and training returns of one run;
    the ranks of the centring the run's config names (`tdgen.interference.keys`)."""
    rows = read_metrics(run_dir)
    center = RunDir.open(run_dir).config.get("probe_center", "none")
    probes = [r for r in rows if read_update_rank(r, center, "actor") is not None]
    returns = [r for r in rows if "charts/episodic_return" in r]
    curves: dict[str, Any] = {"frames": [r["step"] for r in probes]}
    for network in NETWORKS:
        curves[network] = [float(read_update_rank(r, center, network)) for r in probes]
        curves[f"{network}_random"] = [
            float(read_update_rank(r, center, network, random=True)) for r in probes
        ]
    curves["return_frames"] = [r["step"] for r in returns]
    curves["episodic_return"] = [float(r["charts/episodic_return"]) for r in returns]
    return curves


def seed_group(config: Config, agent: str, game: str, seed: int, out_dir: Path) -> list[PlannedRun]:
    """The runs of one (agent, game), seeds seed, seed + 1, ...: trained as one group."""
    names = {s: run_name(agent, game, s) for s in range(seed, seed + config.num_seeds)}
    return [PlannedRun(name, agent, agent_config(config, agent, game, s),
                       Path(out_dir) / "runs" / name) for s, name in names.items()]  # fmt: skip


def planned_runs(config: Config, seed: int, out_dir: Path) -> list[PlannedRun]:
    """Every run `measure` trains, in its order: games, agents, seeds."""
    return [run for game in config.games for agent in AGENTS
            for run in seed_group(config, agent, game, seed, out_dir)]  # fmt: skip


def measure(config: Config, seed: int, out_dir: Path) -> dict[str, Any]:
    """Train (or reuse) every run; curves[game][agent] = list over seeds of `read_curves`."""
    curves: dict[str, Any] = {}
    for game in config.games:
        curves[game] = {}
        for agent in AGENTS:
            group = seed_group(config, agent, game, seed, out_dir)
            run_dirs = ensure_runs(agent, [r.config for r in group], [r.run_dir for r in group])
            curves[game][agent] = [read_curves(run_dir) for run_dir in run_dirs]
    return {"curves": curves}


def early_ranks(measurements: dict[str, Any], config: Config, game: str) -> dict[str, Any]:
    """Per series (ppo/actor, ...): the early ranks, [seeds, early_probes], and their mean."""
    out = {}
    for agent in AGENTS:
        for network in NETWORKS:
            values = np.array(
                [c[network][: config.early_probes] for c in measurements["curves"][game][agent]]
            )
            out[f"{agent}/{network}"] = {"values": values, "mean": float(values.mean())}
    return out


def rank_gap(measurements: dict[str, Any], config: Config, high: str, low: str) -> dict[str, Check]:
    """Per game and pooled over games: the early rank of series ``high`` minus that of ``low``
    (e.g. "daac/critic" minus "ppo/critic") against 0, with its t interval over seeds (early
    probes averaged within a seed). Two networks of one agent are paired per seed and probe (one
    run: Student t on the differences); two agents' runs are two independent groups of seeds
    (Welch t; pooled over games: the pooled t)."""
    games = list(config.games)
    early = {g: early_ranks(measurements, config, g) for g in games}
    paired = high.split("/")[0] == low.split("/")[0]
    if paired:
        tasks = [early[g][high]["values"] - early[g][low]["values"] for g in games]
        checks = {g: mean_test(t, ">", 0.0) for g, t in zip(games, tasks, strict=True)}
        pooled = mean_test(tasks, ">", 0.0) if len(games) > 1 else None
    else:
        highs = [early[g][high]["values"] for g in games]
        lows = [early[g][low]["values"] for g in games]
        checks = {g: mean_test(h, ">", 0.0, minus=lo)
                  for g, h, lo in zip(games, highs, lows, strict=True)}  # fmt: skip
        pooled = mean_test(highs, ">", 0.0, minus=lows) if len(games) > 1 else None
    return {**checks, **({"pooled": pooled} if pooled else {})}


def _checks(measurements, config, pairs) -> dict[str, Check]:
    """`rank_gap` for each (high, low), named "game: high - low" (and "pooled: ...")."""
    out = {}
    for high, low in pairs:
        for where, check in rank_gap(measurements, config, high, low).items():
            out[f"{where}: {high} - {low}"] = check
    return out


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Figure 4's claims on every game and pooled over games, early = the first ``early_probes``
    probes: each a rank difference between two networks, mean over seeds and early probes with a
    95% t interval over seeds (`rank_gap`), above 0.

    Paired share (evidence): over (seed, early probe) pairs, how often the DAAC critic's rank is
    strictly the highest of the four networks (same seed index and probe frame).
    """
    evidence = {}
    for game in config.games:
        early = early_ranks(measurements, config, game)
        daac_critic = early["daac/critic"]["values"]
        others = np.stack([early[n]["values"] for n in SERIES if n != "daac/critic"])
        evidence[game] = {
            "early_mean_ranks": {name: early[name]["mean"] for name in SERIES},
            "paired_share_daac_critic_strictly_highest": float(
                np.mean(daac_critic > others.max(axis=0))
            ),
        }
    early = (
        f"the first {config.early_probes} probes (mean over {config.num_seeds} seeds, "
        f"{config.probe_draws} draws of k={config.probe_k}, centring {config.probe_center!r}; "
        "95% t interval over seeds; per game and pooled over games)"
    )
    others = [n for n in SERIES if n != "daac/critic"]
    critics, actors = ("ppo/critic", "daac/critic"), ("ppo/actor", "daac/actor")
    return [
        Claim.measured(
            "daac_critic_highest_early",
            f"On every game, the DAAC critic's update rank over {early} exceeds that of each of "
            "the other three networks (PPO actor, PPO critic, DAAC actor).",
            _checks(measurements, config, [("daac/critic", n) for n in others]),
            evidence,
        ),
        Claim.measured(
            "daac_critic_above_ppo_critic_early",
            f"Critic against critic: on every game, over {early}, the DAAC critic (TD gradients "
            "only) has a higher update rank than the PPO critic (shared with the actor).",
            _checks(measurements, config, [("daac/critic", "ppo/critic")]),
        ),
        Claim.measured(
            "actors_lowest_early",
            f"On every game, over {early}, both actors have a lower update rank than both critics.",
            _checks(measurements, config, [(c, a) for c in critics for a in actors]),
        ),
        Claim.measured(
            "daac_actor_below_ppo_actor_early",
            f"Actor against actor: on every game, over {early}, the DAAC actor (no critic "
            "gradients in its encoder) has a lower update rank than the PPO actor (Section 5.2: "
            "omitting the critic gradients lowers the actor's update dimension early).",
            _checks(measurements, config, [("ppo/actor", "daac/actor")]),
        ),
    ]


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """Update rank vs frames per game: four networks, min-max over seeds, random baseline."""
    curves = measurements["curves"]
    styles = {"ppo/actor": (plots.COLORS[0], "-"), "ppo/critic": (plots.COLORS[0], "--"),
              "daac/actor": (plots.COLORS[3], "-"), "daac/critic": (plots.COLORS[3], "--")}  # fmt: skip
    names = []
    with plots.style():
        fig, axes = plots.figure(2, len(config.games), width=3.8, height=2.7)
        for j, game in enumerate(config.games):
            ax, ax_ret = axes[0, j], axes[1, j]
            for agent in AGENTS:
                runs = curves[game][agent]
                x = np.asarray(runs[0]["frames"], float) / 1e3
                for network in NETWORKS:
                    values = np.array([c[network] for c in runs], float)
                    color, line = styles[f"{agent}/{network}"]
                    ax.plot(x, values.mean(0), color=color, linestyle=line,
                            label=f"{agent.upper()} {network}")  # fmt: skip
                    ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.18)
                randoms = np.array([c[f"{n}_random"] for c in runs for n in NETWORKS], float)
                ax.plot(x, randoms.mean(0), color="0.55", linestyle=":", lw=1,
                        label="random parameters" if agent == "ppo" else None)  # fmt: skip
                plots.seed_band(ax_ret, [c["return_frames"] for c in runs],
                                [c["episodic_return"] for c in runs],
                                color=styles[f"{agent}/actor"][0], label=agent.upper())  # fmt: skip
            ax.set_title(game)
            ax.set_ylabel(f"update rank (k={config.probe_k}, eps=0.1)")
            ax_ret.set_ylabel("training episodic return")
            ax_ret.set_xlabel("frames (thousands)")
        axes[0, 0].legend(loc="best", fontsize=7)
        axes[1, 0].legend(loc="best", fontsize=7)
        fig.suptitle(
            f"Mean over {config.num_seeds} seeds, shaded min-max. Actor entries are norms of "
            "probability changes, critic entries value changes.",
            fontsize=8,
        )
        names.append(plots.save(fig, Path(out_dir) / "fig4_actor_critic_update_rank.png"))
    return names


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Train (or reuse) every run, plot Figure 4, check its claims."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements = measure(config, seed, out_dir)
    figures = plot(measurements, config, out_dir)
    claims = check_claims(measurements, config)
    table = {game: {name: v["mean"] for name, v in early_ranks(measurements, config, game).items()}
             for game in config.games}  # fmt: skip
    late = {
        game: {
            f"{agent}/{network}": float(np.mean([c[network][-2:] for c in runs]))
            for agent, runs in measurements["curves"][game].items()
            for network in NETWORKS
        }
        for game in config.games
    }
    note = "Early mean update ranks " + "; ".join(
        f"{game}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items())
        for game, row in table.items()
    ) + ". Last two probes: " + "; ".join(
        f"{game}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()) for game, row in late.items()
    ) + "."  # fmt: skip
    summary = {"early_mean_ranks": table, "late_mean_ranks": late,
               "runs_dir": str(out_dir / "runs"), "note": note}  # fmt: skip
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig4_actor_critic_update_rank",
    paper_ref="Figure 4, Section 5.2",
    description="Update rank of PPO and DAAC actors and critics over training (H2)",
    config_type=Config,
    run=run,
    kind="deep_rl",
    planned_runs=planned_runs,
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "measure", "planned_runs", "run"]
