"""Cell sites, sectors and UE drops (vectorized).

CONTRACT (filled in by the channel work): keep these names and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgetwin.sim.types import BoolArray, FloatArray


class TopologyConfig(BaseModel):
    """Where cells are and where UEs are dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["single", "hex"] = Field(
        "single", description="'single': one cell at the origin; 'hex': hexagonal grid of sites."
    )
    n_sites: Literal[1, 7, 19] = Field(1, description="Sites in the hex grid (1, 7 or 19 rings).")
    sectors_per_site: Literal[1, 3] = Field(1, description="1 = omni, 3 = 120° sectors (TR 38.901).")
    isd_m: float = Field(500.0, gt=0, le=100_000, description="Inter-site distance in metres.")
    cell_radius_m: float | None = Field(
        None, gt=0, le=100_000, description="Drop radius of a single cell; default isd_m / sqrt(3)."
    )
    ues_per_cell: int = Field(10, ge=1, le=1024, description="UEs dropped and served per cell.")
    min_distance_m: float = Field(35.0, ge=0, le=10_000, description="Minimum 2-D BS–UE distance.")
    bs_height_m: float = Field(25.0, gt=0, le=300, description="Base-station antenna height.")
    ue_height_m: float = Field(1.5, gt=0, le=300, description="UE antenna height.")
    bs_antenna_gain_dbi: float = Field(8.0, ge=-10, le=40, description="Max BS element gain.")
    indoor_fraction: float = Field(0.0, ge=0, le=1, description="Share of UEs placed indoors (O2I).")


@dataclass(frozen=True, slots=True)
class Layout:
    """A dropped network: cells and the UEs each serves.

    Attributes:
        bs_position_m: Cell (sector) antenna positions, shape [n_cell, 3], metres.
        boresight_rad: Sector boresight azimuth per cell, shape [n_cell], radians; NaN = omni.
        ue_position_m: Initial UE positions, shape [n_cell, n_ue, 3], metres; UE (c, u) is
            served by cell c.
        indoor: Whether each UE is indoors, shape [n_cell, n_ue].
        site_of_cell: Site index of each cell, shape [n_cell].
    """

    bs_position_m: FloatArray
    boresight_rad: FloatArray
    ue_position_m: FloatArray
    indoor: BoolArray
    site_of_cell: np.ndarray

    @property
    def n_cell(self) -> int:
        """Number of cells (sectors)."""
        return int(self.bs_position_m.shape[0])

    @property
    def n_ue(self) -> int:
        """UEs per cell."""
        return int(self.ue_position_m.shape[1])


def build_layout(config: TopologyConfig, rng: np.random.Generator) -> Layout:
    """Place sites/sectors and drop ``ues_per_cell`` UEs uniformly in each cell's area."""
    raise NotImplementedError
