"""Figure 2 (section 4.3): pre-training on high-frequency targets hurts interpolation after fine-tuning.

States of the circle MDP (one action `s -> s+1 mod n`, reward 1 on leaving `reward_state`) are the
inputs `x = s / n` in [0, 1). A ReLU MLP value network (`make_network("mlp", "value", 1)`) is
pre-trained by full-batch regression on `sin(2 pi k x)` over every state, for each frequency k, and
then fine-tuned by regression on `V^pi` on every `train_every`-th state only. The loss on those
training states and on the states between them (the finer grid that interpolates them) is recorded
during fine-tuning. Every frequency starts from the same initialisation within a seed, so only the
pre-training target differs.

Choices the paper does not state: regression (Monte Carlo-style) fine-tuning on `V^pi` rather than
TD, Adam for both phases with a fresh optimiser state at fine-tuning, and the first layer's biases
re-drawn as `-w_i c_i` with `c_i ~ U(0, 1)` so every first-layer ReLU has its kink inside the input
range (with flax's zero biases and inputs in [0, 1) the network is linear in x at initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats

from tdgen import plots
from tdgen.errors import InputError
from tdgen.experiments.base import Claim, Experiment, Outcome, TheoryConfig
from tdgen.experiments.verdicts import mean_test
from tdgen.nets import make_network
from tdgen.theory.mdp import circle_mdp


@dataclass(frozen=True)
class Config(TheoryConfig):
    """Figure 2 settings (caption of Figure 2); sizes are ours, the paper gives none."""

    num_states: int = 80  # circle MDP length; inputs x = s / num_states
    reward_state: int = 40  # 0-based state paying reward 1 on leaving it
    gamma: float = 0.9  # discount of V^pi
    train_every: int = 4  # fine-tune on states 0, train_every, 2 train_every, ...
    frequencies: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)  # pre-training sin(2 pi k x)
    hidden_sizes: tuple[int, ...] = (64, 64)  # ReLU MLP widths
    pretrain_steps: int = 2000  # full-batch Adam steps on the sine target, all states
    pretrain_lr: float = 1e-3  # Adam learning rate, pre-training
    finetune_steps: int = 2000  # full-batch Adam steps on V^pi, training states only
    finetune_lr: float = 1e-3  # Adam learning rate, fine-tuning
    log_every: int = 20  # fine-tuning steps between recorded losses
    num_seeds: int = 3  # initialisations (seed, seed+1, ...); every frequency shares each one
    spearman_threshold: float = 0.8  # claim: mean Spearman(k, final interpolation loss) above this
    train_loss_tol: float = 1e-3  # claim: every final training-state MSE below this

    def __post_init__(self) -> None:
        if not 0 <= self.reward_state < self.num_states:
            raise InputError(f"reward_state must lie in [0, num_states={self.num_states})")
        if not 2 <= self.train_every < self.num_states:
            raise InputError("train_every must be >= 2 (some states must be held out)")
        if self.finetune_steps % self.log_every:
            raise InputError("finetune_steps must be a multiple of log_every")
        if len(self.frequencies) < 2:
            raise InputError("frequencies needs at least two values to rank")

    @classmethod
    def quick(cls) -> Config:
        """10 initialisations (vmapped: one program), so the interval over seeds is informative."""
        return cls(num_seeds=10)

    @classmethod
    def paper(cls) -> Config:
        return cls(
            frequencies=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
            hidden_sizes=(256, 256),
            pretrain_steps=5000,
            finetune_steps=5000,
            num_seeds=5,
        )


def setting(config: Config) -> dict[str, np.ndarray]:
    """Inputs `[S, 1]`, `V^pi` `[S]`, training and interpolation state indices."""
    mdp = circle_mdp(config.num_states, config.reward_state, config.gamma)
    values = mdp.V_pi(np.zeros(config.num_states, dtype=int))
    states = np.arange(config.num_states)
    train = states[:: config.train_every]
    return {
        "x": (states / config.num_states)[:, None].astype(np.float32),
        "v_pi": values.astype(np.float32),
        "train": train,
        "interp": np.setdiff1d(states, train),
    }


def pretraining_targets(config: Config, x: np.ndarray) -> np.ndarray:
    """`sin(2 pi k x)` for every frequency k: `[K, len(x)]`."""
    k = np.asarray(config.frequencies, dtype=np.float32)[:, None]
    return np.sin(2 * np.pi * k * np.asarray(x).reshape(1, -1)).astype(np.float32)


def make_train(config: Config, data: dict[str, np.ndarray]):
    """`train(key, target) -> (final values [S], losses [2, L])` for one net and one sine target."""
    network = make_network("mlp", "value", 1, hidden_sizes=config.hidden_sizes)
    x = jnp.asarray(data["x"])
    v_pi, train, interp = (jnp.asarray(data[k]) for k in ("v_pi", "train", "interp"))

    def init(key):
        key_init, key_kinks = jax.random.split(key)
        params = network.init(key_init, x)
        dense = params["params"]["encoder"]["Dense_0"]
        kinks = jax.random.uniform(key_kinks, dense["bias"].shape)
        dense["bias"] = -dense["kernel"][0] * kinks
        return params

    def fit(params, target, mask, lr, steps, log_every):
        optimiser = optax.adam(lr)

        def loss_fn(p):
            return jnp.sum(mask * (network.apply(p, x) - target) ** 2) / jnp.sum(mask)

        def _update(carry, _):
            p, opt_state = carry
            grads = jax.grad(loss_fn)(p)
            updates, opt_state = optimiser.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        def _chunk(carry, _):
            carry, _ = jax.lax.scan(_update, carry, None, length=log_every)
            values = network.apply(carry[0], x)
            losses = jnp.stack(
                [
                    jnp.mean((values[train] - v_pi[train]) ** 2),
                    jnp.mean((values[interp] - v_pi[interp]) ** 2),
                ]
            )
            return carry, losses

        carry = (params, optimiser.init(params))
        carry, losses = jax.lax.scan(_chunk, carry, None, length=steps // log_every)
        return carry[0], losses

    everywhere = jnp.ones(x.shape[0])
    train_mask = jnp.zeros(x.shape[0]).at[train].set(1.0)

    def train_one(key, target):
        params = init(key)
        params, _ = fit(
            params,
            target,
            everywhere,
            config.pretrain_lr,
            config.pretrain_steps,
            config.pretrain_steps,
        )
        pretrained = network.apply(params, x)
        params, losses = fit(
            params, v_pi, train_mask, config.finetune_lr, config.finetune_steps, config.log_every
        )
        return pretrained, network.apply(params, x), losses.T

    return train_one


def measure(config: Config, seed: int) -> dict[str, Any]:
    """Pre-train and fine-tune every (seed, frequency) network in one vmapped, jitted call."""
    data = setting(config)
    targets = jnp.asarray(pretraining_targets(config, data["x"][:, 0]))
    train_one = make_train(config, data)
    keys = jnp.stack([jax.random.PRNGKey(seed + i) for i in range(config.num_seeds)])
    over_targets = jax.vmap(train_one, in_axes=(None, 0))
    pretrained, final, losses = jax.jit(jax.vmap(over_targets, in_axes=(0, None)))(keys, targets)
    return {
        **data,
        "targets": np.asarray(targets),
        "pretrained": np.asarray(pretrained),  # [seeds, K, S]
        "final": np.asarray(final),  # [seeds, K, S]
        "train_loss": np.asarray(losses[:, :, 0]),  # [seeds, K, L]
        "interp_loss": np.asarray(losses[:, :, 1]),  # [seeds, K, L]
        "frequencies": np.asarray(config.frequencies),
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; 0 when either side is constant (no ordering to find)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(a, b).statistic)


def check_claims(measurements: dict[str, Any], config: Config) -> list[Claim]:
    """Figure 2's claim from the final fine-tuning losses, by the rule in the statement."""
    k = np.asarray(config.frequencies, dtype=float)
    interp = np.asarray(measurements["interp_loss"])[:, :, -1]
    train = np.asarray(measurements["train_loss"])[:, :, -1]
    rhos = [_spearman(k, row) for row in interp]
    mean_rho = float(np.mean(rhos))
    checks = {
        "spearman": mean_test(rhos, ">", config.spearman_threshold),
        # Every network fits: the largest final training loss per seed, below the tolerance.
        "max_train_loss": mean_test(train.max(axis=1), "<", config.train_loss_tol),
    }
    return [
        Claim.measured(
            "higher_pretraining_frequency_worse_interpolation",
            "After fine-tuning on V^pi at the training states, the Spearman rank correlation "
            "between pre-training frequency k and the final MSE on the interpolating states "
            f"(mean over {interp.shape[0]} seeds, 95% interval) exceeds "
            f"{config.spearman_threshold:g}, while each seed's largest final training-state MSE "
            f"lies below {config.train_loss_tol:g}.",
            checks,
            {
                "frequencies": k,
                "spearman_per_seed": rhos,
                "mean_spearman": mean_rho,
                "final_interp_loss_mean_over_seeds": interp.mean(axis=0),
                "final_interp_loss_per_seed": interp,
                "final_train_loss_mean_over_seeds": train.mean(axis=0),
                "max_final_train_loss": float(train.max()),
            },
        )
    ]


def plot(measurements: dict[str, Any], config: Config, out_dir: Path) -> list[str]:
    """The paper's layout: targets (top left), final estimates (bottom left), losses (right)."""
    m = measurements
    x, train = m["x"][:, 0], m["train"]
    steps = np.arange(1, m["train_loss"].shape[-1] + 1) * config.log_every
    labels = [f"k={k:g}" for k in config.frequencies]
    with plots.style():
        fig, axes = plots.figure(2, 2, width=3.6, height=2.5)
        for target, label in zip(m["targets"], labels, strict=True):
            axes[0, 0].plot(x, target, label=label)
        axes[0, 0].set(xlabel="state x = s / n", ylabel=r"target $\sin(2\pi k x)$")
        axes[0, 0].set_title("pre-training targets (k: see legends)")
        ax = axes[1, 0]
        for final, label in zip(m["final"][0], labels, strict=True):
            ax.plot(x, final, label=label)
        ax.plot(x, m["v_pi"], color="0.6", lw=3, alpha=0.5, ls="-", label=r"$V^\pi$", zorder=0)
        ax.plot(x[train], m["v_pi"][train], "k.", ms=5, label="training states")
        ax.set(xlabel="state x = s / n", ylabel="value")
        ax.set_title("estimate after fine-tuning (first seed)")
        ax.legend(ncol=2, fontsize=7)
        for ax, key, title in (
            (axes[0, 1], "train_loss", "loss on training states"),
            (axes[1, 1], "interp_loss", "loss on interpolating states"),
        ):
            for curve, label in zip(m[key].mean(axis=0), labels, strict=True):
                ax.plot(steps, curve, label=label)
            ax.set(
                yscale="log", xlabel="fine-tuning step", ylabel="MSE to $V^\\pi$ (mean of seeds)"
            )
            ax.set_title(title)
            ax.legend(ncol=2, fontsize=7)
        fig.suptitle(
            f"Pre-training on sin(2 pi k x), then fine-tuning on V^pi (circle MDP, "
            f"{config.num_states} states, every {config.train_every}th trained; "
            f"{config.num_seeds} seeds)",
            fontsize=9,
        )
        return [plots.save(fig, out_dir / "fig2_high_frequency_pretraining.png")]


def run(config: Config, seed: int, out_dir: Path) -> Outcome:
    """Pre-train, fine-tune, plot and check Figure 2 for seeds `seed .. seed + num_seeds - 1`."""
    measurements = measure(config, seed)
    figures = plot(measurements, config, Path(out_dir))
    claims = check_claims(measurements, config)
    summary = {
        "final_interp_loss_mean": measurements["interp_loss"][:, :, -1].mean(axis=0),
        "final_train_loss_mean": measurements["train_loss"][:, :, -1].mean(axis=0),
        "pretrain_fit_mse_mean": ((measurements["pretrained"] - measurements["targets"]) ** 2).mean(
            axis=(0, 2)
        ),
    }
    return Outcome(claims, figures, summary)


EXPERIMENT = Experiment(
    name="fig2_high_frequency_pretraining",
    paper_ref="Figure 2, Section 4.3",
    description="MLPs pre-trained on sin(2 pi k x), fine-tuned on V^pi: interpolation vs frequency",
    config_type=Config,
    run=run,
    kind="theory",
)

__all__ = ["EXPERIMENT", "Config", "check_claims", "measure", "run", "setting"]
