"""Model-free baselines (Stable-Baselines3) trained on the dvp_rl tasks."""
