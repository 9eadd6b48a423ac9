"""Each distillation loss against a hand computation, and the signs of the entropy terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tdgen.distill.objectives import (
    OBJECTIVES,
    advantage_regression,
    behaviour_cloning,
    double_q_learning,
    kl_distillation,
    q_regression,
    qa_regression,
    quantile_regression,
)

Q_S = jnp.array([1.0, 2.0, 4.0])
Q_T = jnp.array([0.0, 2.5, 3.0])


def test_value_regressions():
    t = {"teacher": Q_T, "action": jnp.int32(2)}
    assert float(q_regression(Q_S, t)) == pytest.approx(1.0 + 0.25 + 1.0)  # Eq. 22
    assert float(qa_regression(Q_S, t)) == pytest.approx(1.0)
    # Advantages: student [-4/3, -1/3, 5/3], teacher [-11/6, 2/3, 7/6]; differences 1/2, -1, 1/2.
    assert float(advantage_regression(Q_S, t)) == pytest.approx(0.25 + 1.0 + 0.25)
    # Adding a constant to every action value changes q-regression, not advantage regression.
    assert float(advantage_regression(Q_S + 10.0, t)) == pytest.approx(1.5)
    assert float(q_regression(Q_S + 10.0, t)) > 100


def test_behaviour_cloning_and_its_entropy_bonus():
    logits = jnp.log(jnp.array([0.5, 0.25, 0.25]))
    t = {"action": jnp.int32(1)}
    entropy = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    assert float(behaviour_cloning(logits, t, 0.0)) == pytest.approx(-np.log(0.25))
    assert float(behaviour_cloning(logits, t, 0.1)) == pytest.approx(-np.log(0.25) - 0.1 * entropy)
    # The bonus rewards entropy: at equal likelihood of the action, the flatter policy has the
    # lower loss (a bonus, Eq. 57), so its gradient pushes toward higher entropy.
    peaked = jnp.log(jnp.array([0.7, 0.25, 0.05]))
    assert float(behaviour_cloning(logits, t, 0.1)) < float(behaviour_cloning(peaked, t, 0.1))
    assert float(behaviour_cloning(logits, t, 0.0)) == pytest.approx(
        float(behaviour_cloning(peaked, t, 0.0)), rel=1e-6
    )


def test_kl_distillation_is_kl_of_student_to_teacher_minus_the_bonus():
    p_s, p_t = np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.25, 0.5])
    t = {"teacher": jnp.log(jnp.asarray(p_t))}
    kl = np.sum(p_s * np.log(p_s / p_t))
    entropy = -np.sum(p_s * np.log(p_s))
    assert float(kl_distillation(jnp.log(jnp.asarray(p_s)), t, 0.0)) == pytest.approx(kl)
    assert float(kl_distillation(jnp.log(jnp.asarray(p_s)), t, 0.01)) == pytest.approx(
        kl - 0.01 * entropy
    )
    assert float(kl_distillation(t["teacher"], t, 0.0)) == pytest.approx(0.0, abs=1e-7)
    # With the bonus, the minimiser is flatter than the teacher.
    grad = jax.grad(lambda l: kl_distillation(l, t, 0.5))(t["teacher"])
    assert grad[2] > 0  # the teacher's most likely action is pushed down


def test_double_q_learning_uses_the_online_argmax_and_the_target_value():
    t = {"action": jnp.int32(0), "reward": jnp.float32(1.0), "discount": jnp.float32(0.5),
         "next_target": jnp.array([10.0, 2.0, 0.0]), "next_action": jnp.int32(1)}  # fmt: skip
    # target = 1 + 0.5 * next_target[1] = 2; q(a=0) = 1: Huber(1 - 2) = 0.5
    assert float(double_q_learning(Q_S, t)) == pytest.approx(0.5)
    t["next_action"] = jnp.int32(0)  # target 6: |error| 5 > 1: Huber = 5 - 0.5
    assert float(double_q_learning(Q_S, t)) == pytest.approx(4.5)


def test_quantile_regression_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    theta = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    next_theta = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    t = {"action": jnp.int32(1), "reward": jnp.float32(0.3), "discount": jnp.float32(0.9),
         "next_target": next_theta}  # fmt: skip
    greedy = int(np.argmax(np.mean(np.asarray(next_theta), axis=1)))
    target = 0.3 + 0.9 * np.asarray(next_theta)[greedy]
    pred = np.asarray(theta)[1]
    tau = (np.arange(4) + 0.5) / 4
    total = 0.0
    for i in range(4):
        for j in range(4):
            u = target[j] - pred[i]
            huber = 0.5 * u * u if abs(u) <= 1 else abs(u) - 0.5
            total += abs(tau[i] - (u < 0)) * huber / 4
    assert float(quantile_regression(theta, t)) == pytest.approx(total, rel=1e-5)


def test_objective_table():
    assert set(OBJECTIVES) == {"q", "qa", "advantage", "qr", "double_q", "bc", "kl"}
    assert OBJECTIVES["bc"].probe_reduce == "policy" and OBJECTIVES["q"].probe_reduce == "max"
    assert OBJECTIVES["qr"].bootstraps and OBJECTIVES["double_q"].bootstraps
    assert OBJECTIVES["qr"].values(jnp.ones((5, 3, 7))).shape == (5, 3)
