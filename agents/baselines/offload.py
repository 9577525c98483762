"""Offloading policies (decision family ``"offload"``): where a request runs.

The observation is the one ``edgetwin.sim.compute.offload.Offloader`` builds: per tier
(``local``, ``edge``, ``cloud``, in that order) ``available`` and the estimates ``est_up_s``,
``est_queue_s``, ``est_compute_s``, ``est_down_s`` (float64 [3], seconds). The action is the
tier's index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["Fixed", "MinLatency"]

_TIERS = ("local", "edge", "cloud")


class Fixed:
    """Always the same tier (``offload/local``, ``offload/edge``, ``offload/cloud``).

    Args:
        tier: ``local``, ``edge`` or ``cloud``.
    """

    def __init__(self, tier: str) -> None:
        if tier not in _TIERS:
            raise ValueError(f"tier must be one of {', '.join(_TIERS)}, got {tier!r}")
        self.index = _TIERS.index(tier)

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The fixed tier's index."""
        return self.index


class MinLatency:
    """The available tier with the smallest estimated end-to-end time.

    ``est_up_s + est_queue_s + est_compute_s + est_down_s`` per tier (the estimate of the
    request's latency if sent there now); ties go to the lower index (local before edge before
    cloud: the cheaper tier for the network).
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> int:
        """The index of the tier with the least estimated latency."""
        total = sum(
            np.asarray(obs[k], dtype=np.float64)
            for k in ("est_up_s", "est_queue_s", "est_compute_s", "est_down_s")
        )
        total = np.where(np.asarray(obs["available"], dtype=bool), total, np.inf)
        return int(np.argmin(total))
