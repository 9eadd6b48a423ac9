"""Post-training distillation: a fresh student trained on a frozen teacher's data (Section 6).

A `Distiller` loads the teacher (`tdgen.distill.teacher`), builds its data (a value
teacher's replay buffer; an actor-critic teacher fills a buffer of ``buffer_size`` transitions by
acting on its training levels: inside the jitted init on gymnax, on the host with envpool for
ProcGen teachers, `tdgen.distill.host_buffer`; an Atari value teacher brings its frame-once host replay,
sampled on the host, `tdgen.distill.host_replay`), and trains a freshly initialised student on one objective
(`tdgen.distill.objectives`) in jitted segments (`Distiller.make_train`: pure, so students that
differ only by seed train as one group, `tdgen.distill.launch`). With ``collect`` the teacher
keeps acting, one vectorised step every ``collect_every`` updates, writing into the same ring buffer
(Appendix B.3; gymnax teachers in the jitted segment, Atari value teachers in an envpool pool
between host-sampled updates). Students are evaluated on the teacher's training and held-out
levels (Eq. 6's two terms): in a scan on gymnax, in envpool pools seeded from (seed, updates) on
the host.
The student's update rank is probed exactly as during training: k distinct transitions of the
buffer, one optimiser step on one transition's loss, for the student and for a freshly initialised
network.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from tdgen import streams
from tdgen.agents.probes import VALUE, Draw, ProbeResult, ProbeTarget, ProbeView, make_probe
from tdgen.agents.train import Train
from tdgen.agents.value_based import replay as replay_lib
from tdgen.agents.value_based.frame_replay import HostReplay, valid_flat_indices
from tdgen.distill.host_buffer import env_seed, host_buffer
from tdgen.distill.objectives import OBJECTIVES, Objective
from tdgen.distill.teacher import Teacher, load_teacher, network_input
from tdgen.errors import InputError
from tdgen.evaluate import (
    episode_returns,
    epsilon_greedy,
    host_actor,
    host_episode_returns,
    sampled,
)
from tdgen.evaluate.returns import Policy
from tdgen.nets import ENCODERS, make_network
from tdgen.runs.checkpoint import DROPPED_HINT
from tdgen.runs.config import RunConfig


@dataclasses.dataclass(frozen=True)
class DistillConfig(RunConfig):
    """Distillation of a trained run into a fresh student."""

    teacher: str = ""
    """The teacher's run directory (a dqn, c51, ppo or daac run on MinAtar; dqn, c51 or qrdqn on
    Atari; ppo or daac on ProcGen)."""
    objective: Literal["q", "qa", "advantage", "qr", "double_q", "bc", "kl"] = "bc"
    """Objective (tdgen.distill.objectives): q, qa, advantage regression; qr, double_q offline RL;
    bc behaviour cloning; kl policy distillation."""
    teacher_frames: int = 0
    """The teacher's checkpoint (its frame count); 0: the newest."""
    steps: int = 30_000
    """Student updates."""
    batch_size: int = 64
    """Transitions per update."""
    lr: float = 2.5e-4
    """Adam learning rate."""
    eps: float = 3.125e-4
    """Adam epsilon (Dopamine's MinAtar value)."""
    ent_coef: float = 0.01
    """Entropy bonus of bc (Eq. 23: 1e-2; Eq. 57: 0.1) and kl (the teacher's PPO coefficient)."""
    encoder: str = ""
    """Student torso; empty: the teacher's, with its settings."""
    num_quantiles: int = 200
    """Quantiles of the qr student (QR-DQN: 200)."""
    gamma: float = 0.99
    """Discount of the bootstrapping objectives (qr, double_q)."""
    target_period: int = 1_000
    """Updates between student target-network copies (qr, double_q)."""
    buffer_size: int = 50_000
    """Actor-critic teachers: transitions they collect before distillation (value teachers bring
    their replay buffer)."""
    num_envs: int = 16
    """Environments an actor-critic teacher acts in to collect data (a value teacher collects in
    as many as its replay buffer has columns)."""
    collect: bool = False
    """The teacher keeps collecting while the student trains (Appendix B.3; MinAtar and Atari value
    teachers)."""
    collect_every: int = 1
    """Updates per vectorised collection step when collect is on."""
    teacher_epsilon: float = 0.01
    """Exploration of a value teacher collecting data."""
    eval_every: int = 5_000
    """Updates between evaluations of the student's returns; 0 disables them."""
    eval_policy: Literal["auto", "greedy", "stochastic"] = "auto"
    """greedy: epsilon-greedy at eval_epsilon (Section 6.1); stochastic: sample the softmax;
    auto: stochastic for kl students, greedy otherwise."""
    eval_epsilon: float = 0.01
    """Epsilon of the greedy evaluation (Section 6.1: 0.01)."""
    eval_envs: int = 16
    """Environments per evaluation (on training and on held-out levels)."""
    eval_steps: int = 1_000
    """Steps per evaluation environment."""
    probe_every: int = 5_000
    """Updates between update-rank probes; 0 disables them."""
    probe_k: int = 128
    """Transitions per update matrix."""
    log_every: int = 1_000
    """Updates between metric lines."""
    checkpoint_every: int = 0
    """Updates between checkpoints (a last one is always written); 0: only the last."""
    keep_checkpoints: int = 1
    """Complete checkpoints kept."""
    seed: int = 0
    """Seed of the student's initialisation, sampling, collection and probes."""

    renamed_fields: ClassVar[dict[str, str]] = {"adam_eps": "eps", "entropy_coef": "ent_coef"}

    def __post_init__(self):
        super().__post_init__()
        self.require_choice(objective=OBJECTIVES)
        self.require_positive("steps", "batch_size", "num_quantiles", "target_period",
                              "buffer_size", "num_envs", "collect_every", "eval_envs",
                              "eval_steps", "log_every")  # fmt: skip
        self.require_non_negative("eval_every", "teacher_frames")
        if self.encoder and self.encoder not in ENCODERS:
            raise InputError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.lr <= 0 or self.ent_coef < 0 or not 0 <= self.gamma <= 1:
            raise InputError("lr must be > 0, ent_coef >= 0 and gamma in [0, 1]")
        if self.buffer_size % self.num_envs:
            raise InputError(
                f"buffer_size ({self.buffer_size}) must be a multiple of num_envs ({self.num_envs})"
            )

    @property
    def length(self) -> int:
        return self.steps

    @property
    def segment_updates(self) -> int:
        """Updates per jitted segment: every event (log, eval, probe, checkpoint, end) on a boundary."""
        periods = [self.log_every, self.steps, self.eval_every, self.probe_every,
                   self.checkpoint_every]  # fmt: skip
        return int(np.gcd.reduce([p for p in periods if p]))


@struct.dataclass
class DistillState:
    """The checkpointed pytree: student, its target and optimiser, the data, counters."""

    params: Any
    target_params: Any
    opt_state: Any
    replay: replay_lib.Replay
    env_state: Any
    obs: jax.Array
    key: jax.Array
    updates: jax.Array
    loss_sum: jax.Array
    loss_count: jax.Array
    diverged: jax.Array


@dataclasses.dataclass(frozen=True)
class Distiller:
    """A config, its teacher and objective, the student network and optimiser, pure functions."""

    config: DistillConfig
    teacher: Teacher
    objective: Objective
    network: Any
    optimizer: optax.GradientTransformation

    @classmethod
    def build(cls, config: DistillConfig, teacher: Teacher | None = None) -> Distiller:
        teacher = teacher or load_teacher(Path(config.teacher), config.teacher_frames)
        objective = OBJECTIVES[config.objective]
        if objective.teacher == "q" and teacher.produces != "q":
            raise InputError(
                f"objective {objective.name!r} regresses onto action values; a {teacher.kind} "
                "teacher has a policy: use kl or bc"
            )
        if objective.teacher == "logits" and teacher.produces != "logits":
            raise InputError(
                f"objective {objective.name!r} needs a policy teacher (ppo, daac); a "
                f"{teacher.kind} teacher has action values: use q, qa, advantage or bc"
            )
        if teacher.replay_dropped:
            raise InputError(f"the teacher run {config.teacher} finished without keeping its "
                             f"replay, which value distillation reads: {DROPPED_HINT}")  # fmt: skip
        if config.collect and teacher.host_stepped and not isinstance(teacher.replay, HostReplay):
            raise InputError(f"collect=True needs a gymnax or Atari value teacher; {config.teacher} "
                             f"steps {teacher.config.env} on the host: use --collect False (its "
                             "buffer of buffer_size transitions is collected before distillation)")  # fmt: skip
        if isinstance(teacher.replay, HostReplay):
            held = valid_flat_indices(teacher.replay).size
            if held < config.batch_size:
                raise InputError(f"the teacher's replay in {config.teacher} holds {held} sampleable "
                                 f"transitions, fewer than batch_size {config.batch_size}: train "
                                 "the teacher longer or lower batch_size")  # fmt: skip
        encoder = config.encoder or teacher.config.encoder
        kwargs = teacher.encoder_kwargs if encoder == teacher.config.encoder else {}
        if encoder == "mlp" and "obs_ndim" not in kwargs:
            kwargs = {"obs_ndim": len(teacher.env.observation_shape)}
        if objective.head == "qr":
            kwargs = {**kwargs, "num_quantiles": config.num_quantiles}
        network = make_network(encoder, objective.head, teacher.env.num_actions, **kwargs)
        optimizer = optax.adam(config.lr, eps=config.eps)
        return cls(config, teacher, objective, network, optimizer)

    # --- the student ----------------------------------------------------------------------

    def apply(self, params, obs: jax.Array) -> jax.Array:
        return self.network.apply(params, network_input(obs, self.teacher.env.observation_dtype))

    def values(self, params, obs: jax.Array) -> jax.Array:
        """What the student acts on, [n, A]: Q-values (qr: mean quantiles) or logits."""
        return self.objective.values(self.apply(params, obs))

    def init_params(self, key: jax.Array):
        shape = (1, *self.teacher.env.observation_shape)
        return self.network.init(key, jnp.zeros(shape, self.teacher.env.observation_dtype))

    @property
    def frame_replay(self) -> bool:
        """The teacher's data are an Atari frame-once host replay: the student samples it on the
        host and updates on the device (`tdgen.distill.host_replay`)."""
        return isinstance(self.teacher.replay, HostReplay)

    def init(self) -> DistillState:
        """The state at update 0; a host-stepped teacher collects its buffer first (on the host,
        with the key the jitted init would have used). An Atari value teacher's host replay stays
        out of the jitted init: the state carries it (it is written to) with collect, else nothing
        (the teacher's, read from its checkpoint, is the data)."""
        key = jax.random.PRNGKey(self.config.seed)
        if self.frame_replay:
            return self._host_replay_state(key)
        if not self.teacher.host_stepped:
            return self._jit_init(key)
        c = self.config
        replay = host_buffer(self.teacher, c.buffer_size, c.num_envs, c.seed,
                             jax.random.split(key, 4)[3], c.teacher_epsilon)  # fmt: skip
        return self._jit_init(key, replay)

    def template(self) -> DistillState:
        """A state of the checkpoint's structure and shapes, to load one into: `init` on gymnax;
        for host-stepped teachers an empty buffer (nothing collected)."""
        if self.frame_replay:  # a replay's structure and shapes; loading reads fresh arrays
            return self._host_replay_state(jax.random.PRNGKey(self.config.seed))
        if not self.teacher.host_stepped:
            return self.init()
        c = self.config
        empty = replay_lib.init_replay(
            c.buffer_size, c.num_envs, self.teacher.env.observation_shape
        )
        return self._jit_init(jax.random.PRNGKey(c.seed), empty)

    def _host_replay_state(self, key: jax.Array) -> DistillState:
        state = self._jit_init(key, ())
        return state.replace(replay=self.teacher.replay if self.config.collect else ())

    @functools.cached_property
    def _jit_init(self):
        return jax.jit(self._init)

    def _init(self, key: jax.Array, replay: replay_lib.Replay | None = None) -> DistillState:
        """The state at update 0 from ``key``; ``replay``: a buffer collected on the host (None:
        the value teacher's, or filled here by the teacher acting in its gymnax environment)."""
        c, teacher = self.config, self.teacher
        key, key_params, key_env, key_fill = jax.random.split(key, 4)
        params = self.init_params(key_params)
        if teacher.host_stepped:
            obs, env_state = (), ()
        else:
            obs, env_state = teacher.env.reset_batch(key_env, self.collect_envs)
        replay = teacher.replay if replay is None else replay
        if replay is None:
            replay = replay_lib.init_replay(c.buffer_size, c.num_envs,
                                            teacher.env.observation_shape)  # fmt: skip
            (replay, env_state, obs), _ = jax.lax.scan(
                self._collect, (replay, env_state, obs),
                jax.random.split(key_fill, c.buffer_size // c.num_envs),
            )  # fmt: skip
        return DistillState(
            params=params, target_params=jax.tree.map(jnp.copy, params),
            opt_state=self.optimizer.init(params), replay=replay, env_state=env_state, obs=obs,
            key=key, updates=jnp.int32(0), loss_sum=jnp.float32(0.0), loss_count=jnp.int32(0),
            diverged=jnp.bool_(False),
        )  # fmt: skip

    @property
    def collect_envs(self) -> int:
        """Environments the teacher collects in: one per column of its buffer."""
        if self.teacher.replay is not None:
            return self.teacher.replay.num_envs
        return self.config.num_envs

    def _collect(self, carry, key):
        """One vectorised teacher step written into the buffer."""
        replay, env_state, obs = carry
        teacher = self.teacher
        key_act, key_env = jax.random.split(key)
        action = teacher.act(teacher.params, obs, key_act, self.config.teacher_epsilon)
        next_obs, env_state, reward, _, info = teacher.env.step_batch(key_env, env_state, action)
        replay = replay_lib.add(replay, obs, action, reward, info["final_observation"],
                                info["terminated"])  # fmt: skip
        return (replay, env_state, next_obs), None

    # --- losses -----------------------------------------------------------------------------

    def transitions(self, params, target_params, batch: dict[str, jax.Array]) -> dict[str, Any]:
        """The batch with everything the objective regresses onto, outside the gradient."""
        t = {"obs": batch["obs"], "action": batch["action"], "reward": batch["reward"],
             "discount": self.config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))}  # fmt: skip
        if self.objective.teacher != "none":
            t["teacher"] = self.teacher.outputs(self.teacher.params, batch["obs"])
        if self.objective.bootstraps:
            t["next_target"] = self.apply(target_params, batch["next_obs"])
            t["next_action"] = jnp.argmax(self.values(params, batch["next_obs"]), axis=-1)
        return jax.lax.stop_gradient(t)

    def transition_loss(self, params, t: dict[str, jax.Array]) -> jax.Array:
        """The objective on one transition (the probe's loss)."""
        out = self.apply(params, t["obs"][None])[0]
        return self.objective.loss(out, t, self.config.ent_coef)

    def batch_loss(self, params, t: dict[str, jax.Array]) -> jax.Array:
        outputs = self.apply(params, t["obs"])
        rest = {k: v for k, v in t.items() if k != "obs"}
        losses = jax.vmap(lambda o, tr: self.objective.loss(o, tr, self.config.ent_coef))(
            outputs, rest
        )
        return jnp.mean(losses)

    def _update(self, state: DistillState, _) -> tuple[DistillState, None]:
        c = self.config
        key, key_collect, key_sample = jax.random.split(state.key, 3)
        if c.collect:
            due = state.updates % c.collect_every == 0
            replay, env_state, obs = jax.lax.cond(
                due, lambda: self._collect((state.replay, state.env_state, state.obs),
                                           key_collect)[0],
                lambda: (state.replay, state.env_state, state.obs),
            )  # fmt: skip
            state = state.replace(replay=replay, env_state=env_state, obs=obs)
        batch = replay_lib.sample(state.replay, key_sample, c.batch_size)
        return self.learn(state, batch).replace(key=key), None

    def learn(self, state: DistillState, batch: dict[str, jax.Array]) -> DistillState:
        """One optimiser step of the student on ``batch`` (and the target copy when due)."""
        c = self.config
        t = self.transitions(state.params, state.target_params, batch)
        loss, grads = jax.value_and_grad(self.batch_loss)(state.params, t)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        count = state.updates + 1
        target = state.target_params
        if self.objective.bootstraps:
            target = jax.lax.cond(count % c.target_period == 0, lambda: params, lambda: target)
        return state.replace(
            params=params, target_params=target, opt_state=opt_state, updates=count,
            loss_sum=state.loss_sum + loss, loss_count=state.loss_count + 1,
            diverged=state.diverged | ~jnp.isfinite(loss),
        )  # fmt: skip

    def make_train(self) -> Train:
        """The pure pair `Train(init(key), segment(state))`: one segment is
        ``config.segment_updates`` updates (a seed group compiles it once: `Train.jit_group`).
        The pure init is gymnax's; a host-stepped teacher's students start from `init` and train
        one by one (the DISTILL family's ``is_host_stepped``)."""
        n = self.config.segment_updates
        return Train(self._init, lambda s: (jax.lax.scan(self._update, s, None, length=n)[0], None))

    def jit_segment(self):
        segment = self.make_train().jit()[1]
        return lambda state: segment(state)[0]

    # --- evaluation and probes ------------------------------------------------------------------

    @property
    def stochastic(self) -> bool:
        if self.config.eval_policy == "auto":
            return self.objective.name == "kl"
        return self.config.eval_policy == "stochastic"

    def policy(self, params) -> Policy:
        """How the student acts when evaluated: sampled (kl) or epsilon-greedy (Section 6.1)."""
        values = functools.partial(self.values, params)
        if self.stochastic:
            return sampled(values)
        return epsilon_greedy(values, self.config.eval_epsilon)

    def evaluate(self, params, key: jax.Array) -> dict[str, jax.Array]:
        """Returns on the teacher's training levels and held-out levels (Eq. 6's two terms), on
        gymnax environments (pure: jit it)."""
        c, teacher = self.config, self.teacher
        policy = self.policy(params)
        key_train, key_test = jax.random.split(key)
        out = {"charts/train_return": episode_returns(policy, teacher.env, key_train,
                                                      c.eval_envs, c.eval_steps)}  # fmt: skip
        if teacher.test_env is not teacher.env:
            out["charts/test_return"] = episode_returns(policy, teacher.test_env, key_test,
                                                        c.eval_envs, c.eval_steps)  # fmt: skip
        return out

    def evaluate_returns(self, params, key: jax.Array, updates: int) -> dict[str, float]:
        """`evaluate` at ``updates``: jitted on gymnax; for a host-stepped teacher in envpool pools
        of ``eval_envs`` seeded from (seed, updates), so a resumed student evaluates as the
        uninterrupted one did (`host_episode_returns`)."""
        if not self.teacher.host_stepped:
            return {k: float(v) for k, v in self._jit_evaluate(params, key).items()}
        c, teacher = self.config, self.teacher
        act = functools.partial(self._host_act, params)
        seed = env_seed(c.seed, updates, streams.EVAL_ENV)
        envs = {"train": teacher.env, "test": teacher.test_env}
        if teacher.test_env is teacher.env:
            del envs["test"]
        keys = dict(zip(("train", "test"), jax.random.split(key), strict=True))
        return {f"charts/{name}_return": host_episode_returns(act, env, keys[name], c.eval_envs,
                                                              c.eval_steps, seed)
                for name, env in envs.items()}  # fmt: skip

    @functools.cached_property
    def _jit_evaluate(self):
        return jax.jit(self.evaluate)

    @functools.cached_property
    def _host_act(self):
        return host_actor(self.policy)


def make_distill_probe(distiller: Distiller) -> Callable[[DistillState], ProbeResult]:
    """`probe(state) -> ProbeResult` on k distinct buffer transitions (position: updates)."""
    c = distiller.config
    target = ProbeTarget(distiller.values, distiller.transition_loss, distiller.optimizer,
                         reduce=distiller.objective.probe_reduce, model=distiller.network,
                         model_input=lambda obs: network_input(
                             obs, distiller.teacher.env.observation_dtype))  # fmt: skip

    @jax.jit
    def draw(networks, replay, key) -> Draw:
        params, target_params = networks  # the student's online and target parameters
        key_sample, key_init = jax.random.split(key)
        batch, indices = replay_lib.sample_distinct(replay, key_sample, c.probe_k)
        fresh = distiller.init_params(key_init)
        trained = distiller.transitions(params, target_params, batch)
        random = distiller.transitions(fresh, fresh, batch)
        return Draw(trained, random, fresh, distiller.optimizer.init(fresh), indices)

    probe = make_probe(
        {VALUE: target}, draw, center=c.probe_center, draws=c.probe_draws, measures=c.probe_measures
    )

    def run(state: DistillState) -> ProbeResult:
        view = ProbeView(state.params, state.opt_state, state.key, int(state.updates))
        return probe(view, (state.params, state.target_params), state.replay)

    return run


def reset_accumulators(state: DistillState) -> DistillState:
    """The state (one run's, or a group's stacked) with its since-last-log loss sums zeroed."""
    return state.replace(loss_sum=jnp.zeros_like(state.loss_sum),
                         loss_count=jnp.zeros_like(state.loss_count))  # fmt: skip


__all__ = ["DistillConfig", "DistillState", "Distiller", "make_distill_probe",
           "reset_accumulators"]  # fmt: skip
