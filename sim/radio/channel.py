"""Channel models: generated in batches of many slots, consumed by slot index.

CONTRACT (filled in by the channel work): keep these names and shapes.

All backends return :class:`ChannelBatch` objects of consecutive slots; a cell asks for the next
batch when its slot index passes the end of the current one (also across idle periods, so that
results are identical with idle-slot skipping on or off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgetwin.sim.radio.geometry import Layout
from edgetwin.sim.radio.mobility import Mobility
from edgetwin.sim.types import BoolArray, FloatArray


class ChannelConfig(BaseModel):
    """Propagation and fading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["statistical", "sionna", "raytraced"] = Field(
        "statistical",
        description="'statistical' (numpy TR 38.901), 'sionna' (sionna.phy TR 38.901 models), "
        "'raytraced' (sionna.rt scene, optional extra).",
    )
    scenario: Literal["uma", "umi", "rma", "inh"] = Field("uma", description="TR 38.901 scenario.")
    los: Literal["probabilistic", "los", "nlos"] = Field(
        "probabilistic", description="LOS state: drawn from TR 38.901 Table 7.4.2-1, or forced."
    )
    shadowing: bool = Field(True, description="Log-normal shadow fading (TR 38.901 Table 7.4.1-1).")
    fading: Literal["none", "rayleigh"] = Field(
        "rayleigh", description="Small-scale fading: frequency-selective, time-correlated."
    )
    n_taps: int = Field(8, ge=1, le=64, description="Taps of the exponential power-delay profile.")
    delay_spread_s: float | None = Field(
        None, gt=0, le=1e-5, description="RMS delay spread; default: TR 38.901 median of scenario."
    )
    batch_slots: int = Field(100, ge=1, le=100_000, description="Slots generated per batch.")
    scene: str = Field("simple_street_canyon", description="sionna.rt built-in scene (raytraced).")
    cache_dir: str | None = Field(None, description="Cache for ray-traced channels (raytraced).")


@dataclass(frozen=True, slots=True)
class ChannelBatch:
    """Channel of ``n_slot`` consecutive slots starting at ``first_slot``.

    Attributes:
        first_slot: Index of the first slot in the batch.
        gain: Serving-link power gain per PRB (path loss, shadowing, antenna gains and
            small-scale fading), linear, shape [n_slot, n_cell, n_ue, n_prb].
        large_scale_gain: Large-scale power gain (no fast fading) from every cell to every UE,
            linear, shape [n_cell, n_ue, n_cell]; ``[c, u, c]`` is the serving link. Used for
            inter-cell interference.
        pathloss_db: Serving-link path loss, shape [n_cell, n_ue], dB (diagnostics).
        los: Serving-link LOS state, shape [n_cell, n_ue].
    """

    first_slot: int
    gain: FloatArray
    large_scale_gain: FloatArray
    pathloss_db: FloatArray
    los: BoolArray

    @property
    def n_slot(self) -> int:
        """Number of slots in the batch."""
        return int(self.gain.shape[0])


class ChannelModel(Protocol):
    """A channel backend: yields consecutive batches, owns its random stream."""

    n_cell: int
    n_ue: int
    n_prb: int

    def next_batch(self) -> ChannelBatch:
        """The batch following the previous one (the first starts at slot 0)."""
        ...


def make_channel(
    config: ChannelConfig,
    layout: Layout,
    mobility: Mobility,
    *,
    carrier_hz: float,
    prb_frequencies_hz: FloatArray,
    slot_s: float,
    bs_antenna_gain_dbi: float,
    rng: np.random.Generator,
) -> ChannelModel:
    """Build the configured backend.

    Args:
        config: Channel configuration.
        layout: Cells and UE drops.
        mobility: UE trajectories (positions are re-read at the start of every batch).
        carrier_hz: Carrier frequency.
        prb_frequencies_hz: Centre frequency offset of each PRB from the carrier, shape [n_prb].
        slot_s: Slot duration (time step of the fading process).
        bs_antenna_gain_dbi: Maximum BS antenna gain (sector pattern applied when sectored).
        rng: The ``"channel"`` random stream.
    """
    raise NotImplementedError
