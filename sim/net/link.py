"""A wired link: FIFO queue, serialization at the link rate, latency and jitter.

One direction of a backhaul (gNB ↔ edge), a WAN (edge ↔ cloud) or any fixed network path. A
message sent at ``t`` waits behind the unfinished work of earlier messages, is serialized at
``bandwidth_bps`` and arrives ``latency_s + jitter`` after its last bit left:

    start_i   = max(t_i, end_{i-1})                 FIFO, work-conserving (Lindley 1952)
    end_i     = start_i + bits_i / bandwidth_bps    serialization
    arrival_i = end_i + latency_s + J_i             J_i >= 0 drawn from the jitter distribution

With ``in_order`` (the default: LLM traffic rides TCP/QUIC streams, which deliver in order) a
message is not delivered before the one sent ahead of it: ``arrival_i = max(arrival_i,
arrival_{i-1})``. With ``buffer_bytes`` the queue is drop-tail: a message that would make the
unfinished work exceed the buffer is lost (counted, and its delivery event still fires).

Every send costs O(1): the timestamps follow from the recursion above, and the delivery is one
SimPy timeout. The transmitter's occupancy (messages queued or in transmission) is a level
series, so its time average can be checked against Little's law (``L = λ W``).
"""

from __future__ import annotations

import math
from array import array
from typing import Literal

import numpy as np
import pandas as pd
import simpy
from pydantic import Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.metrics.levels import LevelSeries
from edgetwin.sim.net.message import Hop, Message

__all__ = ["JitterConfig", "LinkConfig", "WiredLink"]

#: Why a drop-tail link dropped a message.
LOST_BUFFER = "buffer overflow"


class JitterConfig(StrictConfig):
    """Extra delay per message on top of the latency, seconds, always >= 0.

    ``kind``: ``none``; ``uniform`` on ``[0, scale_s]``; ``exponential`` with mean ``scale_s``;
    ``halfnormal``: ``|N(0, scale_s²)|``.
    """

    kind: Literal["none", "uniform", "exponential", "halfnormal"] = "none"
    scale_s: float = Field(0.0, ge=0.0, le=10.0)

    def draw(self, rng: np.random.Generator) -> float:
        """One jitter sample (s); ``none`` and ``scale_s == 0`` draw nothing."""
        if self.kind == "none" or self.scale_s == 0.0:
            return 0.0
        if self.kind == "uniform":
            return float(rng.uniform(0.0, self.scale_s))
        if self.kind == "exponential":
            return float(rng.exponential(self.scale_s))
        return abs(float(rng.normal(0.0, self.scale_s)))

    @property
    def mean_s(self) -> float:
        """Mean of the distribution (s); half-normal: ``σ √(2/π)`` (Leone et al. 1961)."""
        if self.kind == "none":
            return 0.0
        if self.kind == "uniform":
            return self.scale_s / 2.0
        if self.kind == "exponential":
            return self.scale_s
        return self.scale_s * math.sqrt(2.0 / math.pi)


class LinkConfig(StrictConfig):
    """One direction of a wired link.

    Attributes:
        latency_s: One-way propagation and switching delay, s.
        bandwidth_bps: Serialization rate, bit/s.
        jitter: Extra random delay per message.
        buffer_bytes: Drop-tail limit on the unfinished work, bytes (None: unlimited).
        in_order: Deliver in sending order (TCP/QUIC streams).
    """

    latency_s: float = Field(0.0, ge=0.0, le=10.0)
    bandwidth_bps: float = Field(1e9, gt=0.0, le=1e13)
    jitter: JitterConfig = JitterConfig()
    buffer_bytes: int | None = Field(None, ge=1)
    in_order: bool = True


class WiredLink:
    """A wired link in a simulation (see the module docstring).

    Args:
        env: The SimPy environment.
        name: The link's name (tables, hops, the jitter stream).
        config: Latency, rate, jitter, buffer, ordering.
        rng: Generator of the jitter draws (one per message, in sending order), e.g.
            ``streams.get(f"link.{name}")``, so runs with the same seed see the same jitter.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        config: LinkConfig,
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.rng = rng
        self._busy_until_s = 0.0
        self._last_arrival_s = -math.inf
        self._occupancy = 0
        self.levels = LevelSeries(("in_link",), rows="none")
        self.levels.record(float(env.now), (0,))  # time averages start when the link does
        self.sent = self.lost = 0
        self.bits_sent = 0
        self.busy_s = 0.0
        # per accepted message: enqueued, tx start, tx end, delivered (s); bits
        self._t = [array("d") for _ in range(4)]
        self._bits = array("q")

    # ------------------------------------------------------------------ sending
    def send(self, msg: Message) -> simpy.Event:
        """Put ``msg`` on the link now; the returned event fires with ``msg`` on delivery.

        A message dropped by the buffer gets a hop with ``lost`` set and its event fires now.
        """
        now = float(self.env.now)
        cfg = self.config
        self.sent += 1
        hop = Hop(self.name, now)
        msg.hops.append(hop)
        backlog_bits = max(self._busy_until_s - now, 0.0) * cfg.bandwidth_bps
        # the backlog is a float product of times: allow rounding, not a whole bit
        limit_bits = 8 * cfg.buffer_bytes + 1e-6 if cfg.buffer_bytes is not None else math.inf
        if backlog_bits + msg.size_bits > limit_bits:
            self.lost += 1
            hop.lost = LOST_BUFFER
            return self.env.timeout(0.0, value=msg)
        tx_s = msg.size_bits / cfg.bandwidth_bps
        hop.t_tx_start_s = max(now, self._busy_until_s)
        hop.t_tx_end_s = hop.t_tx_start_s + tx_s
        self._busy_until_s = hop.t_tx_end_s
        arrival = hop.t_tx_end_s + cfg.latency_s + cfg.jitter.draw(self.rng)
        if cfg.in_order:
            arrival = max(arrival, self._last_arrival_s)
        self._last_arrival_s = arrival
        hop.t_delivered_s = arrival
        self.bits_sent += msg.size_bits
        self.busy_s += tx_s
        for col, v in zip(self._t, (now, hop.t_tx_start_s, hop.t_tx_end_s, arrival), strict=True):
            col.append(v)
        self._bits.append(msg.size_bits)
        self._occupancy += 1
        self.levels.record(now, (self._occupancy,))
        self.env.timeout(hop.t_tx_end_s - now).callbacks.append(self._left)
        return self.env.timeout(arrival - now, value=msg)

    def estimate_s(self, bits: int, ue: str | None = None) -> float:
        """Expected delivery time of ``bits`` sent now: backlog, serialization, mean delay (s)."""
        cfg = self.config
        backlog = max(self._busy_until_s - float(self.env.now), 0.0)
        return backlog + bits / cfg.bandwidth_bps + cfg.latency_s + cfg.jitter.mean_s

    def _left(self, _event: simpy.Event) -> None:
        """The last bit of the oldest message in the transmitter went out."""
        self._occupancy -= 1
        self.levels.record(float(self.env.now), (self._occupancy,))

    # ------------------------------------------------------------------ results
    def table(self) -> pd.DataFrame:
        """One row per accepted message: times (s) of each step and its size (bits)."""
        cols = ("t_enqueued_s", "t_tx_start_s", "t_tx_end_s", "t_delivered_s")
        data: dict[str, np.ndarray] = {
            c: np.frombuffer(a, np.float64).copy() for c, a in zip(cols, self._t, strict=True)
        }
        data["size_bits"] = np.frombuffer(self._bits, np.int64).copy()
        df = pd.DataFrame(data)
        df.insert(0, "link", self.name)
        return df

    def summary(self, now_s: float) -> dict[str, float]:
        """Counts, utilization and mean delays up to ``now_s``.

        Keys: ``sent``, ``lost``, ``delivered``, ``in_flight``, ``utilization`` (busy time /
        ``now_s``, the transmitter's load ρ), ``mean_queueing_s``, ``mean_sojourn_s`` (queue +
        transmission), ``mean_delivery_s`` (enqueue to delivery), ``mean_in_link`` (time
        average of the messages queued or in transmission).
        """
        t = {k: np.frombuffer(a, np.float64) for k, a in zip("qsed", self._t, strict=True)}
        delivered = int(np.count_nonzero(t["d"] <= now_s))
        mean = lambda x: float(x.mean()) if len(x) else math.nan  # noqa: E731
        busy = float(np.clip(t["e"], None, now_s).sum() - np.clip(t["s"], None, now_s).sum())
        return {
            "sent": float(self.sent),
            "lost": float(self.lost),
            "delivered": float(delivered),
            "in_flight": float(self.sent - self.lost - delivered),
            "utilization": busy / now_s if now_s > 0 else math.nan,
            "mean_queueing_s": mean(t["s"] - t["q"]),
            "mean_sojourn_s": mean(t["e"] - t["q"]),
            "mean_delivery_s": mean(t["d"] - t["q"]),
            "mean_in_link": self.levels.mean("in_link", now_s),
        }
