"""Finite MDPs: the objects every theory experiment runs on (section 2 of the paper).

A `FiniteMDP` holds transitions `P[a, s, s']`, expected rewards `R[s, a]` and a discount. A policy is
either an integer array `[S]` (deterministic) or a probability array `[S, A]`. Policy evaluation gives
`P^pi`, `R^pi` and `V^pi = (I - gamma P^pi)^-1 R^pi` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdgen.errors import InputError

_ROW_SUM_TOL = 1e-8


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A finite MDP with transitions `P[a, s, s']`, rewards `R[s, a]` and discount `gamma`.

    Rows of every `P[a]` are probability distributions; `gamma` lies in [0, 1).
    """

    P: np.ndarray
    R: np.ndarray
    gamma: float

    def __post_init__(self) -> None:
        P = np.asarray(self.P, dtype=float)
        R = np.asarray(self.R, dtype=float)
        if P.ndim != 3 or P.shape[1] != P.shape[2]:
            raise InputError(f"P must have shape [actions, states, states], got {P.shape}")
        num_actions, num_states = P.shape[0], P.shape[1]
        if R.shape != (num_states, num_actions):
            raise InputError(
                f"R must have shape [states, actions] = {(num_states, num_actions)}, got {R.shape}"
            )
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(R))):
            raise InputError("P and R must be finite")
        if np.any(P < 0):
            raise InputError("P has negative transition probabilities")
        row_sums = P.sum(axis=2)
        worst = np.unravel_index(np.argmax(np.abs(row_sums - 1.0)), row_sums.shape)
        if abs(row_sums[worst] - 1.0) > _ROW_SUM_TOL:
            raise InputError(
                f"rows of P must sum to 1: P[{worst[0]}, {worst[1]}, :] sums to {row_sums[worst]:.6g}"
            )
        if not 0.0 <= float(self.gamma) < 1.0:
            raise InputError(f"gamma must lie in [0, 1), got {self.gamma}")
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", float(self.gamma))

    @property
    def num_states(self) -> int:
        return self.P.shape[1]

    @property
    def num_actions(self) -> int:
        return self.P.shape[0]

    def policy_probabilities(self, policy: np.ndarray) -> np.ndarray:
        """Return the policy as probabilities `[S, A]`, from an int array `[S]` or probabilities."""
        policy = np.asarray(policy)
        S, A = self.num_states, self.num_actions
        if policy.shape == (S,) and np.issubdtype(policy.dtype, np.integer):
            if policy.min() < 0 or policy.max() >= A:
                raise InputError(
                    f"policy actions must lie in [0, {A}), got {policy.min()}..{policy.max()}"
                )
            return np.eye(A)[policy]
        if policy.shape == (S, A):
            if np.any(policy < 0) or not np.allclose(policy.sum(axis=1), 1.0, atol=_ROW_SUM_TOL):
                raise InputError("policy probabilities must be non-negative with rows summing to 1")
            return policy.astype(float)
        raise InputError(
            f"policy must be int [{S}] or probabilities [{S}, {A}], got {policy.shape}"
        )

    def P_pi(self, policy: np.ndarray) -> np.ndarray:
        """State-to-state transition matrix `P^pi[s, s'] = sum_a pi(a|s) P[a, s, s']`."""
        pi = self.policy_probabilities(policy)
        return np.einsum("sa,ast->st", pi, self.P)

    def R_pi(self, policy: np.ndarray) -> np.ndarray:
        """Expected one-step reward under the policy, `R^pi[s] = sum_a pi(a|s) R[s, a]`."""
        pi = self.policy_probabilities(policy)
        return np.einsum("sa,sa->s", pi, self.R)

    def V_pi(self, policy: np.ndarray) -> np.ndarray:
        """Exact value of the policy: the solution of `(I - gamma P^pi) V = R^pi`."""
        return solve_bellman(self.P_pi(policy), self.R_pi(policy), self.gamma)

    def q_values(self, V: np.ndarray) -> np.ndarray:
        """One-step look-ahead `Q[s, a] = R[s, a] + gamma sum_s' P[a, s, s'] V[s']`."""
        return self.R + self.gamma * np.einsum("ast,t->sa", self.P, V)

    def value_iteration(
        self, tol: float = 1e-8, max_iters: int = 100_000
    ) -> tuple[np.ndarray, np.ndarray]:
        """Optimal values and a greedy deterministic policy, by value iteration.

        Stops when successive iterates differ by less than `tol` (sup norm), so the returned values are
        within `tol * gamma / (1 - gamma)` of `V*`.
        """
        V = np.zeros(self.num_states)
        for _ in range(max_iters):
            V_next = self.q_values(V).max(axis=1)
            if np.max(np.abs(V_next - V)) < tol:
                V = V_next
                break
            V = V_next
        else:
            raise RuntimeError(f"value iteration did not reach tol={tol} in {max_iters} iterations")
        return V, self.q_values(V).argmax(axis=1)


def solve_bellman(P_pi: np.ndarray, R_pi: np.ndarray, gamma: float) -> np.ndarray:
    """`V^pi = (I - gamma P^pi)^-1 R^pi` for a state-to-state matrix `P_pi` `[S, S]`."""
    return np.linalg.solve(np.eye(len(R_pi)) - gamma * P_pi, R_pi)


def circle_mdp(n: int = 50, reward_state: int = 25, gamma: float = 0.9) -> FiniteMDP:
    """The circle MDP of Figure 9: states 0..n-1 on a ring, one action moving `s -> s+1 mod n`.

    Reward 1 is received on leaving `reward_state` (0-based), 0 elsewhere.
    """
    if n < 2:
        raise InputError(f"circle_mdp needs n >= 2, got {n}")
    if not 0 <= reward_state < n:
        raise InputError(f"reward_state must lie in [0, {n}), got {reward_state}")
    P = np.zeros((1, n, n))
    P[0, np.arange(n), (np.arange(n) + 1) % n] = 1.0
    R = np.zeros((n, 1))
    R[reward_state, 0] = 1.0
    return FiniteMDP(P, R, gamma)


def random_graph_mdp(n: int, p: float, seed: int, gamma: float = 0.9) -> FiniteMDP:
    """A random walk on a connected Erdos-Renyi graph G(n, p), with one action (appendix C.2).

    Disconnected components are joined by one random edge each, so the walk is irreducible. Rewards
    are i.i.d. standard normal per state, drawn from the same seed.
    """
    if n < 2 or not 0.0 <= p <= 1.0:
        raise InputError(f"random_graph_mdp needs n >= 2 and p in [0, 1], got n={n}, p={p}")
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    adjacency = upper | upper.T
    components = _connected_components(adjacency)
    for a, b in zip(components[:-1], components[1:], strict=True):
        i, j = rng.choice(a), rng.choice(b)
        adjacency[i, j] = adjacency[j, i] = True
    degree = adjacency.sum(axis=1, keepdims=True)
    P = (adjacency / degree)[None]
    R = rng.standard_normal((n, 1))
    return FiniteMDP(P, R, gamma)


def _connected_components(adjacency: np.ndarray) -> list[np.ndarray]:
    from scipy.sparse.csgraph import connected_components

    count, labels = connected_components(adjacency, directed=False)
    return [np.flatnonzero(labels == c) for c in range(count)]


GRID_ACTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right as (row, column) moves


def grid_world(
    height: int = 10,
    width: int = 10,
    goal: tuple[int, int] | None = None,
    slip: float = 0.0,
    gamma: float = 0.9,
) -> FiniteMDP:
    """A grid world with four actions (up, down, left, right) and an absorbing goal.

    State `r * width + c` is cell (r, c). Moves off the grid stay put; with probability `slip` the
    agent moves in a uniformly random direction instead. Entering the goal (default: the bottom-right
    cell) pays 1; the goal is absorbing with reward 0.
    """
    if height < 1 or width < 1 or height * width < 2:
        raise InputError(f"grid_world needs at least two cells, got {height}x{width}")
    if not 0.0 <= slip <= 1.0:
        raise InputError(f"slip must lie in [0, 1], got {slip}")
    goal = (height - 1, width - 1) if goal is None else goal
    if not (0 <= goal[0] < height and 0 <= goal[1] < width):
        raise InputError(f"goal {goal} lies outside the {height}x{width} grid")
    S, A = height * width, len(GRID_ACTIONS)
    goal_state = goal[0] * width + goal[1]
    moves = np.zeros((A, S, S))
    for s in range(S):
        r, c = divmod(s, width)
        for a, (dr, dc) in enumerate(GRID_ACTIONS):
            nr, nc = min(max(r + dr, 0), height - 1), min(max(c + dc, 0), width - 1)
            moves[a, s, nr * width + nc] = 1.0
    P = (1.0 - slip) * moves + slip * moves.mean(axis=0, keepdims=True)
    P[:, goal_state, :] = 0.0
    P[:, goal_state, goal_state] = 1.0
    R = P[:, :, goal_state].T.copy()
    R[goal_state] = 0.0
    return FiniteMDP(P, R, gamma)


# Classic MountainCar (Moore 1990; Sutton and Barto 2018, section 10.1; as in Gym's MountainCar-v0).
MOUNTAIN_CAR_POSITION = (-1.2, 0.6)
MOUNTAIN_CAR_VELOCITY = (-0.07, 0.07)
MOUNTAIN_CAR_GOAL = 0.5


def mountain_car_step(position: np.ndarray, velocity: np.ndarray, action: np.ndarray):
    """One step of the classic MountainCar dynamics, vectorised; actions are 0 (left), 1, 2 (right)."""
    velocity = velocity + (action - 1) * 0.001 - 0.0025 * np.cos(3.0 * position)
    velocity = np.clip(velocity, *MOUNTAIN_CAR_VELOCITY)
    position = np.clip(position + velocity, *MOUNTAIN_CAR_POSITION)
    velocity = np.where((position <= MOUNTAIN_CAR_POSITION[0]) & (velocity < 0), 0.0, velocity)
    return position, velocity


@dataclass(frozen=True, eq=False)
class MountainCarMDP:
    """A discretised MountainCar: the MDP, its near-optimal policy and values, and the grid."""

    mdp: FiniteMDP
    policy: np.ndarray
    values: np.ndarray
    position_bins: int
    velocity_bins: int

    def grid(self, state_values: np.ndarray) -> np.ndarray:
        """Reshape a per-state array into `[position_bins, velocity_bins]`."""
        return np.asarray(state_values).reshape(self.position_bins, self.velocity_bins)


def mountain_car_mdp(
    bins: int | tuple[int, int] = 30,
    samples_per_cell: int = 16,
    action_repeat: int = 4,
    gamma: float = 0.99,
    seed: int = 0,
) -> MountainCarMDP:
    """MountainCar discretised on a (position, velocity) grid, with its near-optimal policy.

    State `i * velocity_bins + j` is position cell i, velocity cell j. For each cell and action,
    `samples_per_cell` start points drawn uniformly in the cell are simulated for `action_repeat`
    steps of the classic dynamics; the fractions landing in each cell estimate `P[a, s, :]`. Reward is
    -1 per simulated step (so -action_repeat per transition, less if the goal is reached first);
    cells at or past the goal position are absorbing with reward 0. The policy is greedy w.r.t. the
    values from value iteration. Repeating the action makes transitions cross cells on coarse grids,
    where single steps would mostly stay in place.
    """
    position_bins, velocity_bins = (bins, bins) if isinstance(bins, int) else bins
    if position_bins < 2 or velocity_bins < 2 or samples_per_cell < 1 or action_repeat < 1:
        raise InputError(
            "mountain_car_mdp needs >= 2 bins per axis, samples_per_cell >= 1, action_repeat >= 1"
        )
    rng = np.random.default_rng(seed)
    pos_edges = np.linspace(*MOUNTAIN_CAR_POSITION, position_bins + 1)
    vel_edges = np.linspace(*MOUNTAIN_CAR_VELOCITY, velocity_bins + 1)
    S, A = position_bins * velocity_bins, 3

    cell_pos, cell_vel = np.divmod(np.arange(S), velocity_bins)
    u = rng.random((2, S, samples_per_cell))
    pos0 = pos_edges[cell_pos, None] + u[0] * np.diff(pos_edges)[cell_pos, None]
    vel0 = vel_edges[cell_vel, None] + u[1] * np.diff(vel_edges)[cell_vel, None]

    def cell_of(position, velocity):
        i = np.clip(np.searchsorted(pos_edges, position, side="right") - 1, 0, position_bins - 1)
        j = np.clip(np.searchsorted(vel_edges, velocity, side="right") - 1, 0, velocity_bins - 1)
        return i * velocity_bins + j

    P = np.zeros((A, S, S))
    R = np.zeros((S, A))
    for a in range(A):
        position, velocity = pos0.copy(), vel0.copy()
        reward = np.zeros_like(position)
        done = position >= MOUNTAIN_CAR_GOAL
        for _ in range(action_repeat):
            reward -= ~done
            next_pos, next_vel = mountain_car_step(position, velocity, np.full_like(position, a))
            position = np.where(done, position, next_pos)
            velocity = np.where(done, velocity, next_vel)
            done |= position >= MOUNTAIN_CAR_GOAL
        next_state = cell_of(position, velocity)
        rows = np.repeat(np.arange(S), samples_per_cell)
        np.add.at(P[a], (rows, next_state.ravel()), 1.0 / samples_per_cell)
        R[:, a] = reward.mean(axis=1)

    goal_cells = np.flatnonzero(pos_edges[cell_pos] >= MOUNTAIN_CAR_GOAL)
    P[:, goal_cells, :] = 0.0
    P[:, goal_cells, goal_cells] = 1.0
    R[goal_cells] = 0.0
    mdp = FiniteMDP(P, R, gamma)
    values, policy = mdp.value_iteration(tol=1e-6)
    return MountainCarMDP(mdp, policy, values, position_bins, velocity_bins)
