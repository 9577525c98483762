"""Downlink traffic into per-UE buffers: full buffer or Poisson packet arrivals.

Arrivals are pre-generated per batch of slots (arrays, not one event per packet) from the
``"traffic"`` stream, so two policies run with the same seed see identical arrivals.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import ConfigDict, Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.types import BoolArray, FloatArray


class FullBufferTraffic(StrictConfig):
    """Every UE always has data (the usual system-level assumption)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["full_buffer"] = "full_buffer"


class PoissonTraffic(StrictConfig):
    """Poisson packet arrivals of fixed size into each UE's buffer (bursty traffic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["poisson"] = "poisson"
    packet_rate_hz: float = Field(100.0, gt=0, le=1e6, description="Packets per second per UE.")
    packet_bits: int = Field(12_000, ge=8, le=10**9, description="Bits per packet.")


TrafficConfig = Annotated[FullBufferTraffic | PoissonTraffic, Field(discriminator="kind")]


class TrafficSource:
    """Pre-generated downlink arrivals per slot, consumed by slot index in batches.

    Args:
        config: Traffic configuration.
        n_cell: Cells.
        n_ue: UEs per cell.
        slot_s: Slot duration in seconds.
        batch_slots: Slots generated per batch.
        rng: The ``"traffic"`` random stream.
        ue_mask: UEs that carry this traffic, bool broadcastable to [n_cell, n_ue] (e.g. a
            row [1, n_ue] for every cell); default all. The others
            (e.g. UEs whose downlink carries only LLM messages) start empty and get no
            arrivals; the random draws are the same either way (common random numbers).
    """

    #: Bits a full-buffer UE starts with; large enough never to run out (1e15 bits last
    #: ~11 days at 1 Gbit/s), finite so that observations stay finite for RL normalizers.
    FULL_BUFFER_BITS = 1e15

    def __init__(
        self,
        config: FullBufferTraffic | PoissonTraffic,
        n_cell: int,
        n_ue: int,
        slot_s: float,
        batch_slots: int,
        rng: np.random.Generator,
        ue_mask: BoolArray | None = None,
    ) -> None:
        self.config = config
        self._mask: FloatArray | None = None
        if ue_mask is not None:
            try:
                mask = np.broadcast_to(np.asarray(ue_mask, dtype=bool), (n_cell, n_ue))
            except ValueError:
                raise ValueError(
                    f"ue_mask of shape {np.shape(ue_mask)} does not broadcast to "
                    f"[n_cell, n_ue] = {(n_cell, n_ue)}"
                ) from None
            self._mask = None if mask.all() else mask.astype(np.float64)
        self.full_buffer = isinstance(config, FullBufferTraffic)
        self._shape = (n_cell, n_ue)
        self._slot_s = slot_s
        self._batch_slots = int(batch_slots)
        self._rng = rng
        self._first = 0
        self._bits: FloatArray = np.zeros((0, n_cell, n_ue))
        self._any: BoolArray = np.zeros(0, dtype=bool)
        self._empty_from = 0  # slots in [_empty_from, _first) are known to have no arrivals

    def initial_buffer_bits(self) -> FloatArray:
        """Buffer at t = 0, shape [n_cell, n_ue], bits."""
        bits = np.full(self._shape, self.FULL_BUFFER_BITS if self.full_buffer else 0.0)
        return bits if self._mask is None else bits * self._mask

    def _next_batch(self) -> None:
        self._first += self._bits.shape[0]
        n = self._batch_slots
        if self.full_buffer:
            self._bits = np.zeros((n, *self._shape))
        else:
            assert isinstance(self.config, PoissonTraffic)
            # Poisson packet counts per slot: arrivals of a Poisson process binned by slot.
            lam = self.config.packet_rate_hz * self._slot_s
            counts = self._rng.poisson(lam, size=(n, *self._shape))
            self._bits = counts.astype(np.float64) * float(self.config.packet_bits)
            if self._mask is not None:
                self._bits *= self._mask
        self._any = np.asarray(self._bits.reshape(n, -1).any(axis=1), dtype=bool)

    def _ensure(self, k: int) -> None:
        if k < self._first:
            raise ValueError(
                f"slot {k} precedes the current traffic batch (slots are consumed in order)"
            )
        while k >= self._first + self._bits.shape[0]:
            self._next_batch()

    def arrivals(self, k: int) -> FloatArray | None:
        """Bits arriving in slot ``k``, shape [n_cell, n_ue], or ``None`` if nothing arrives."""
        if self._empty_from <= k < self._first:
            # a look-ahead (next_arrival_slot) passed this slot's batch: it had no arrivals
            return None
        self._ensure(k)
        j = k - self._first
        return self._bits[j] if self._any[j] else None

    def next_arrival_slot(self, k: int, limit: int) -> int:
        """First slot ≥ ``k`` with an arrival, or ``limit`` if there is none before it."""
        if self.full_buffer:
            return limit
        start = k  # the caller never asks for a slot before this one again
        if self._empty_from <= k < self._first:
            k = self._first  # known empty (an earlier look-ahead passed them)
        while k < limit:
            self._ensure(k)
            j = k - self._first
            hits = np.flatnonzero(self._any[j:])
            if hits.size:
                return min(k + int(hits[0]), limit)
            k = self._first + self._bits.shape[0]
            # Slots start..k-1 have no arrivals: a process woken early (an external enqueue)
            # may still ask for them after the batch that holds them is gone.
            self._empty_from = start
        return limit
