"""Any run as a policy, and Section 6's evaluation of it: `evaluate_run(run_dir)`.

`load_policy(run_dir)` turns an agent run (dqn, c51, ppo, daac) or a distillation run into a
`LoadedPolicy`: the network's per-action outputs (Q-values or logits), how it acts (epsilon-greedy
at 0.01 for value agents and their regression or BC students, Section 6.1; sampled for actor-critic
agents and KL students), and its training and held-out environments. `evaluate_policy` measures
returns on both level sets and the generalisation gap (Eq. 6), and robustness to Gaussian input
noise and consistency under interpolation (`tdgen.evaluate`) on states the policy visits from fresh
environments (`visited_states`, never in any buffer); `tdgen evaluate RUN` writes them as JSON and
plots.

MinAtar policies act in jitted scans; Atari and ProcGen policies (agents and their students) act in
envpool pools on the host: returns from `host_episode_returns` (pools seeded from ``seed``), and
visited states collected on the host (`tdgen.distill.host_buffer`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from tdgen import __version__, plots, streams
from tdgen.distill.host_buffer import env_seed, host_transitions
from tdgen.distill.teacher import load_teacher
from tdgen.distill.trainer import DistillConfig, Distiller
from tdgen.errors import make_dir
from tdgen.evaluate import (
    InterpolationConsistency,
    Robustness,
    draw_pairs,
    episode_returns,
    epsilon_greedy,
    host_actor,
    host_episode_returns,
    interpolation_consistency,
    plot_interpolation,
    plot_robustness,
    robustness,
    sampled,
)
from tdgen.runs import RunDir, find_checkpoint, load_checkpoint
from tdgen.runs.checkpoint import marker_path
from tdgen.runs.compiled import release_if_crowded
from tdgen.runs.rundir import write_json_atomic


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A frozen policy: outputs(params, obs) -> [n, A] values or logits, and where it acts."""

    name: str
    outputs: Callable[[Any, jax.Array], jax.Array]
    params: Any
    stochastic: bool
    env: Any
    test_env: Any
    host_stepped: bool = False


def load_policy(run_dir: Path, frames: int = 0) -> LoadedPolicy:
    """The policy of an agent or distillation run at its checkpoint ``frames`` (0: newest)."""
    release_if_crowded()  # an experiment evaluates many reused runs in one process
    run = RunDir.open(Path(run_dir))
    if run.kind != "distill":
        teacher = load_teacher(run.path, frames)
        return LoadedPolicy(run.path.name, teacher.outputs, teacher.params,
                            teacher.produces == "logits", teacher.env, teacher.test_env,
                            teacher.host_stepped)  # fmt: skip
    config = run.load_config(DistillConfig)
    distiller = Distiller.build(config)
    path = find_checkpoint(run.checkpoints, frames)
    _, state = load_checkpoint(path, distiller.template(), kind="distill")
    teacher = distiller.teacher
    return LoadedPolicy(run.path.name, distiller.values, state.params, distiller.stochastic,
                        teacher.env, teacher.test_env, teacher.host_stepped)  # fmt: skip


def _policy_of(policy: LoadedPolicy, epsilon: float):
    """params -> the `Policy` ``policy`` acts with (sampled, or epsilon-greedy at ``epsilon``)."""

    def of(params):
        values = functools.partial(policy.outputs, params)
        return sampled(values) if policy.stochastic else epsilon_greedy(values, epsilon)

    return of


def visited_states(
    policy: LoadedPolicy, n: int, key: jax.Array, num_envs: int = 16, epsilon: float = 0.01
) -> jax.Array:
    """``n`` observations the policy visits on its training levels (ceil(n / num_envs) steps of
    ``num_envs`` fresh environments, first n kept), in the environment's dtype: states that were
    never in any buffer, for measuring teacher and students on one held-out set. Host-stepped
    policies step an envpool pool seeded from the key."""
    act = _policy_of(policy, epsilon)(policy.params)
    steps = -(-n // num_envs)
    if policy.host_stepped:
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        host_act = functools.partial(host_actor(_policy_of(policy, epsilon)), policy.params)
        env = policy.env.vector(num_envs, seed)
        try:
            data, _, _ = host_transitions(host_act, env, env.reset(), key, steps)
        finally:
            env.close()
        return jnp.asarray(data["obs"].reshape((-1,) + data["obs"].shape[2:])[:n])

    @jax.jit
    def rollout(key):
        key, key_reset = jax.random.split(key)
        obs, env_state = policy.env.reset_batch(key_reset, num_envs)

        def step(carry, key):
            obs, env_state = carry
            key_act, key_env = jax.random.split(key)
            next_obs, env_state, *_ = policy.env.step_batch(key_env, env_state, act(obs, key_act))
            return (next_obs, env_state), obs

        _, seen = jax.lax.scan(step, (obs, env_state), jax.random.split(key, steps))
        return seen.reshape((-1,) + seen.shape[2:])[:n]

    return rollout(key).astype(policy.env.observation_dtype)


@dataclasses.dataclass(frozen=True)
class PolicyEvaluation:
    """What `evaluate_policy` measured: returns (train, test, generalization_gap), robustness,
    interpolation consistency, the number of states and the acting rule."""

    returns: dict[str, float]
    robustness: Robustness
    interpolation: InterpolationConsistency
    num_states: int
    policy: str

    def as_dict(self) -> dict[str, Any]:
        return {"returns": self.returns, "robustness": self.robustness.as_dict(),
                "interpolation": self.interpolation.as_dict(), "num_states": self.num_states,
                "policy": self.policy}  # fmt: skip

    def as_record(self) -> dict[str, Any]:
        """`as_dict` with each array's dtype, so `from_record` rebuilds it bit for bit (float32
        values are written as their shortest decimal, which reads back to the same float32)."""
        record = self.as_dict()
        for name in ("robustness", "interpolation"):
            record[f"{name}_dtypes"] = _dtypes(getattr(self, name))
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PolicyEvaluation:
        """The evaluation `as_record` wrote."""
        return cls(
            returns={k: float(v) for k, v in record["returns"].items()},
            robustness=_rebuild(Robustness, record["robustness"], record["robustness_dtypes"]),
            interpolation=_rebuild(
                InterpolationConsistency, record["interpolation"], record["interpolation_dtypes"]
            ),
            num_states=int(record["num_states"]),
            policy=str(record["policy"]),
        )


def _dtypes(result) -> dict[str, str]:
    """Array fields of a result dataclass and their dtypes (static fields left out)."""
    return {f.name: str(np.asarray(getattr(result, f.name)).dtype)
            for f in dataclasses.fields(result) if not f.metadata.get("static")}  # fmt: skip


def _rebuild(cls, values: dict[str, Any], dtypes: dict[str, str]):
    """``cls`` from `plain_dict` values: arrays in their recorded dtypes, static fields as is."""
    return cls(**{name: jnp.asarray(np.asarray(value, dtypes[name])) if name in dtypes else value
                  for name, value in values.items()})  # fmt: skip


def evaluate_policy(
    policy: LoadedPolicy,
    *,
    seed: int = 0,
    scales: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.5),
    weights: Sequence[float] = (0.25, 0.5, 0.75),
    num_states: int = 2_000,
    eval_envs: int = 16,
    eval_steps: int = 1_000,
    epsilon: float = 0.01,
    states: jax.Array | None = None,
) -> PolicyEvaluation:
    """Returns on training and held-out levels and their gap (Eq. 6: train - test), robustness
    (agreement, softmax l1, standardised l1 per noise scale) and interpolation consistency per
    mixing weight, on ``states`` (default: ``num_states`` states the policy visits from fresh
    environments, `visited_states`: held out from every buffer, and the same definition whether
    or not the run kept its replay)."""
    key = jax.random.PRNGKey(seed)
    key_train, key_test, key_states, key_noise, key_pairs = jax.random.split(key, 5)
    if policy.host_stepped:  # envpool pools seeded from the seed, actions from the keys
        host_act = functools.partial(host_actor(_policy_of(policy, epsilon)), policy.params)
        pool_seed = env_seed(seed, 0, streams.EVAL_ENV)

        def run_returns(env, k):
            return host_episode_returns(host_act, env, k, eval_envs, eval_steps, pool_seed)
    else:
        act = _policy_of(policy, epsilon)(policy.params)
        run_returns = jax.jit(lambda env, k: episode_returns(act, env, k, eval_envs, eval_steps),
                              static_argnums=0)  # fmt: skip
    returns = {"train": float(run_returns(policy.env, key_train))}
    if policy.test_env is not policy.env:
        returns["test"] = float(run_returns(policy.test_env, key_test))
        returns["generalization_gap"] = returns["train"] - returns["test"]
    obs = states
    if obs is None:
        obs = visited_states(policy, num_states, key_states, epsilon=epsilon)
    logits_fn = Partial(policy.outputs, policy.params)
    a, b = draw_pairs(obs, key_pairs)
    return PolicyEvaluation(
        returns=returns,
        robustness=robustness(logits_fn, obs, jnp.asarray(scales), key_noise),
        interpolation=interpolation_consistency(logits_fn, a, b, jnp.asarray(weights)),
        num_states=int(obs.shape[0]),
        policy="stochastic" if policy.stochastic else f"epsilon-greedy {epsilon:g}",
    )


EVALUATIONS = "evaluations"  # RUN/evaluations/<key>.json: `cached_evaluation`'s results


def cached_evaluation(
    run_dir: Path, frames: int = 0, policy: LoadedPolicy | None = None, **kwargs
) -> PolicyEvaluation:
    """`evaluate_policy(load_policy(run_dir, frames), **kwargs)`, kept in RUN/evaluations/: a
    rerun of an experiment (a resumed `tdgen reproduce`) reads its evaluations back in
    milliseconds instead of loading and acting again (fig6 smoke: ~26 min of re-evaluation).

    The key hashes the checkpoint's SHA-256 (from its completion marker), every setting, the
    ``states``' bytes and tdgen's version, so a new checkpoint or setting evaluates afresh; a
    cache file that does not parse is evaluated again and replaced. ``policy``: the run's policy
    when the caller has loaded it already (used on a miss only)."""
    run_dir = Path(run_dir)
    checkpoint = find_checkpoint(run_dir / "checkpoints", frames)
    path = run_dir / EVALUATIONS / f"{_evaluation_key(checkpoint, kwargs)}.json"
    try:
        return PolicyEvaluation.from_record(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not evaluated yet, or a damaged entry: evaluate (again)
    if policy is None:
        policy = load_policy(run_dir, frames)
    result = evaluate_policy(policy, **kwargs)
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, result.as_record())
    return result


def _evaluation_key(checkpoint: Path, kwargs: dict[str, Any]) -> str:
    """SHA-256 of what an evaluation depends on: the checkpoint's bytes (its marker's hash), the
    settings, the states array's dtype, shape and bytes (or, without one, where the default states
    come from), and the code's version."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in sorted(kwargs.items()) if k != "states"}
    states = kwargs.get("states")
    # The default states were the run's buffer before they were the policy's visited states: an
    # evaluation cached then is not one of these.
    default = [] if states is not None else ["visited states"]
    digest.update(json.dumps([__version__, marker_path(checkpoint).read_text().strip(),
                              settings, *default], default=lambda v: np.asarray(v).tolist()).encode())  # fmt: skip
    if states is not None:
        states = np.ascontiguousarray(np.asarray(states))
        digest.update(f"{states.dtype}{states.shape}".encode())
        digest.update(states.tobytes())
    return digest.hexdigest()[:32]


def evaluate_run(run_dir: Path, out: Path | None = None, frames: int = 0, **kwargs) -> Path:
    """`evaluate_policy` of a run, written to ``out`` (default RUN/evaluation/) as
    evaluation.json, robustness.png and interpolation.png; returns the directory."""
    policy = load_policy(Path(run_dir), frames)
    result = evaluate_policy(policy, **kwargs)
    out = Path(out) if out is not None else Path(run_dir) / "evaluation"
    make_dir(out, "the folder of the evaluation")
    write_json_atomic(out / "evaluation.json", {"run": str(run_dir), **result.as_dict()})
    with plots.style():
        plots.save(plot_robustness({policy.name: result.robustness}), out / "robustness.png")
        plots.save(plot_interpolation({policy.name: result.interpolation}),
                   out / "interpolation.png")  # fmt: skip
    return out


__all__ = ["LoadedPolicy", "PolicyEvaluation", "cached_evaluation", "evaluate_policy", "evaluate_run",
           "load_policy", "visited_states"]  # fmt: skip
