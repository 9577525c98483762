"""UE mobility: static, linear and random-waypoint (vectorized over all UEs).

CONTRACT (filled in by the channel work): keep these names and shapes.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgetwin.sim.radio.geometry import Layout
from edgetwin.sim.types import FloatArray


class MobilityConfig(BaseModel):
    """How UEs move."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["static", "linear", "random_waypoint"] = "static"
    speed_mps: float = Field(
        0.833, ge=0, le=150, description="UE speed in m/s (3 km/h = 0.833); also sets Doppler."
    )
    pause_s: float = Field(0.0, ge=0, le=3600, description="Random waypoint pause at each waypoint.")


class Mobility(Protocol):
    """UE trajectories."""

    speed_mps: FloatArray  #: [n_cell, n_ue] current speeds (m/s), used for Doppler

    def positions_at(self, t_s: float) -> FloatArray:
        """UE positions at time ``t_s``, shape [n_cell, n_ue, 3], metres."""
        ...


def make_mobility(config: MobilityConfig, layout: Layout, rng: np.random.Generator) -> Mobility:
    """Build the mobility model (UEs stay in the area of the cell that serves them)."""
    raise NotImplementedError
