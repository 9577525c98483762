"""Write a PRB policy, register it, and compare it with PF on matched seeds.

Run: ``python examples/custom_policy.py`` (``EDGETWIN_FAST=1`` for a quick pass). The policy
below gives each PRB to the eligible UE with the best estimated rate on it (max C/I written by
hand); with bursty traffic the ``has_data`` mask matters, and the cell rejects any PRB given to
a UE without data.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgetwin.agents import make_policy, register_policy
from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario

FAST = os.environ.get("EDGETWIN_FAST") == "1"


class BestRateFirst:
    """Each PRB to the eligible UE with the highest estimated rate on it."""

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        """UE per PRB, [n_cell, n_prb]; −1 in cells where nobody has data."""
        has_data = obs["has_data"]  # [n_cell, n_ue]
        rate = np.where(has_data[..., None], obs["rate_bps"], -1.0)  # [n_cell, n_ue, n_prb]
        alloc = rate.argmax(axis=-2)
        return np.where(has_data.any(axis=-1, keepdims=True), alloc, -1)


def main() -> None:
    """Register the policy and compare it with PF on the same seeds."""
    register_policy("prb/best_rate_first", entry_point=f"{__name__}:BestRateFirst")
    config = load_scenario("bursty_cell", ["duration_s=0.3"] if FAST else [])
    for name in ("prb/best_rate_first", "prb/pf"):
        thr = []
        for seed in range(2):
            sim = build(config, policies={"prb": make_policy(name)}, seed=seed)
            sim.run()
            thr.append(sim.results().summary["cell_throughput_mbps"])
        print(f"{name:<22} cell throughput {np.mean(thr):7.2f} Mbit/s (seeds 0-1)")


if __name__ == "__main__":
    main()
