"""Cell sites, sectors and UE drops (vectorized).

Layouts (all positions in metres, ``z`` = antenna height):

* ``kind="single"``: one site at the origin. One omnidirectional cell whose area is the disk of
  radius ``cell_radius_m`` (default ``isd_m / sqrt(3)``), or three 120° sectors of that disk.
* ``kind="hex"``: 1, 7 or 19 sites on a hexagonal grid with inter-site distance ``isd_m``
  (sites ordered ring by ring, site 0 at the origin). Each site's area is its hexagonal Voronoi
  cell (inradius ``isd_m / 2``, vertices at 30° + k·60°). With three sectors the hexagon is
  split into three 120° rhombi around the boresights 30°, 150° and 270° (TR 38.901
  Table 7.8-1, BS antenna orientation); 19 sites × 3 sectors = 57 cells.

UE ``(c, u)`` is dropped uniformly in the area of cell ``c`` (at least ``min_distance_m`` from
its BS) and is served by cell ``c`` for the whole run: the association is fixed, there is no
handover and no wrap-around. Sector antennas follow the horizontal cut of TR 38.901
Table 7.3-1; an omnidirectional cell radiates its maximum gain in every azimuth (it models an
antenna that is omnidirectional in azimuth and directive in elevation; set
``bs_antenna_gain_dbi=0`` for an isotropic radiator).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

#: Sector boresights (azimuth, degrees) of a three-sector site, TR 38.901 Table 7.8-1.
SECTOR_BORESIGHTS_DEG = (30.0, 150.0, 270.0)
#: Horizontal 3 dB beamwidth and front-to-back limit of the sector element, TR 38.901 Table 7.3-1.
SECTOR_BEAMWIDTH_DEG = 65.0
SECTOR_MAX_ATTENUATION_DB = 30.0

_TOL_M = 1e-6


class TopologyConfig(StrictConfig):
    """Where cells are and where UEs are dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["single", "hex"] = Field(
        "single", description="'single': one cell at the origin; 'hex': hexagonal grid of sites."
    )
    n_sites: Literal[1, 7, 19] = Field(1, description="Sites in the hex grid (1, 7 or 19 rings).")
    sectors_per_site: Literal[1, 3] = Field(
        1, description="1 = omni, 3 = 120° sectors (TR 38.901)."
    )
    isd_m: float = Field(500.0, gt=0, le=100_000, description="Inter-site distance in metres.")
    cell_radius_m: float | None = Field(
        None, gt=0, le=100_000, description="Drop radius of a single cell; default isd_m / sqrt(3)."
    )
    ues_per_cell: int = Field(10, ge=1, le=1024, description="UEs dropped and served per cell.")
    min_distance_m: float = Field(35.0, ge=0, le=10_000, description="Minimum 2-D BS–UE distance.")
    bs_height_m: float = Field(25.0, gt=0, le=300, description="Base-station antenna height.")
    ue_height_m: float = Field(1.5, gt=0, le=300, description="UE antenna height.")
    bs_antenna_gain_dbi: float = Field(8.0, ge=-10, le=40, description="Max BS element gain.")
    indoor_fraction: float = Field(
        0.0, ge=0, le=1, description="Share of UEs placed indoors (O2I)."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> TopologyConfig:
        if self.kind == "single" and self.n_sites != 1:
            raise ValueError(
                f"n_sites={self.n_sites} needs kind='hex' (kind='single' has exactly 1 site)"
            )
        if self.kind == "hex" and self.cell_radius_m is not None:
            raise ValueError(
                "cell_radius_m applies to kind='single' only; hex cells are the Voronoi "
                "hexagons of isd_m"
            )
        extent = self.isd_m / np.sqrt(3.0) if self.kind == "hex" else self.drop_radius_m
        if self.min_distance_m >= extent:
            source = (
                f"cell_radius_m={self.cell_radius_m:g}"
                if self.kind == "single" and self.cell_radius_m is not None
                else f"isd_m/sqrt(3) with isd_m={self.isd_m:g}"
            )
            raise ValueError(
                f"min_distance_m={self.min_distance_m} must be < the cell extent "
                f"{extent:.1f} m ({source}, kind={self.kind!r})"
            )
        return self

    @property
    def drop_radius_m(self) -> float:
        """Radius of a single cell's drop disk (``cell_radius_m`` or ``isd_m / sqrt(3)``)."""
        return float(self.cell_radius_m or self.isd_m / np.sqrt(3.0))


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
        cell_normal: Outward unit normals of the half-planes bounding each cell's area,
            shape [n_cell, n_edge, 2]; empty = unbounded.
        cell_offset_m: Half-plane offsets, shape [n_cell, n_edge], metres: a point ``x`` is in
            cell ``c`` when ``normal · (x − bs_xy) <= offset`` for every edge.
        cell_radius_m: Radius of the disk (centred on the BS) that also bounds each cell,
            shape [n_cell], metres; ``inf`` = none.
        min_distance_m: Minimum 2-D BS–UE distance of the drops, metres.
        bs_antenna_gain_dbi: Maximum BS antenna gain, dBi.
    """

    bs_position_m: FloatArray
    boresight_rad: FloatArray
    ue_position_m: FloatArray
    indoor: BoolArray
    site_of_cell: np.ndarray
    cell_normal: FloatArray = field(default_factory=lambda: np.zeros((0, 0, 2)))
    cell_offset_m: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    cell_radius_m: FloatArray = field(default_factory=lambda: np.zeros(0))
    min_distance_m: float = 0.0
    bs_antenna_gain_dbi: float = 0.0

    @property
    def n_cell(self) -> int:
        """Number of cells (sectors)."""
        return int(self.bs_position_m.shape[0])

    @property
    def n_ue(self) -> int:
        """UEs per cell."""
        return int(self.ue_position_m.shape[1])

    @property
    def n_site(self) -> int:
        """Number of sites."""
        return int(np.max(self.site_of_cell)) + 1 if self.site_of_cell.size else 0

    @property
    def bounding_radius_m(self) -> FloatArray:
        """Radius around each BS containing its cell, shape [n_cell], metres (``inf``: none)."""
        r = np.full(self.n_cell, np.inf) if self.cell_radius_m.size == 0 else self.cell_radius_m
        if self.cell_offset_m.size:
            # The only half-planes not through the BS are the site hexagon's (inradius a),
            # which lies within radius 2a / sqrt(3); padding rows have a zero normal.
            edge = (np.abs(self.cell_normal).sum(axis=2) > 0) & (self.cell_offset_m > 0)
            hex_r = np.where(edge, self.cell_offset_m * 2.0 / np.sqrt(3.0), np.inf).min(axis=1)
            r = np.minimum(r, hex_r)
        out: FloatArray = r
        return out


def hex_site_positions_m(n_sites: int, isd_m: float) -> FloatArray:
    """Site positions of a hexagonal grid of 1, 7 or 19 sites, ring by ring from the origin.

    Args:
        n_sites: 1, 7 or 19.
        isd_m: Inter-site distance, metres.

    Returns:
        Positions, shape [n_sites, 2], metres; neighbouring sites are ``isd_m`` apart.
    """
    rings = {1: 0, 7: 1, 19: 2}.get(n_sites)
    if rings is None:
        raise ValueError(f"n_sites must be 1, 7 or 19, got {n_sites}")
    qr = [
        (q, r)
        for q in range(-rings, rings + 1)
        for r in range(-rings, rings + 1)
        if max(abs(q), abs(r), abs(q + r)) <= rings
    ]
    axial = np.array(qr, dtype=np.float64)
    # Axial hex coordinates -> Cartesian, neighbours at 0°, 60°, ..., 300°.
    xy = isd_m * np.stack([axial[:, 0] + axial[:, 1] / 2.0, axial[:, 1] * np.sqrt(3.0) / 2.0], 1)
    ring = np.max(np.abs(np.stack([axial[:, 0], axial[:, 1], axial.sum(1)], 1)), axis=1)
    angle = np.mod(np.arctan2(xy[:, 1], xy[:, 0]), 2.0 * np.pi)
    order = np.lexsort((np.round(angle, 9), ring))
    out: FloatArray = xy[order]
    return out


def _cell_areas(config: TopologyConfig) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Boresights, half-plane normals/offsets and radius of every cell (see :class:`Layout`)."""
    n_sec = config.sectors_per_site
    n_site = config.n_sites if config.kind == "hex" else 1
    n_cell = n_site * n_sec
    normals: list[FloatArray] = []
    offsets: list[FloatArray] = []
    if config.kind == "hex":
        ang = np.deg2rad(60.0 * np.arange(6))
        normals.append(np.stack([np.cos(ang), np.sin(ang)], 1))
        offsets.append(np.full(6, config.isd_m / 2.0))
        radius = np.full(n_cell, np.inf)
    else:
        radius = np.full(n_cell, config.drop_radius_m)
    if n_sec == 3:
        boresight = np.tile(np.deg2rad(np.array(SECTOR_BORESIGHTS_DEG)), n_site)
    else:
        boresight = np.full(n_cell, np.nan)
    base_n = np.concatenate(normals, 0) if normals else np.zeros((0, 2))
    base_o = np.concatenate(offsets, 0) if offsets else np.zeros(0)
    cell_n = np.zeros((n_cell, base_n.shape[0] + 2, 2))
    cell_o = np.ones((n_cell, base_o.shape[0] + 2))  # padding rows: 0 · x <= 1 (always true)
    cell_n[:, : base_n.shape[0]] = base_n
    cell_o[:, : base_o.shape[0]] = base_o
    if n_sec == 3:
        # 120° wedge around the boresight β: edges at β ± 60°, outward normals at β ± 150°.
        for k, sign in enumerate((1.0, -1.0)):
            a = boresight + sign * np.deg2rad(150.0)
            cell_n[:, base_n.shape[0] + k] = np.stack([np.cos(a), np.sin(a)], 1)
            cell_o[:, base_o.shape[0] + k] = 0.0
    return boresight, cell_n, cell_o, radius


def in_cell(layout: Layout, position_m: FloatArray, *, tol_m: float = _TOL_M) -> BoolArray:
    """Whether each UE lies in the area of the cell that serves it.

    Args:
        layout: The network layout.
        position_m: UE positions, shape [n_cell, n_ue, 2 or 3], metres (UE (c, u) in cell c).
        tol_m: Tolerance on the boundary, metres.

    Returns:
        Boolean array of shape [n_cell, n_ue].
    """
    rel = position_m[..., :2] - layout.bs_position_m[:, None, :2]  # [n_cell, n_ue, 2]
    ok = np.ones(rel.shape[:2], dtype=bool)
    if layout.cell_normal.size:
        proj = np.einsum("cex,cux->cue", layout.cell_normal, rel)
        ok &= np.all(proj <= layout.cell_offset_m[:, None, :] + tol_m, axis=2)
    if layout.cell_radius_m.size:
        ok &= np.hypot(rel[..., 0], rel[..., 1]) <= layout.cell_radius_m[:, None] + tol_m
    out: BoolArray = ok
    return out


def sample_in_cells(
    layout: Layout,
    n: int,
    rng: np.random.Generator,
    *,
    min_distance_m: float | None = None,
    max_rounds: int = 1000,
) -> FloatArray:
    """Draw ``n`` points uniformly in the area of every cell (rejection sampling).

    Args:
        layout: The layout whose cell areas are used (its UE fields are not read).
        n: Points per cell.
        rng: Random generator.
        min_distance_m: Minimum 2-D distance from the BS (default: ``layout.min_distance_m``).
        max_rounds: Bound on the rejection rounds.

    Returns:
        Points, shape [n_cell, n, 2], metres.

    Raises:
        ValueError: If a cell cannot be filled (its area is empty after the distance exclusion).
    """
    d_min = layout.min_distance_m if min_distance_m is None else min_distance_m
    n_cell = layout.n_cell
    r_b = layout.bounding_radius_m
    if not np.all(np.isfinite(r_b)):
        raise ValueError("cannot sample in an unbounded cell")
    out = np.zeros((n_cell, n, 2))
    filled = np.zeros(n_cell, dtype=np.int64)
    k = max(4 * n, 32)
    dummy = np.zeros((n_cell, k, 3))
    for _ in range(max_rounds):
        # Uniform in the bounding disk (annulus from d_min), then keep the points in the cell.
        u = rng.random((n_cell, k))
        phi = rng.uniform(0.0, 2.0 * np.pi, (n_cell, k))
        r = np.sqrt(d_min**2 + u * (r_b[:, None] ** 2 - d_min**2))
        dummy[..., 0] = layout.bs_position_m[:, None, 0] + r * np.cos(phi)
        dummy[..., 1] = layout.bs_position_m[:, None, 1] + r * np.sin(phi)
        ok = in_cell(layout, dummy, tol_m=0.0)
        for c in np.flatnonzero(filled < n):
            pts = dummy[c, ok[c], :2][: n - filled[c]]
            out[c, filled[c] : filled[c] + pts.shape[0]] = pts
            filled[c] += pts.shape[0]
        if np.all(filled >= n):
            return out
    raise ValueError(
        f"could not drop {n} UEs per cell in {max_rounds} rounds: min_distance_m={d_min} leaves "
        "(almost) no area in the cell"
    )


def build_layout(config: TopologyConfig, rng: np.random.Generator) -> Layout:
    """Place sites/sectors and drop ``ues_per_cell`` UEs uniformly in each cell's area.

    Args:
        config: Topology configuration.
        rng: The ``"topology"`` random stream (UE positions first, then the indoor flags).

    Returns:
        The layout; UE ``(c, u)`` is served by cell ``c`` (fixed association, no handover).
    """
    n_sec = config.sectors_per_site
    sites_xy = (
        hex_site_positions_m(config.n_sites, config.isd_m)
        if config.kind == "hex"
        else np.zeros((1, 2))
    )
    n_site = sites_xy.shape[0]
    site_of_cell: IntArray = np.repeat(np.arange(n_site, dtype=np.int64), n_sec)
    bs = np.zeros((n_site * n_sec, 3))
    bs[:, :2] = sites_xy[site_of_cell]
    bs[:, 2] = config.bs_height_m
    boresight, cell_n, cell_o, radius = _cell_areas(config)
    frame = Layout(
        bs_position_m=bs,
        boresight_rad=boresight,
        ue_position_m=np.zeros((bs.shape[0], 0, 3)),
        indoor=np.zeros((bs.shape[0], 0), dtype=bool),
        site_of_cell=site_of_cell,
        cell_normal=cell_n,
        cell_offset_m=cell_o,
        cell_radius_m=radius,
        min_distance_m=config.min_distance_m,
        bs_antenna_gain_dbi=config.bs_antenna_gain_dbi,
    )
    n_ue = config.ues_per_cell
    xy = sample_in_cells(frame, n_ue, rng)
    ue = np.empty((bs.shape[0], n_ue, 3))
    ue[..., :2] = xy
    ue[..., 2] = config.ue_height_m
    indoor: BoolArray = rng.random((bs.shape[0], n_ue)) < config.indoor_fraction
    return dataclasses.replace(frame, ue_position_m=ue, indoor=indoor)


def distances_2d_m(layout: Layout, ue_position_m: FloatArray) -> FloatArray:
    """Horizontal distance from every cell's BS to every UE.

    Args:
        layout: The network layout.
        ue_position_m: UE positions, shape [n_cell, n_ue, 2 or 3], metres.

    Returns:
        Distances, shape [n_cell (serving cell of the UE), n_ue, n_cell (transmitting cell)], m.
    """
    d = ue_position_m[:, :, None, :2] - layout.bs_position_m[None, None, :, :2]
    out: FloatArray = np.hypot(d[..., 0], d[..., 1])
    return out


def antenna_gain_db(
    layout: Layout, ue_position_m: FloatArray, *, max_gain_dbi: float | None = None
) -> FloatArray:
    """BS antenna gain towards every UE (horizontal cut of the TR 38.901 element pattern).

    ``A(φ) = G_max − min(12 (φ / 65°)², 30 dB)`` with ``φ`` the azimuth from the boresight
    (TR 38.901 Table 7.3-1, θ = 90° cut: no vertical pattern, no downtilt). Omnidirectional cells
    (NaN boresight) have ``G_max`` in every direction.

    Args:
        layout: The network layout.
        ue_position_m: UE positions, shape [n_cell, n_ue, 2 or 3], metres.
        max_gain_dbi: Maximum gain ``G_max``, dBi (default ``layout.bs_antenna_gain_dbi``).

    Returns:
        Gain, dB, shape [n_cell (serving cell of the UE), n_ue, n_cell (transmitting cell)].
    """
    g_max = layout.bs_antenna_gain_dbi if max_gain_dbi is None else max_gain_dbi
    d = ue_position_m[:, :, None, :2] - layout.bs_position_m[None, None, :, :2]
    az = np.arctan2(d[..., 1], d[..., 0])  # [n_cell, n_ue, n_cell]
    b = layout.boresight_rad[None, None, :]
    phi_deg = np.rad2deg(np.angle(np.exp(1j * (az - np.nan_to_num(b)))))
    # TR 38.901 Table 7.3-1 (horizontal radiation pattern A_E,H)
    att = np.minimum(12.0 * (phi_deg / SECTOR_BEAMWIDTH_DEG) ** 2, SECTOR_MAX_ATTENUATION_DB)
    out: FloatArray = g_max - np.where(np.isnan(b), 0.0, att)
    return out


__all__ = [
    "SECTOR_BORESIGHTS_DEG",
    "Layout",
    "TopologyConfig",
    "antenna_gain_db",
    "build_layout",
    "distances_2d_m",
    "hex_site_positions_m",
    "in_cell",
    "sample_in_cells",
]
