"""ProcGen PPO on CPU: tdgen's JAX update against a CleanRL-equivalent PyTorch update, one process.

    .venv/bin/python benchmarks/peers/procgen_update.py [--repeats 3] [--steps 2] [--no-env]

The PyTorch side follows the public description of CleanRL's ppo_procgen.py (Huang et al. 2022):
IMPALA CNN [16, 32, 32] (conv 3x3, max-pool 3x3 s2, two residual blocks per stage) + dense 256,
policy and value heads, NCHW; loss = clipped surrogate - 0.01 entropy + 0.5 clipped value loss,
gradient norm clipped at 0.5, Adam 5e-4 / eps 1e-5. Both sides take the `procgen` preset's batch:
64 envs x 256 steps = 16,384 samples of 64x64x3 uint8, 8 minibatches of 2,048, 3 epochs (24
minibatch steps). tdgen's minibatch steps (forward, backward, clipping, Adam) run as in training,
inside `minibatch_epochs`' lax.scan; one call of ``--steps`` steps is timed after a warm-up call,
PyTorch's step after a warm-up step, and both are scaled to 24 steps; the rollout forward (64 observations, 256 times) and envpool's bigfish
stepping (64 envs) are timed separately, so an iteration's frames/s is composed as
16,384 / (env + rollout forward + update). The machine's 2 cores are shared, so each repeat
measures both sides back to back and reports their ratio. Writes
benchmarks/results/procgen_update/MACHINE.json (`tdgen.bench.record`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn

from tdgen.agents import PPOConfig
from tdgen.agents.actor_critic.ppo import PPO, make_adam, minibatch_epochs, network_kwargs
from tdgen.bench.record import Record, column
from tdgen.nets import make_network

RESULTS = Path(__file__).resolve().parents[1] / "results"

OBS, ACTIONS, ENVS, STEPS, MINIBATCHES, EPOCHS = (64, 64, 3), 15, 64, 256, 8, 3
BATCH = ENVS * STEPS
MINIBATCH = BATCH // MINIBATCHES


class TorchResidual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class TorchImpala(nn.Module):
    """IMPALA CNN [16, 32, 32] + 256 with policy and value heads (CleanRL's ppo_procgen layout)."""

    def __init__(self):
        super().__init__()
        layers, c_in = [], OBS[2]
        for c in (16, 32, 32):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.MaxPool2d(3, 2, padding=1),
                       TorchResidual(c), TorchResidual(c)]  # fmt: skip
            c_in = c
        self.torso = nn.Sequential(*layers)
        self.dense = nn.Linear(32 * 8 * 8, 256)
        self.policy = nn.Linear(256, ACTIONS)
        self.value = nn.Linear(256, 1)

    def forward(self, obs_uint8):
        x = obs_uint8.permute(0, 3, 1, 2).float() / 255.0  # NHWC -> NCHW as CleanRL
        x = torch.relu(self.torso(x).flatten(1))
        x = torch.relu(self.dense(x))
        return self.policy(x), self.value(x).squeeze(-1)


def torch_step(model, optimizer, mb):
    """One CleanRL-style PPO minibatch step: clipped surrogate, clipped value, entropy, Adam."""
    logits, value = model(mb["obs"])
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(1, mb["action"][:, None]).squeeze(1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    ratio = (logp - mb["logprob"]).exp()
    adv = mb["advantage"]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)).mean()
    v_clip = mb["value"] + (value - mb["value"]).clamp(-0.2, 0.2)
    v_loss = 0.5 * torch.max((value - mb["return"]) ** 2, (v_clip - mb["return"]) ** 2).mean()
    loss = pg - 0.01 * entropy + 0.5 * v_loss
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    return loss


def fake_batch(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.integers(0, 256, (n, *OBS), dtype=np.uint8),
        "action": rng.integers(0, ACTIONS, n).astype(np.int32),
        "logprob": np.full(n, -np.log(ACTIONS), np.float32)
        + rng.normal(0, 0.1, n).astype(np.float32),
        "value": rng.normal(0, 1, n).astype(np.float32),
        "return": rng.normal(0, 1, n).astype(np.float32),
        "advantage": rng.normal(0, 1, n).astype(np.float32),
    }


def _seconds(fn, steps: int) -> float:
    """Median seconds per call of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(steps):
        tick = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tick)
    return float(np.median(times))


def torch_times(steps: int) -> dict[str, float]:
    """Seconds of one minibatch step (2,048) and of one rollout forward (64 observations)."""
    torch.manual_seed(0)
    model = TorchImpala()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, eps=1e-5)
    mb = {k: torch.from_numpy(v) for k, v in fake_batch(MINIBATCH, 1).items()}
    mb["action"] = mb["action"].long()
    obs = torch.from_numpy(fake_batch(ENVS, 2)["obs"])

    def act():
        with torch.no_grad():
            logits, _ = model(obs)
            torch.distributions.Categorical(logits=logits).sample()

    return {"step": _seconds(lambda: torch_step(model, optimizer, mb), steps),
            "act": _seconds(act, 5 * steps)}  # fmt: skip


def jax_agent(pool_impl: str = "slices", **overrides) -> PPO:
    """PPO at the `procgen` preset with ``overrides``; ``pool_impl`` picks the IMPALA max-pool."""
    config = PPOConfig.procgen("procgen/bigfish", num_levels=10, eval_every=0, probe_every=0,
                               checkpoint_every=0, **overrides)  # fmt: skip
    kwargs = {**network_kwargs(config, OBS), "pool_impl": pool_impl}
    network = make_network(config.encoder, "policy+value", ACTIONS, **kwargs)
    return PPO(config, network, make_adam(config))


def jax_step_fn(ppo: PPO, steps: int):
    """``steps`` minibatch steps of `tdgen.agents.actor_critic.ppo.minibatch_epochs` (one epoch,
    the training's own lax.scan: a step timed outside the scan misses what XLA:CPU does to
    convolutions in a loop body, `tdgen.nets.conv`)."""

    def run(params, opt_state, data, key):
        return minibatch_epochs(ppo.loss, ppo.optimizer, params, opt_state, data, key, 1, steps)

    return jax.jit(run, donate_argnums=(0, 1))


def jax_times(steps: int, **overrides) -> dict[str, float]:
    ppo = jax_agent(**overrides)
    data = jax.tree.map(jnp.asarray, fake_batch(steps * MINIBATCH, 1))
    obs = jnp.asarray(fake_batch(ENVS, 2)["obs"])
    params, opt_state = ppo.init(jax.random.PRNGKey(0), obs[:1])
    run = jax_step_fn(ppo, steps)
    carry = [params, opt_state]
    key = jax.random.PRNGKey(1)

    def run_steps():
        carry[0], carry[1], stats = run(carry[0], carry[1], data, key)
        jax.block_until_ready(stats)

    def body(p, o, k):
        logits, value = ppo.policy_value(p, o)
        return jax.random.categorical(k, logits), value

    act_fn = jax.jit(body)
    step_s = _seconds(run_steps, 1) / steps
    act_s = _seconds(lambda: jax.block_until_ready(act_fn(carry[0], obs, key)), 5 * steps)
    return {"step": step_s, "act": act_s}


def env_seconds_per_step(steps: int = 200) -> float:
    """Seconds per envpool step of 64 bigfish environments (random actions, 2 threads)."""
    from tdgen.envs import make_env

    env = make_env("procgen/bigfish", num_levels=10).vector(ENVS, 0, num_threads=2)
    env.reset()
    rng = np.random.default_rng(0)
    env.step(rng.integers(0, ACTIONS, ENVS))
    tick = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, ACTIONS, ENVS))
    seconds = (time.perf_counter() - tick) / steps
    env.close()
    return seconds


def compose(env_s: float, times: dict[str, float]) -> tuple[float, float]:
    """(frames/s of a full iteration, seconds of the update) from per-step times."""
    update = EPOCHS * MINIBATCHES * times["step"]
    return BATCH / (STEPS * (env_s + times["act"]) + update), update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back repeats")
    parser.add_argument("--steps", type=int, default=2, help="timed minibatch steps per side")
    parser.add_argument("--variants", nargs="+", default=["xla/slices", "im2col/reduce_window"],
                        help="tdgen variants CONV/POOL (conv: xla|im2col, pool: "
                             "slices|reduce_window), each timed against PyTorch")  # fmt: skip
    parser.add_argument("--no-env", action="store_true", help="skip envpool (update only)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    record = Record("procgen_update")
    table = record.table("sides", "per repeat: a minibatch step, the rollout forward, 24 steps, "
                         "and the iteration's frames/s composed with the environment's time",
                         [column("repeat"), column("side"), column("minibatch step", "ms"),
                          column("rollout forward", "ms"), column("update", "s"),
                          column("frames/s"), column("x PyTorch")])  # fmt: skip
    env_s = 0.0 if args.no_env else env_seconds_per_step()
    print(f"envpool bigfish, 64 envs: {env_s * 1e3:.2f} ms/step, {ENVS / max(env_s, 1e-9):,.0f} "
          f"frames/s alone; jax {jax.__version__}, torch {torch.__version__}")  # fmt: skip
    print(f"{'repeat':>6s} {'side':>20s} {'step ms':>9s} {'act ms':>8s} {'update s':>9s} "
          f"{'frames/s':>9s}")  # fmt: skip
    ratios: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        rows = {"pytorch": torch_times(args.steps)}
        for variant in args.variants:
            conv, pool = variant.split("/")
            rows[variant] = jax_times(args.steps, conv_impl=conv, pool_impl=pool)
        fps = {}
        for side, times in rows.items():
            fps[side], update = compose(env_s, times)
            print(f"{repeat:6d} {side:>20s} {times['step'] * 1e3:9.0f} {times['act'] * 1e3:8.1f} "
                  f"{update:9.1f} {fps[side]:9.1f}")  # fmt: skip
        for variant in args.variants:
            ratios.setdefault(variant, []).append(fps[variant] / fps["pytorch"])
        for side, times in rows.items():
            table.add(repeat + 1, side, times["step"] * 1e3, times["act"] * 1e3,
                      compose(env_s, times)[1], fps[side], fps[side] / fps["pytorch"])  # fmt: skip
    for variant, values in ratios.items():
        print(f"tdgen {variant} / PyTorch frames/s: {', '.join(f'{r:.2f}' for r in values)} "
              f"(min {min(values):.2f}, max {max(values):.2f})")  # fmt: skip
    record.table("environment", "envpool bigfish, 64 envs, random actions (0: --no-env)",
                 [column("step", "ms"), column("rate", "frames/s")]).add(
        env_s * 1e3, ENVS / env_s if env_s else None)  # fmt: skip
    record.write(RESULTS)


if __name__ == "__main__":
    main()
