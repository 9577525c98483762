"""The NR radio as a message hop: a message rides a UE's uplink or downlink buffer.

``DESIGN.md`` ("The request's journey"): a radio hop puts a message's bits in the UE's buffer of
the cell group (the downlink :class:`~edgetwin.sim.radio.cell.CellGroup` or the uplink
:class:`~edgetwin.sim.radio.uplink.UplinkCellGroup`) and fires its delivery when its last bit
is acknowledged. So the delivery time includes queueing behind the UE's earlier messages,
scheduling against the other users of the cell, SR/BSR and K2 on the uplink, HARQ
retransmissions, RLC resends of dropped TBs and the TDD pattern — whatever the cell process
models, the hop inherits.

Bits of one UE's buffer are served first in, first out: the k-th message of a UE is delivered
once the UE's cumulative acknowledged bits reach the cumulative size of its first k messages
(an RLC AM bearer delivers in order; counting bits rather than tracking each TB's bytes is
exact for the last bit of a message whenever TBs are acknowledged in order, and otherwise early
by at most the TBs still in HARQ — a few ms). Data is usable at the end of the slot that carried
its last bit. The UEs a hop serves must carry no other traffic (the cell's background traffic is
masked off them, ``CellGroup(traffic_ue_mask=...)``), so their acknowledged bits are all the
hop's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Literal, Protocol

import numpy as np
import simpy

from edgetwin.sim.clock import SlotClock
from edgetwin.sim.net.message import Hop, Message
from edgetwin.sim.types import FloatArray

__all__ = ["RadioGroup", "RadioHop"]


class RadioGroup(Protocol):
    """What a radio hop needs of a cell group (downlink or uplink)."""

    clock: SlotClock
    slot_listeners: list  # list[Callable[[int], None]]

    @property
    def delivered_bits(self) -> FloatArray:
        """Cumulative acknowledged bits per UE, [n_cell, n_ue]."""
        ...

    def enqueue(self, cell: int, ue: int, bits: float) -> None:
        """Add ``bits`` to the UE's buffer now."""
        ...

    def rate_estimate_bps(self, cell: int, ue: int) -> float:
        """Rate the UE could expect now (bit/s), from its last channel report and the load."""
        ...


class _Pending:
    """A message waiting for its last bit: cumulative mark (bits), delivery event, hop record."""

    __slots__ = ("event", "hop", "mark", "msg")

    def __init__(self, mark: float, msg: Message, event: simpy.Event, hop: Hop) -> None:
        self.mark = mark
        self.msg = msg
        self.event = event
        self.hop = hop


class RadioHop:
    """One direction of the NR radio for the UEs of a cell group.

    Args:
        env: The SimPy environment.
        name: Hop name (``"nr_ul"``, ``"nr_dl"``), shown in per-hop tables.
        group: The cell group whose buffers carry the messages.
        ue_index: UE name → (cell, UE index in the cell).
        direction: ``"up"`` (the UE is the message's source) or ``"down"`` (its destination).
        access_delay_s: Expected wait before a first transmission (uplink: SR occasion + grant
            + K2), added to :meth:`estimate_s` only.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        group: RadioGroup,
        ue_index: Mapping[str, tuple[int, int]],
        direction: Literal["up", "down"],
        access_delay_s: float = 0.0,
    ) -> None:
        if direction not in ("up", "down"):
            raise ValueError(f"{name}: direction must be 'up' or 'down', got {direction!r}")
        self.env = env
        self.name = name
        self.group = group
        self.ue_index = dict(ue_index)
        self.direction = direction
        self.access_delay_s = float(access_delay_s)
        self._sent_bits: dict[tuple[int, int], float] = {}
        self._pending: dict[tuple[int, int], deque[_Pending]] = {}
        self.n_sent = 0
        self.n_delivered = 0
        group.slot_listeners.append(self._on_slot)

    def _where(self, msg: Message) -> tuple[int, int]:
        ue = msg.source if self.direction == "up" else msg.destination
        try:
            return self.ue_index[ue]
        except KeyError:
            raise ValueError(
                f"{self.name}: message {msg.msg_id} is for UE {ue!r}, which is not attached to "
                f"this radio (attached: {len(self.ue_index)} UEs)"
            ) from None

    def send(self, msg: Message) -> simpy.Event:
        """Put ``msg`` in its UE's buffer now; the event fires with it when its last bit is in."""
        where = self._where(msg)
        now = float(self.env.now)
        mark = self._sent_bits.get(where, 0.0) + msg.size_bits
        self._sent_bits[where] = mark
        hop = Hop(self.name, now)
        msg.hops.append(hop)
        queue = self._pending.setdefault(where, deque())
        if not queue:
            hop.t_tx_start_s = now  # head of its UE's line: its bits go first
        event = self.env.event()
        queue.append(_Pending(mark, msg, event, hop))
        self.n_sent += 1
        self.group.enqueue(where[0], where[1], float(msg.size_bits))
        return event

    def _on_slot(self, k: int) -> None:
        """After slot ``k``: deliver every message whose last bit is now acknowledged."""
        if not self._pending:
            return
        delivered = self.group.delivered_bits
        clock = self.group.clock
        t_tx = clock.time_of(k)
        t_end = clock.time_of(k + 1)
        done = []
        for where, queue in self._pending.items():
            acked = delivered[where]
            while queue and queue[0].mark <= acked + 0.5:
                p = queue.popleft()
                p.hop.t_tx_end_s = t_tx
                p.hop.t_delivered_s = t_end
                self._fire(p, t_end)
                if queue:
                    queue[0].hop.t_tx_start_s = t_tx
            if not queue:
                done.append(where)
        for where in done:
            del self._pending[where]

    def _fire(self, p: _Pending, t_end: float) -> None:
        self.n_delivered += 1
        delay = max(0.0, t_end - float(self.env.now))
        timer = self.env.timeout(delay)
        event, msg = p.event, p.msg

        def deliver(_timer: simpy.Event) -> None:
            event.succeed(msg)

        timer.callbacks.append(deliver)

    def backlog_bits(self, ue: str) -> float:
        """Bits of ``ue``'s messages sent on this hop and not yet acknowledged."""
        where = self.ue_index[ue]
        return max(0.0, self._sent_bits.get(where, 0.0) - float(self.group.delivered_bits[where]))

    def estimate_s(self, bits: int, ue: str | None = None) -> float:
        """Expected delivery time of ``bits`` sent now by / to ``ue`` (s).

        (backlog + bits) / the UE's rate estimate, plus the access delay. Without a UE (a caller
        that does not know it) or without a usable rate estimate: ``inf``.
        """
        if ue is None or ue not in self.ue_index:
            return math.inf
        rate = self.group.rate_estimate_bps(*self.ue_index[ue])
        if not rate > 0.0 or not np.isfinite(rate):
            return math.inf
        return self.access_delay_s + (self.backlog_bits(ue) + bits) / rate

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet delivered."""
        return self.n_sent - self.n_delivered
