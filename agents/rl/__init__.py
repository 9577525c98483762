"""Trained PRB/power agents: features, networks, checkpoints, SB3 PPO and MAPPO learners.

This package imports torch (and, for training, Stable-Baselines3); nothing outside
``edgetwin.agents.rl`` imports it at module level, so ``edgetwin list`` stays torch-free. The
registry reaches :class:`~edgetwin.agents.rl.torch_policy.TorchPolicy` through a string entry
point (``prb/ppo``, ``power/ppo``).
"""

from __future__ import annotations
