"""The actor-critic family: PPO and DAAC on one loop (rollouts, GAE, the algorithm's update)."""
