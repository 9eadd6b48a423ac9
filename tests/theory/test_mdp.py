import numpy as np
import pytest

from tdgen.theory.mdp import (
    FiniteMDP,
    circle_mdp,
    grid_world,
    mountain_car_mdp,
    mountain_car_step,
    random_graph_mdp,
    solve_bellman,
)


def _random_mdp(rng, S=6, A=3, gamma=0.9):
    P = rng.random((A, S, S))
    return FiniteMDP(P / P.sum(axis=2, keepdims=True), rng.standard_normal((S, A)), gamma)


def test_v_pi_is_the_fixed_point_of_the_bellman_operator():
    mdp = _random_mdp(np.random.default_rng(0))
    policy = np.array([0, 1, 2, 0, 1, 2])
    V = mdp.V_pi(policy)
    np.testing.assert_allclose(V, mdp.R_pi(policy) + mdp.gamma * mdp.P_pi(policy) @ V, atol=1e-12)


def test_v_pi_matches_a_truncated_discounted_sum_of_rewards():
    mdp = _random_mdp(np.random.default_rng(1), gamma=0.5)
    pi = np.full((6, 3), 1 / 3)
    P, R = mdp.P_pi(pi), mdp.R_pi(pi)
    total, Pk = np.zeros(6), np.eye(6)
    for k in range(80):
        total += mdp.gamma**k * Pk @ R
        Pk = Pk @ P
    np.testing.assert_allclose(mdp.V_pi(pi), total, atol=1e-12)


def test_value_iteration_policy_is_optimal():
    mdp = _random_mdp(np.random.default_rng(2))
    V, policy = mdp.value_iteration(tol=1e-10)
    np.testing.assert_allclose(mdp.V_pi(policy), V, atol=1e-8)
    for a in range(3):  # no single-action deviation improves the greedy policy (policy improvement)
        assert np.all(mdp.q_values(V)[:, a] <= V + 1e-8)


@pytest.mark.parametrize(
    ("P", "R", "gamma", "message"),
    [
        (np.full((1, 3, 3), 0.5), np.zeros((3, 1)), 0.9, "rows of P must sum to 1"),
        (np.full((1, 3, 3), 1 / 3), np.zeros((3, 1)), 1.0, "gamma must lie in"),
        (np.full((1, 3, 3), 1 / 3), np.zeros((3, 1)), -0.1, "gamma must lie in"),
        (np.full((1, 3, 3), 1 / 3), np.zeros((3, 2)), 0.9, "R must have shape"),
        (np.full((3, 3), 1 / 3), np.zeros((3, 1)), 0.9, "P must have shape"),
    ],
)
def test_invalid_mdps_are_rejected_with_a_named_problem(P, R, gamma, message):
    with pytest.raises(ValueError, match=message):
        FiniteMDP(P, R, gamma)


def test_invalid_policy_is_rejected():
    mdp = circle_mdp(5, reward_state=0)
    with pytest.raises(ValueError, match="policy"):
        mdp.P_pi(np.array([0, 0, 0, 0, 1]))


def test_circle_mdp_value_is_a_discounted_ring():
    n, gamma = 10, 0.9
    mdp = circle_mdp(n, reward_state=3, gamma=gamma)
    V = mdp.V_pi(np.zeros(n, int))
    # From state s the reward comes after (3 - s) mod n steps, then every n steps.
    expected = gamma ** ((3 - np.arange(n)) % n) / (1 - gamma**n)
    np.testing.assert_allclose(V, expected, atol=1e-12)


def test_random_graph_walk_is_connected_reversible_and_reproducible():
    mdp = random_graph_mdp(40, 0.03, seed=3)  # sparse enough to need joining components
    P = mdp.P_pi(np.zeros(40, int))
    reach = np.linalg.matrix_power(np.eye(40) + P, 40) > 0
    assert reach.all()
    adjacency = P > 0
    assert (adjacency == adjacency.T).all()  # undirected graph
    stationary = adjacency.sum(axis=1) / adjacency.sum()
    np.testing.assert_allclose(stationary[:, None] * P, (stationary[:, None] * P).T, atol=1e-15)
    np.testing.assert_array_equal(P, random_graph_mdp(40, 0.03, seed=3).P_pi(np.zeros(40, int)))


def test_grid_world_optimal_values_decay_with_distance_to_goal():
    mdp = grid_world(4, 5, gamma=0.9)
    V, policy = mdp.value_iteration(tol=1e-12)
    goal = 4 * 5 - 1
    assert V[goal] == 0.0
    for s in range(goal):
        r, c = divmod(s, 5)
        distance = (3 - r) + (4 - c)
        assert V[s] == pytest.approx(0.9 ** (distance - 1))


def test_mountain_car_step_matches_the_classic_dynamics():
    pos, vel = mountain_car_step(np.array([-0.5]), np.array([0.0]), np.array([2]))
    expected_vel = 0.001 - 0.0025 * np.cos(3 * -0.5)
    np.testing.assert_allclose(vel, [expected_vel])
    np.testing.assert_allclose(pos, [-0.5 + expected_vel])
    pos, vel = mountain_car_step(np.array([-1.19]), np.array([-0.07]), np.array([0]))
    assert pos[0] == -1.2 and vel[0] == 0.0  # the left wall stops the car


def test_mountain_car_near_optimal_policy_reaches_the_goal_from_the_valley():
    car = mountain_car_mdp(bins=20, samples_per_cell=8, action_repeat=4, gamma=0.99)
    mdp = car.mdp
    assert mdp.num_states == 400 and mdp.num_actions == 3
    np.testing.assert_allclose(car.values, mdp.V_pi(car.policy), atol=1e-3)
    # Cells near the bottom of the valley at rest need many steps: their value is well below zero,
    # and the goal cells are absorbing with value zero.
    grid = car.grid(car.values)
    assert grid[-1].max() == 0.0
    assert grid[8, 10] < -20
    assert car.grid(car.policy).shape == (20, 20)


def test_solve_bellman_of_self_loops_is_a_geometric_series():
    np.testing.assert_allclose(solve_bellman(np.eye(3), np.ones(3), 0.5), 2 * np.ones(3))
