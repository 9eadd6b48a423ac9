"""Post-training distillation objectives (Section 6, Appendix D.1): losses on one transition.

Every objective is a pure function ``loss(student_out, t)`` of the student's outputs at one
observation and a transition dict ``t`` holding what it regresses onto (precomputed outside the
gradient): ``teacher`` (the frozen teacher's Q-values [A] or policy logits [A]), ``action``,
``reward``, ``discount`` (gamma * (1 - terminated)), and for the bootstrapping objectives the
student target network's outputs at the next observation (``next_target``) and the online
student's greedy next action (``next_action``). Batched with `jax.vmap`, the same function defines
the update-rank probe's per-transition loss.

- ``q``          value distillation on all actions, Eq. 22: sum_a (q_S(a) - q_T(a))^2
- ``qa``         regression on the buffer's action only: (q_S(a) - q_T(a))^2
- ``advantage``  regression on advantages A = q - mean_a q: sum_a (A_S(a) - A_T(a))^2
- ``qr``         quantile-regression Q-learning (Dabney et al. 2018) on the teacher's offline data
- ``double_q``   double Q-learning (van Hasselt et al. 2016, Huber loss) on the offline data
- ``bc``         behaviour cloning with an entropy bonus, Eq. 23 / Eq. 57: -log pi(a|s) - lam H(pi)
- ``kl``         policy distillation, Eq. 24: KL(pi_S || pi_T) - lam H(pi_S). Eq. 24 prints
                 "+ lam H", but Appendix B.2 calls it an entropy *bonus* equal to the teacher's
                 (PPO's) entropy coefficient, so the entropy is rewarded here, as in Eq. 57.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from tdgen.losses.distributional import quantile_q_learning_loss
from tdgen.losses.policy import categorical_entropy, categorical_kl
from tdgen.losses.value import double_q_learning_loss

TransitionLoss = Callable[[jax.Array, dict[str, jax.Array], float], jax.Array]


def q_regression(q: jax.Array, t: dict[str, jax.Array], coef: float = 0.0) -> jax.Array:
    """Eq. 22 on one state: sum over actions of squared differences to the teacher's Q."""
    del coef
    return jnp.sum(jnp.square(q - t["teacher"]))


def qa_regression(q: jax.Array, t: dict[str, jax.Array], coef: float = 0.0) -> jax.Array:
    """Squared difference to the teacher's Q of the buffer's action only."""
    del coef
    a = t["action"]
    return jnp.square(q[a] - t["teacher"][a])


def advantage_regression(q: jax.Array, t: dict[str, jax.Array], coef: float = 0.0) -> jax.Array:
    """Squared differences of advantages q - mean_a q (student against teacher), summed."""
    del coef
    student = q - jnp.mean(q)
    teacher = t["teacher"] - jnp.mean(t["teacher"])
    return jnp.sum(jnp.square(student - teacher))


def behaviour_cloning(logits: jax.Array, t: dict[str, jax.Array], coef: float) -> jax.Array:
    """Eq. 57: -log pi(a | s) - coef * H(pi(s)) for the buffer's action a."""
    logp = jax.nn.log_softmax(logits)
    return -logp[t["action"]] - coef * categorical_entropy(logits)


def kl_distillation(logits: jax.Array, t: dict[str, jax.Array], coef: float) -> jax.Array:
    """Eq. 24 with an entropy bonus: KL(pi_S || pi_T) - coef * H(pi_S)."""
    return categorical_kl(logits, t["teacher"]) - coef * categorical_entropy(logits)


def double_q_learning(q: jax.Array, t: dict[str, jax.Array], coef: float = 0.0) -> jax.Array:
    """Huber(q(a) - (r + discount * q_target(s', argmax_a' q_online(s', a'))))."""
    del coef
    online_next = jax.nn.one_hot(t["next_action"], q.shape[-1])  # argmax of this is next_action
    return double_q_learning_loss(q, t["action"], t["reward"], t["discount"], t["next_target"],
                                  online_next)  # fmt: skip


def quantile_regression(theta: jax.Array, t: dict[str, jax.Array], coef: float = 0.0) -> jax.Array:
    """QR-DQN's quantile Huber loss (kappa = 1) for quantiles theta [A, N].

    Target quantiles: r + discount * theta_target(s', a*), a* greedy for the target's mean.
    """
    del coef
    return quantile_q_learning_loss(theta, t["action"], t["reward"], t["discount"],
                                    t["next_target"])  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Objective:
    """A named objective: its loss, the student head, what the student outputs mean.

    head: "q" (Q-values), "qr" (quantiles [A, N]) or "policy" (logits); values: how outputs
    become per-action values for acting greedily; bootstraps: needs a student target network;
    teacher: what the teacher must provide, "q" (action values) or "logits" (a policy).
    """

    name: str
    loss: TransitionLoss
    head: str
    bootstraps: bool = False
    teacher: str = "q"

    def values(self, outputs: jax.Array) -> jax.Array:
        """Per-action values (or logits) the student acts greedily on: [..., A]."""
        if self.head == "qr":
            return jnp.mean(outputs, axis=-1)
        return outputs

    @property
    def probe_reduce(self) -> str:
        """Update-matrix reduction: max over actions for values, probability change for policies."""
        return "policy" if self.head == "policy" else "max"


OBJECTIVES: dict[str, Objective] = {
    "q": Objective("q", q_regression, "q"),
    "qa": Objective("qa", qa_regression, "q"),
    "advantage": Objective("advantage", advantage_regression, "q"),
    "qr": Objective("qr", quantile_regression, "qr", bootstraps=True, teacher="none"),
    "double_q": Objective("double_q", double_q_learning, "q", bootstraps=True, teacher="none"),
    "bc": Objective("bc", behaviour_cloning, "policy", teacher="none"),
    "kl": Objective("kl", kl_distillation, "policy", teacher="logits"),
}

__all__ = [
    "OBJECTIVES",
    "Objective",
    "advantage_regression",
    "behaviour_cloning",
    "double_q_learning",
    "kl_distillation",
    "q_regression",
    "qa_regression",
    "quantile_regression",
]
