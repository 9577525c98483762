"""Gymnasium / PettingZoo environments (issue 3 registers them here)."""
