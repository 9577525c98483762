"""Downlink traffic into per-UE buffers: full buffer or Poisson packet arrivals.

Arrivals are pre-generated per batch of slots (arrays, not one event per packet) from the
``"traffic"`` stream, so two policies run with the same seed see identical arrivals.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class FullBufferTraffic(BaseModel):
    """Every UE always has data (the usual system-level assumption)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["full_buffer"] = "full_buffer"


class PoissonTraffic(BaseModel):
    """Poisson packet arrivals of fixed size into each UE's buffer (bursty traffic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["poisson"] = "poisson"
    packet_rate_hz: float = Field(100.0, gt=0, le=1e6, description="Packets per second per UE.")
    packet_bits: int = Field(12_000, ge=8, le=10**9, description="Bits per packet.")


TrafficConfig = Annotated[FullBufferTraffic | PoissonTraffic, Field(discriminator="kind")]
