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
handover. Sector antennas follow the horizontal cut of TR 38.901 Table 7.3-1 by default; an
omnidirectional cell radiates its maximum gain in every azimuth (it models an antenna that is
omnidirectional in azimuth and directive in elevation; set ``bs_antenna_gain_dbi=0`` for an
isotropic radiator).

Options (all off by default, so existing scenarios are unchanged):

* ``wrap_around=True`` (hex grids of 7 or 19 sites): the grid is repeated by the six
  translations of its cluster (axial ``(R+1, R)`` rotated by multiples of 60°, ``R`` = rings),
  and every UE sees each site at its nearest image (the standard wrap-around of system-level
  calibration, e.g. TR 38.901 §7.8 / ITU-R M.2412 §8.3). Distances and antenna angles use
  that image; the drops stay in the central cluster.
* ``bs_antenna_pattern="3d"``: the full element pattern of TR 38.901 Table 7.3-1 (vertical and
  horizontal cuts, combined and floored at 30 dB) with ``bs_vertical_elements`` elements
  stacked vertically ``bs_vertical_spacing_wl`` wavelengths apart, all fed by one TXRU with an
  electrical downtilt of ``bs_downtilt_deg`` below the horizon (the BS array of the §7.8.1
  calibration: 10 elements, 12° downtilt = θ_etilt 102°). The array gain is
  ``10 log10 |Σ_m w_m v_m|²`` with unit-norm weights (at most ``10 log10 M`` dB).
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
    wrap_around: bool = Field(
        False, description="Hex grid of 7 or 19 sites: each UE sees the nearest image of a site."
    )
    bs_antenna_pattern: Literal["horizontal", "3d"] = Field(
        "horizontal",
        description="'horizontal': azimuth cut of TR 38.901 Table 7.3-1 only; '3d': full "
        "element pattern with a vertical array and electrical downtilt.",
    )
    bs_downtilt_deg: float = Field(
        0.0, ge=-90, le=90, description="Electrical downtilt below the horizon ('3d' pattern)."
    )
    bs_vertical_elements: int = Field(
        1, ge=1, le=64, description="Elements per vertical column, one TXRU ('3d' pattern)."
    )
    bs_vertical_spacing_wl: float = Field(
        0.5, gt=0, le=4, description="Vertical element spacing in wavelengths ('3d' pattern)."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> TopologyConfig:
        if self.kind == "single" and self.n_sites != 1:
            raise ValueError(
                f"n_sites={self.n_sites} needs kind='hex' (kind='single' has exactly 1 site)"
            )
        if self.wrap_around and (self.kind != "hex" or self.n_sites == 1):
            raise ValueError(
                f"wrap_around=True needs kind='hex' with n_sites 7 or 19 "
                f"(got kind={self.kind!r}, n_sites={self.n_sites})"
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
class BsAntenna:
    """Vertical model of the BS antenna (the azimuth cut is always applied to sectors).

    Attributes:
        pattern: ``"horizontal"`` (azimuth cut of TR 38.901 Table 7.3-1 only) or ``"3d"``.
        downtilt_deg: Electrical downtilt below the horizon, degrees (θ_etilt = 90° + this).
        vertical_elements: Elements ``M`` of the vertical column fed by one TXRU.
        vertical_spacing_wl: Element spacing ``d_V``, wavelengths.
    """

    pattern: str = "horizontal"
    downtilt_deg: float = 0.0
    vertical_elements: int = 1
    vertical_spacing_wl: float = 0.5


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
        wrap_offset_m: Translations of the wrap-around images of the site grid, shape
            [n_wrap, 2], metres, row 0 = (0, 0); empty = no wrap-around.
        antenna: The BS antenna's vertical model (see :class:`BsAntenna`).
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
    wrap_offset_m: FloatArray = field(default_factory=lambda: np.zeros((0, 2)))
    antenna: BsAntenna = field(default_factory=lambda: BsAntenna())

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


def hex_wrap_offsets_m(n_sites: int, isd_m: float) -> FloatArray:
    """Translations that tile the plane with copies of a 7- or 19-site hexagonal cluster.

    A cluster of ``R`` rings (``N = 3R² + 3R + 1`` sites) tiles the plane when shifted by the
    axial vector ``(R + 1, R)`` and its rotations by multiples of 60° (``|(R+1, R)|² = N``
    in units of ``isd_m²``: the standard wrap-around of the 19-site calibration layout,
    TR 38.901 §7.8.1 with ITU-R M.2412 §8.3).

    Args:
        n_sites: 7 or 19.
        isd_m: Inter-site distance, metres.

    Returns:
        Offsets, shape [7, 2], metres; row 0 is (0, 0), rows 1..6 the six neighbouring copies.
    """
    rings = {7: 1, 19: 2}.get(n_sites)
    if rings is None:
        raise ValueError(f"wrap-around needs n_sites 7 or 19, got {n_sites}")
    q, r = rings + 1, rings
    axial = [(0, 0)]
    for _ in range(6):
        axial.append((q, r))
        q, r = -r, q + r  # 60° rotation in axial coordinates
    a = np.array(axial, dtype=np.float64)
    out: FloatArray = isd_m * np.stack([a[:, 0] + a[:, 1] / 2.0, a[:, 1] * np.sqrt(3.0) / 2.0], 1)
    return out


def ue_to_bs_xy_m(
    bs_position_m: FloatArray, ue_position_m: FloatArray, wrap_offset_m: FloatArray
) -> FloatArray:
    """Horizontal vector from every BS (its nearest wrap-around image) to every UE.

    Args:
        bs_position_m: BS positions, shape [n_cell, 2 or 3], metres.
        ue_position_m: UE positions, shape [..., 2 or 3], metres.
        wrap_offset_m: Image translations, shape [n_wrap, 2], metres (empty: no wrap-around).

    Returns:
        ``ue − bs_image``, shape [..., n_cell, 2], metres, with the image of each BS that is
        closest to the UE in the horizontal plane.
    """
    d = ue_position_m[..., None, :2] - bs_position_m[:, :2]  # [..., n_cell, 2]
    if wrap_offset_m.shape[0] <= 1:
        return d
    cand = d[..., None, :] - wrap_offset_m  # [..., n_cell, n_wrap, 2]
    best = np.argmin(np.einsum("...i,...i->...", cand, cand), axis=-1)
    out: FloatArray = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
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
        wrap_offset_m=(
            hex_wrap_offsets_m(config.n_sites, config.isd_m)
            if config.wrap_around
            else np.zeros((0, 2))
        ),
        antenna=BsAntenna(
            pattern=config.bs_antenna_pattern,
            downtilt_deg=config.bs_downtilt_deg,
            vertical_elements=config.bs_vertical_elements,
            vertical_spacing_wl=config.bs_vertical_spacing_wl,
        ),
    )
    n_ue = config.ues_per_cell
    xy = sample_in_cells(frame, n_ue, rng)
    ue = np.empty((bs.shape[0], n_ue, 3))
    ue[..., :2] = xy
    ue[..., 2] = config.ue_height_m
    indoor: BoolArray = rng.random((bs.shape[0], n_ue)) < config.indoor_fraction
    return dataclasses.replace(frame, ue_position_m=ue, indoor=indoor)


def distances_2d_m(layout: Layout, ue_position_m: FloatArray) -> FloatArray:
    """Horizontal distance from every cell's BS (nearest image with wrap-around) to every UE.

    Args:
        layout: The network layout.
        ue_position_m: UE positions, shape [n_cell, n_ue, 2 or 3], metres.

    Returns:
        Distances, shape [n_cell (serving cell of the UE), n_ue, n_cell (transmitting cell)], m.
    """
    d = ue_to_bs_xy_m(layout.bs_position_m, ue_position_m, layout.wrap_offset_m)
    out: FloatArray = np.hypot(d[..., 0], d[..., 1])
    return out


def element_pattern_db(theta_deg: FloatArray, phi_deg: FloatArray) -> FloatArray:
    """Relative power pattern ``A(θ'', φ'')`` of the BS element, TR 38.901 Table 7.3-1.

    ``A = −min(−(A_V + A_H), 30)`` with ``A_V = −min(12 ((θ − 90°) / 65°)², 30)`` and
    ``A_H = −min(12 (φ / 65°)², 30)``; add ``G_E,max`` (8 dBi) for the gain.

    Args:
        theta_deg: Zenith angle in the element's frame, degrees (90° = horizon), any shape.
        phi_deg: Azimuth from the boresight, degrees in [−180, 180], broadcastable.

    Returns:
        Attenuation relative to the maximum, dB (≤ 0), the broadcast shape.
    """
    # TR 38.901 Table 7.3-1 (vertical cut A_E,V, horizontal cut A_E,H, 3-D pattern)
    a_v = -np.minimum(12.0 * ((np.asarray(theta_deg) - 90.0) / 65.0) ** 2, 30.0)
    a_h = -np.minimum(12.0 * (np.asarray(phi_deg) / SECTOR_BEAMWIDTH_DEG) ** 2, 30.0)
    out: FloatArray = -np.minimum(-(a_v + a_h), SECTOR_MAX_ATTENUATION_DB)
    return out


def vertical_array_gain_db(
    theta_deg: FloatArray, n_elements: int, spacing_wl: float, tilt_deg: float
) -> FloatArray:
    """Gain of a vertical column of ``M`` elements fed by one TXRU with electrical downtilt.

    ``10 log10 |Σ_m w_m v_m|²`` with ``v_m = exp(j2π m d_V cos θ)`` and
    ``w_m = M^(−1/2) exp(−j2π m d_V cos θ_etilt)``, ``θ_etilt = 90° + tilt`` (TR 36.897
    §5.2.2, the TXRU virtualisation used by the TR 38.901 §7.8.1 calibration array).

    Args:
        theta_deg: Zenith angle towards the UE, degrees (90° = horizon), any shape.
        n_elements: Elements ``M`` in the column.
        spacing_wl: Element spacing ``d_V``, wavelengths.
        tilt_deg: Electrical downtilt below the horizon, degrees.

    Returns:
        Array gain, dB (at most ``10 log10 M``), the shape of ``theta_deg``.
    """
    theta = np.deg2rad(np.asarray(theta_deg, dtype=np.float64))
    if n_elements == 1:
        return np.zeros(theta.shape)
    m = np.arange(n_elements)
    psi = 2.0 * np.pi * spacing_wl * (np.cos(theta) - np.cos(np.deg2rad(90.0 + tilt_deg)))
    af = np.exp(1j * psi[..., None] * m).sum(axis=-1) / np.sqrt(n_elements)
    out: FloatArray = 10.0 * np.log10(np.maximum(np.abs(af) ** 2, 1e-30))
    return out


def bs_gain_db(
    layout: Layout,
    ue_position_m: FloatArray,
    *,
    max_gain_dbi: float | None = None,
) -> FloatArray:
    """BS antenna gain from every cell towards every UE (any leading UE shape).

    Args:
        layout: The network layout (boresights, heights, wrap-around, antenna model).
        ue_position_m: UE positions, shape [..., 2 or 3], metres (3 columns for the ``"3d"``
            pattern, which needs the UE height).
        max_gain_dbi: Maximum element gain ``G_E,max``, dBi (default
            ``layout.bs_antenna_gain_dbi``).

    Returns:
        Gain, dB, shape [..., n_cell].
    """
    g_max = layout.bs_antenna_gain_dbi if max_gain_dbi is None else max_gain_dbi
    d = ue_to_bs_xy_m(layout.bs_position_m, ue_position_m, layout.wrap_offset_m)
    az = np.arctan2(d[..., 1], d[..., 0])  # [..., n_cell]
    b = layout.boresight_rad
    omni = np.isnan(b)
    phi_deg = np.where(omni, 0.0, np.rad2deg(np.angle(np.exp(1j * (az - np.nan_to_num(b))))))
    ant = layout.antenna
    if ant.pattern != "3d":
        # TR 38.901 Table 7.3-1 (horizontal radiation pattern A_E,H)
        att = np.minimum(12.0 * (phi_deg / SECTOR_BEAMWIDTH_DEG) ** 2, SECTOR_MAX_ATTENUATION_DB)
        out: FloatArray = g_max - att
        return out
    if ue_position_m.shape[-1] < 3:
        raise ValueError("the '3d' antenna pattern needs UE positions with a height column")
    dz = layout.bs_position_m[:, 2] - ue_position_m[..., 2:3]  # [..., n_cell]
    # Zenith angle of the LOS direction at the BS (90° = horizon, > 90° = below it).
    theta_deg = 90.0 + np.rad2deg(np.arctan2(dz, np.hypot(d[..., 0], d[..., 1])))
    elem = element_pattern_db(theta_deg, phi_deg)
    arr = vertical_array_gain_db(
        theta_deg, ant.vertical_elements, ant.vertical_spacing_wl, ant.downtilt_deg
    )
    out = g_max + elem + arr
    return out


def antenna_gain_db(
    layout: Layout, ue_position_m: FloatArray, *, max_gain_dbi: float | None = None
) -> FloatArray:
    """BS antenna gain towards every UE (TR 38.901 Table 7.3-1).

    Default model: the horizontal cut ``A(φ) = G_max − min(12 (φ / 65°)², 30 dB)`` with ``φ``
    the azimuth from the boresight (θ = 90° cut: no vertical pattern, no downtilt).
    Omnidirectional cells (NaN boresight) have ``G_max`` in every azimuth. With the ``"3d"``
    antenna of the layout, see :func:`bs_gain_db`. With wrap-around, angles are taken from
    the nearest image of each BS.

    Args:
        layout: The network layout.
        ue_position_m: UE positions, shape [n_cell, n_ue, 2 or 3], metres.
        max_gain_dbi: Maximum gain ``G_max``, dBi (default ``layout.bs_antenna_gain_dbi``).

    Returns:
        Gain, dB, shape [n_cell (serving cell of the UE), n_ue, n_cell (transmitting cell)].
    """
    return bs_gain_db(layout, ue_position_m, max_gain_dbi=max_gain_dbi)


__all__ = [
    "SECTOR_BORESIGHTS_DEG",
    "BsAntenna",
    "Layout",
    "TopologyConfig",
    "antenna_gain_db",
    "bs_gain_db",
    "build_layout",
    "distances_2d_m",
    "element_pattern_db",
    "hex_site_positions_m",
    "hex_wrap_offsets_m",
    "in_cell",
    "sample_in_cells",
    "ue_to_bs_xy_m",
    "vertical_array_gain_db",
]
