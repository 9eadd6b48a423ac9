"""Policy churn of a tabular Q-function and a tabular policy, against changes computed by hand."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tdgen.interference import greedy_churn, policy_churn, policy_churn_tv

S, A, LR = 5, 3, 1.0


def tabular(params, obs):  # obs one-hot [m, S] -> Q [m, A]
    return obs @ params["q"]


def td_loss(params, t):
    return 0.5 * (tabular(params, t["obs"][None])[0, t["action"]] - t["target"]) ** 2


Q0 = np.array(
    [
        [1.0, 0.0, 0.0],  # state 0: trained on action 0 down to -1 -> greedy 1 (ties to first)
        [0.0, 0.5, 0.0],  # state 1: trained on action 2 up to 2 -> greedy 2
        [0.0, 0.0, 3.0],  # state 2: trained on action 2 down, 3 -> 2.5 with another: stays 2
        [2.0, 1.0, 0.0],  # state 3: not trained
        [0.0, 1.0, 0.0],  # state 4: not trained
    ],
    np.float32,
)
BATCH = {
    "obs": np.eye(S, dtype=np.float32)[[0, 1, 2]],
    "action": np.array([0, 2, 2]),
    "target": np.array([-2.0, 6.0, 1.5], np.float32),
}


def test_tabular_q_churn_is_the_greedy_actions_changed_by_hand():
    # one SGD step on the mean loss: q[s, a] -= LR / k * (q[s, a] - target)
    q1 = Q0.copy()
    for s, a, y in zip([0, 1, 2], BATCH["action"], BATCH["target"], strict=True):
        q1[s, a] -= LR / 3 * (Q0[s, a] - y)
    # by hand: q1[0, 0] = 0, q1[1, 2] = 2, q1[2, 2] = 2.5
    np.testing.assert_allclose(q1[[0, 1, 2], [0, 2, 2]], [0.0, 2.0, 2.5])
    before, after = Q0.argmax(1), q1.argmax(1)
    assert list(before) == [0, 1, 2, 0, 1] and list(after) == [0, 2, 2, 0, 1]
    # state 0 ties at 0 and keeps action 0: only state 1 changes
    opt = optax.sgd(LR)
    params = {"q": jnp.asarray(Q0)}
    churn = policy_churn(
        tabular, params, td_loss, BATCH, opt, opt.init(params), np.eye(S, dtype=np.float32)
    )
    assert float(churn) == pytest.approx(1 / 5)
    assert float(greedy_churn(Q0, q1)) == pytest.approx(1 / 5)
    # the reference batch can hold only states the step did not touch: no churn
    untouched = np.eye(S, dtype=np.float32)[[3, 4]]
    assert (
        float(policy_churn(tabular, params, td_loss, BATCH, opt, opt.init(params), untouched)) == 0
    )


def test_policy_head_churn_is_total_variation():
    before = np.log(np.array([[0.5, 0.5, 1e-9], [0.2, 0.3, 0.5]], np.float32))
    after = np.log(np.array([[0.25, 0.75, 1e-9], [0.2, 0.3, 0.5]], np.float32))
    # TV: state 0: 0.5 * (0.25 + 0.25) = 0.25; state 1: 0
    assert float(policy_churn_tv(before, after)) == pytest.approx(0.125, abs=1e-6)


def test_churn_refuses_bad_heads():
    opt = optax.sgd(LR)
    params = {"q": jnp.asarray(Q0)}
    with pytest.raises(ValueError, match="unknown churn head 'values'"):
        policy_churn(tabular, params, td_loss, BATCH, opt, opt.init(params), np.eye(S), "values")
