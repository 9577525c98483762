"""Slot clock: slot k starts at ``t_k = k * slot_s``; time is never accumulated.

SimPy's "Time and Scheduling" notes that float accumulation makes close events collide;
computing every slot time from its integer index keeps slot boundaries exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlotClock:
    """Maps between integer slot indices and simulated time.

    Args:
        slot_s: Slot duration in seconds (> 0).
    """

    slot_s: float

    def __post_init__(self) -> None:
        if not self.slot_s > 0:
            raise ValueError(f"slot_s must be > 0, got {self.slot_s}")

    def time_of(self, k: int) -> float:
        """Start time of slot ``k`` in seconds."""
        return k * self.slot_s

    def slot_at(self, t_s: float) -> int:
        """Index of the slot that contains time ``t_s`` (a slot owns its start instant)."""
        k = math.floor(t_s / self.slot_s)
        # Guard against t_s = k*slot_s being computed as (k - tiny) by the division.
        if self.time_of(k + 1) <= t_s:
            k += 1
        return int(k)

    def next_slot(self, t_s: float) -> int:
        """First slot that starts at or after ``t_s``."""
        k = self.slot_at(t_s)
        return k if self.time_of(k) >= t_s else k + 1

    def n_slots(self, duration_s: float) -> int:
        """Number of whole slots that start before ``duration_s``."""
        return self.next_slot(duration_s)
