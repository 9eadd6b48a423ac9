"""The value-based family: DQN, C51, QR-DQN on one loop (replay, epsilon-greedy acting, a loss on
one transition, a target network); each algorithm module contributes an `Algorithm` and a config."""
