"""Messages: bits with a source, a destination and a timed record of every hop they take.

Servers, devices and UEs only exchange messages (``DESIGN.md``, "The request's journey"): a
prompt going up, tokens coming down. Each hop (a wired link now; the NR uplink/downlink later)
appends a :class:`Hop` with its timestamps, so a request's latency can always be explained as
queueing + transmission + propagation per hop.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hop", "Message"]

_ids = itertools.count()


@dataclass(slots=True)
class Hop:
    """One hop of a message (seconds of simulated time).

    Attributes:
        link: Name of the link (or radio hop) taken.
        t_enqueued_s: The message reached the hop's queue.
        t_tx_start_s: Its first bit went out (``t_tx_start_s - t_enqueued_s`` is queueing).
        t_tx_end_s: Its last bit went out (transmission / serialization ends).
        t_delivered_s: Its last bit arrived at the far end (``nan`` if lost).
        lost: Why the hop dropped it (``""`` when delivered).
    """

    link: str
    t_enqueued_s: float
    t_tx_start_s: float = math.nan
    t_tx_end_s: float = math.nan
    t_delivered_s: float = math.nan
    lost: str = ""

    @property
    def queueing_s(self) -> float:
        """Time waiting behind earlier messages."""
        return self.t_tx_start_s - self.t_enqueued_s

    @property
    def transmission_s(self) -> float:
        """Time putting the bits on the medium."""
        return self.t_tx_end_s - self.t_tx_start_s

    @property
    def propagation_s(self) -> float:
        """Time from the last bit sent to the last bit received (latency + jitter + order)."""
        return self.t_delivered_s - self.t_tx_end_s


@dataclass(slots=True, eq=False)
class Message:
    """Bits from ``source`` to ``destination``.

    Attributes:
        size_bits: Payload plus protocol overhead, bits (> 0).
        source: Sending node's name.
        destination: Receiving node's name.
        t_created_s: When the sender made it.
        kind: What it carries (e.g. ``"prompt"``, ``"tokens"``), for tables.
        payload: What the receiver needs (e.g. the request), never read by the network.
        hops: Hops taken so far, in order.
        msg_id: Unique id within the process (creation order).
    """

    size_bits: int
    source: str
    destination: str
    t_created_s: float
    kind: str = ""
    payload: Any = None
    hops: list[Hop] = field(default_factory=list)
    msg_id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if isinstance(self.size_bits, bool) or not isinstance(self.size_bits, int):
            raise ValueError(f"message size_bits must be an integer, got {self.size_bits!r}")
        if self.size_bits < 1:
            raise ValueError(f"message size_bits must be >= 1, got {self.size_bits}")

    @property
    def lost(self) -> str:
        """Why the message was dropped (``""`` while delivered or in flight)."""
        return next((h.lost for h in self.hops if h.lost), "")

    @property
    def t_delivered_s(self) -> float:
        """When the last hop delivered it (``nan`` while in flight or lost)."""
        if not self.hops or self.lost:
            return math.nan
        return self.hops[-1].t_delivered_s
