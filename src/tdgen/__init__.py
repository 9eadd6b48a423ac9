"""tdgen: learning dynamics and generalisation in reinforcement learning (Lyle et al., ICML 2022)."""

__version__ = "0.1.0"
