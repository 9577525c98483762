"""TR 38.901 §7.8.1 large-scale calibration: coupling loss, geometry SINR and SIR (numpy).

The set-up of TR 38.901 Table 7.8-1 for UMa and UMi–Street Canyon:

* 19 sites × 3 sectors (boresights 30°, 150°, 270°) with wrap-around; ISD 500 m (UMa) /
  200 m (UMi), BS height 25 m / 10 m, minimum BS–UE distance 35 m / 10 m (Table 7.2-1).
* BS antenna: one column of 10 elements (``d_V = 0.5 λ``) on one TXRU with 12° electrical
  downtilt (θ_etilt = 102°), element pattern of Table 7.3-1 (G_E,max = 8 dBi); UE isotropic.
* 80 % of the UEs indoors (low-loss O2I model, §7.4.3), indoor UEs on floor
  ``n_fl ~ U{1..N_fl}``, ``N_fl ~ U{4..8}``, ``h_UT = 3 (n_fl − 1) + 1.5 m`` (TR 36.873 Table 6-1,
  which TR 38.901 Table 7.2-1 refers to); outdoor UEs at 1.5 m.
* BS power 44 dBm (UMa) / 35 dBm (UMi); bandwidth 20 MHz at 6 GHz, 100 MHz at 30 GHz; UE noise
  figure 9 dB; no fast fading; association by coupling loss with 0 dB handover margin.

Metrics (per UE): the coupling loss to the serving cell, and the geometry SINR / SIR of the
serving cell against all other 56 cells at full power.

Large-scale draws reuse :mod:`edgetwin.sim.radio.pathloss` exactly as the statistical channel
does: one LOS state and one shadowing variable per UE–site link (co-sited sectors share them),
one O2I loss per UE. The LOS probability is evaluated at the outdoor distance
``d_2D-out = d_2D − d_2D-in`` (TR 38.901 §7.4.3). Any of the three draws can instead be given
explicitly (e.g. the realizations of another simulator, for a like-for-like comparison).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.geometry import (
    Layout,
    TopologyConfig,
    bs_gain_db,
    build_layout,
    ue_to_bs_xy_m,
)
from edgetwin.sim.radio.pathloss import (
    O2I_LOW_LOSS_STD_DB,
    los_probability,
    o2i_low_loss_db,
    pathloss_db,
    shadow_fading_std_db,
)
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

#: TR 38.901 Table 7.8-1 / Table 7.2-1 per scenario: (ISD m, BS height m, min distance m,
#: BS power dBm).
_SCENARIO_DEFAULTS: dict[str, tuple[float, float, float, float]] = {
    "uma": (500.0, 25.0, 35.0, 44.0),
    "umi": (200.0, 10.0, 10.0, 35.0),
}
#: Shadow-fading standard deviation of O2I links in UMa and UMi, dB (TR 38.901 Table 7.5-6).
O2I_SHADOW_STD_DB = 7.0
#: Maximum indoor distance of the O2I model, metres (TR 38.901 §7.4.3.1).
_D_IN_MAX_M = 25.0


class CalibrationConfig(StrictConfig):
    """The §7.8.1 large-scale calibration set-up (defaults: TR 38.901 Table 7.8-1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: Literal["uma", "umi"] = Field("uma", description="TR 38.901 scenario.")
    carrier_hz: float = Field(6e9, gt=5e8, le=1e11, description="Carrier frequency.")
    ues_per_cell: int = Field(10, ge=1, le=1000, description="UEs dropped per sector per drop.")
    indoor_fraction: float = Field(0.8, ge=0, le=1, description="Share of indoor UEs.")
    wrap_around: bool = Field(True, description="Nearest-image distances (19-site wrap-around).")
    bs_vertical_elements: int = Field(10, ge=1, le=64, description="Elements per column (M).")
    bs_vertical_spacing_wl: float = Field(0.5, gt=0, le=4, description="d_V in wavelengths.")
    bs_downtilt_deg: float = Field(12.0, ge=-90, le=90, description="Electrical downtilt.")
    bs_element_gain_dbi: float = Field(8.0, ge=0, le=30, description="G_E,max of the element.")
    bs_tx_power_dbm: float | None = Field(
        None, ge=-30, le=80, description="BS power; default 44 dBm UMa / 35 dBm UMi."
    )
    bandwidth_hz: float | None = Field(
        None, gt=0, le=2e9, description="Noise bandwidth; default 20 MHz < 30 GHz, else 100 MHz."
    )
    ue_noise_figure_db: float = Field(9.0, ge=0, le=30, description="UE noise figure.")

    @property
    def tx_power_dbm(self) -> float:
        """BS transmit power, dBm (Table 7.8-1 default when unset)."""
        p = _SCENARIO_DEFAULTS[self.scenario][3]
        return p if self.bs_tx_power_dbm is None else self.bs_tx_power_dbm

    @property
    def noise_bandwidth_hz(self) -> float:
        """Noise bandwidth, Hz (Table 7.8-1: 20 MHz at 6 GHz, 100 MHz at 30 GHz)."""
        if self.bandwidth_hz is not None:
            return self.bandwidth_hz
        return 20e6 if self.carrier_hz < 30e9 - 1.0 else 100e6

    def topology(self) -> TopologyConfig:
        """The 19-site × 3-sector layout of the scenario, with its calibration antenna."""
        isd, h_bs, d_min, _ = _SCENARIO_DEFAULTS[self.scenario]
        return TopologyConfig(
            kind="hex",
            n_sites=19,
            sectors_per_site=3,
            isd_m=isd,
            ues_per_cell=self.ues_per_cell,
            min_distance_m=d_min,
            bs_height_m=h_bs,
            ue_height_m=1.5,
            bs_antenna_gain_dbi=self.bs_element_gain_dbi,
            indoor_fraction=self.indoor_fraction,
            wrap_around=self.wrap_around,
            bs_antenna_pattern="3d",
            bs_downtilt_deg=self.bs_downtilt_deg,
            bs_vertical_elements=self.bs_vertical_elements,
            bs_vertical_spacing_wl=self.bs_vertical_spacing_wl,
        )


@dataclass(frozen=True, slots=True)
class CalibrationDrop:
    """One drop: the network and its UEs as flat arrays (UE ``i`` of any cell).

    Attributes:
        layout: Cells, boresights, wrap-around offsets and BS antenna model (its UE fields
            are those of :func:`edgetwin.sim.radio.geometry.build_layout`, not used here).
        ue_position_m: UE positions incl. height, shape [n_ue, 3], metres.
        indoor: Whether each UE is indoors, shape [n_ue].
        d_2d_in_m: Indoor horizontal distance of each UE, shape [n_ue], metres (0 outdoors).
    """

    layout: Layout
    ue_position_m: FloatArray
    indoor: BoolArray
    d_2d_in_m: FloatArray


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Per-UE calibration metrics of one or more drops.

    Attributes:
        coupling_loss_db: Coupling loss to the serving cell, shape [n_ue], dB.
        geometry_sinr_db: Geometry SINR (all cells at full power, noise), shape [n_ue], dB.
        geometry_sir_db: Geometry SIR (no noise), shape [n_ue], dB.
        serving_cell: Serving cell index, shape [n_ue].
    """

    coupling_loss_db: FloatArray
    geometry_sinr_db: FloatArray
    geometry_sir_db: FloatArray
    serving_cell: IntArray


def drop_ues(config: CalibrationConfig, rng: np.random.Generator) -> CalibrationDrop:
    """Drop ``ues_per_cell`` UEs uniformly in every sector, 80 % indoors on random floors.

    Args:
        config: Calibration set-up.
        rng: Random generator (positions, then indoor flags, floors and indoor distances).

    Returns:
        The drop (UEs ordered cell by cell).
    """
    layout = build_layout(config.topology(), rng)
    n = layout.n_cell * layout.n_ue
    pos = layout.ue_position_m.reshape(n, 3).copy()
    indoor = layout.indoor.reshape(n).copy()
    # TR 36.873 Table 6-1 (h_UT = 3 (n_fl − 1) + 1.5, n_fl ~ U{1..N_fl}, N_fl ~ U{4..8})
    n_fl_max = rng.integers(4, 9, n)
    n_fl = np.floor(rng.random(n) * n_fl_max) + 1.0
    pos[:, 2] = np.where(indoor, 3.0 * (n_fl - 1.0) + 1.5, 1.5)
    # TR 38.901 §7.4.3.1 (d_2D-in = min of two U(0, 25 m) draws, UMa and UMi)
    d_in = np.minimum(rng.uniform(0.0, _D_IN_MAX_M, n), rng.uniform(0.0, _D_IN_MAX_M, n))
    d_in = np.where(indoor, d_in, 0.0)
    return CalibrationDrop(layout=layout, ue_position_m=pos, indoor=indoor, d_2d_in_m=d_in)


def coupling_loss_db(
    config: CalibrationConfig,
    drop: CalibrationDrop,
    rng: np.random.Generator | None = None,
    *,
    los: BoolArray | None = None,
    shadow_fading_db: FloatArray | None = None,
    o2i_loss_db: FloatArray | None = None,
) -> FloatArray:
    """Coupling loss from every cell to every UE: path loss + O2I + shadowing − BS gain.

    ``CL = PL_b + PL_O2I + SF − G_BS(θ, φ)`` (TR 38.901 §7.8.1 coupling loss; PL_b of
    Table 7.4.1-1, O2I of §7.4.3, antenna of §7.3; the UE antenna is isotropic, 0 dBi).

    Args:
        config: Calibration set-up (scenario, carrier).
        drop: The drop.
        rng: Random generator for the draws not given below (LOS, shadowing, O2I, in order).
        los: LOS state of the outdoor part of each link (what the path loss of Table 7.4.1-1
            uses, also for O2I links), shape [n_ue, n_cell] (default: drawn per UE–site link).
        shadow_fading_db: Shadow fading added to the loss, shape [n_ue, n_cell], dB (default:
            ``σ_SF · N(0, 1)`` per UE–site link, σ_SF of Table 7.4.1-1 outdoors and the O2I
            value of Table 7.5-6, 7 dB, indoors).
        o2i_loss_db: O2I penetration loss, shape [n_ue, n_cell] or [n_ue], dB (default: the
            low-loss model per UE; 0 for outdoor UEs).

    Returns:
        Coupling loss, shape [n_ue, n_cell], dB.
    """
    lay, scen, fc = drop.layout, config.scenario, config.carrier_hz
    ue = drop.ue_position_m
    n_ue = ue.shape[0]
    site = np.asarray(lay.site_of_cell, dtype=np.int64)
    n_site = int(site.max()) + 1
    d = ue_to_bs_xy_m(lay.bs_position_m, ue, lay.wrap_offset_m)  # [n_ue, n_cell, 2]
    d2d = np.hypot(d[..., 0], d[..., 1])
    h_bs = lay.bs_position_m[None, :, 2]
    h_ut = ue[:, None, 2]
    if (los is None or shadow_fading_db is None or o2i_loss_db is None) and rng is None:
        raise ValueError("rng is needed to draw the LOS, shadowing or O2I values not given")
    if los is None:
        assert rng is not None
        first = np.array([np.flatnonzero(site == s)[0] for s in range(n_site)])
        d_out = np.maximum(d2d[:, first] - drop.d_2d_in_m[:, None], 0.0)
        # TR 38.901 Table 7.4.2-1 at d_2D-out (§7.4.3: LOS of O2I links uses the outdoor part)
        p = los_probability(scen, d_out, h_ut_m=h_ut)
        los = (rng.random((n_ue, n_site)) < p)[:, site]
    if shadow_fading_db is None:
        assert rng is not None
        z = rng.standard_normal((n_ue, n_site))[:, site]
        # TR 38.901 Table 7.4.1-1 (σ_SF outdoors); Table 7.5-6 (σ_SF = 7 dB for O2I, UMa/UMi)
        sigma = np.where(drop.indoor[:, None], O2I_SHADOW_STD_DB, shadow_fading_std_db(scen, los))
        shadow_fading_db = sigma * z
    if o2i_loss_db is None:
        assert rng is not None
        # TR 38.901 Table 7.4.3-2 (low-loss model, incl. the N(0, 4.4²) dB part)
        o2i = o2i_low_loss_db(fc, drop.d_2d_in_m) + O2I_LOW_LOSS_STD_DB * rng.standard_normal(n_ue)
        o2i_loss_db = np.where(drop.indoor, o2i, 0.0)
    o2i_b = o2i_loss_db if o2i_loss_db.ndim == 2 else o2i_loss_db[:, None]
    pl = pathloss_db(scen, d2d, fc_hz=fc, h_bs_m=h_bs, h_ut_m=h_ut, los=los)
    gain = bs_gain_db(lay, ue)  # [n_ue, n_cell]
    out: FloatArray = pl + o2i_b + shadow_fading_db - gain
    return out


def serving_cell(coupling_loss: FloatArray, handover_margin_db: float = 0.0) -> IntArray:
    """Serving cell per UE: the least coupling loss (TR 38.901 Table 7.8-1, 0 dB margin).

    With a margin ``> 0`` the cell the UE was dropped in is kept unless another is better by
    more than the margin; the calibration uses 0 dB (pure minimum), the only value here.

    Args:
        coupling_loss: Coupling loss, shape [n_ue, n_cell], dB.
        handover_margin_db: Must be 0 (the calibration value).

    Returns:
        Cell index, shape [n_ue].
    """
    if handover_margin_db != 0.0:
        raise ValueError("only the calibration handover margin of 0 dB is supported")
    out: IntArray = np.argmin(coupling_loss, axis=-1)
    return out


def geometry_sinr_db(
    coupling_loss: FloatArray,
    serving: IntArray,
    *,
    tx_power_dbm: float,
    bandwidth_hz: float,
    noise_figure_db: float,
) -> FloatArray:
    """Geometry SINR: serving power over all other cells at full power plus thermal noise.

    ``SINR = P_s / (Σ_{b≠s} P_b + N)``, ``P_b = P_tx − CL_b``,
    ``N = −174 dBm/Hz + 10 log10 B + NF`` (TR 38.901 §7.8.1 geometry; kTB at 290 K).

    Args:
        coupling_loss: Coupling loss, shape [n_ue, n_cell], dB.
        serving: Serving cell per UE, shape [n_ue].
        tx_power_dbm: BS transmit power (equal for all cells), dBm.
        bandwidth_hz: Noise bandwidth, Hz.
        noise_figure_db: UE noise figure, dB.

    Returns:
        SINR, shape [n_ue], dB.
    """
    noise_dbm = -174.0 + 10.0 * np.log10(bandwidth_hz) + noise_figure_db
    return _ratio_db(coupling_loss, serving, noise_dbm - tx_power_dbm)


def geometry_sir_db(coupling_loss: FloatArray, serving: IntArray) -> FloatArray:
    """Geometry SIR: serving power over all other cells at full power, no noise.

    Args:
        coupling_loss: Coupling loss, shape [n_ue, n_cell], dB.
        serving: Serving cell per UE, shape [n_ue].

    Returns:
        SIR, shape [n_ue], dB.
    """
    return _ratio_db(coupling_loss, serving, None)


def _ratio_db(cl: FloatArray, serving: IntArray, noise_rel_db: float | None) -> FloatArray:
    """``−CL_s − 10 log10(Σ_{b≠s} 10^(−CL_b/10) + 10^(noise/10))``, summed relative to CL_s.

    Relative powers keep the sum in range for any common offset (no underflow at 190 dB).
    """
    cl_s = np.take_along_axis(cl, serving[:, None], axis=1)  # [n_ue, 1]
    rel = 10.0 ** (-(cl - cl_s) / 10.0)  # interferer power relative to the serving cell
    rel[np.arange(cl.shape[0]), serving] = 0.0
    denom = rel.sum(axis=1)
    if noise_rel_db is not None:
        denom = denom + 10.0 ** ((noise_rel_db + cl_s[:, 0]) / 10.0)
    out: FloatArray = -10.0 * np.log10(denom)
    return out


def evaluate(
    config: CalibrationConfig, coupling_loss: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Serving coupling loss, geometry SINR and SIR from the coupling losses of all cells.

    Args:
        config: Calibration set-up (power, bandwidth, noise figure).
        coupling_loss: Coupling loss, shape [n_ue, n_cell], dB.

    Returns:
        ``(cl_serving_db, sinr_db, sir_db, serving)``, each of shape [n_ue].
    """
    s = serving_cell(coupling_loss)
    cl_s = np.take_along_axis(coupling_loss, s[:, None], axis=1)[:, 0]
    sinr = geometry_sinr_db(
        coupling_loss,
        s,
        tx_power_dbm=config.tx_power_dbm,
        bandwidth_hz=config.noise_bandwidth_hz,
        noise_figure_db=config.ue_noise_figure_db,
    )
    return cl_s, sinr, geometry_sir_db(coupling_loss, s), s


def run_calibration(config: CalibrationConfig, *, n_drops: int, seed: int) -> CalibrationResult:
    """Drop, draw and evaluate ``n_drops`` independent drops (EdgeTwin's own realizations).

    Args:
        config: Calibration set-up.
        n_drops: Number of drops (each ``57 · ues_per_cell`` UEs).
        seed: Seed of the ``SeedSequence`` (one child stream per drop).

    Returns:
        Metrics of all UEs of all drops, concatenated.
    """
    parts = []
    for child in np.random.SeedSequence(seed).spawn(n_drops):
        rng = np.random.default_rng(child)
        drop = drop_ues(config, rng)
        parts.append(evaluate(config, coupling_loss_db(config, drop, rng)))
    cl, sinr, sir, s = (np.concatenate(x) for x in zip(*parts, strict=True))
    return CalibrationResult(
        coupling_loss_db=cl, geometry_sinr_db=sinr, geometry_sir_db=sir, serving_cell=s
    )


def drop_from_arrays(
    config: CalibrationConfig,
    *,
    site_xy_m: FloatArray,
    ue_position_m: FloatArray,
    indoor: BoolArray,
    d_2d_in_m: FloatArray,
) -> CalibrationDrop:
    """A drop from external arrays (e.g. another simulator's UEs), on this module's layout.

    Args:
        config: Calibration set-up.
        site_xy_m: Site positions, shape [19, 2], metres (must equal the hex grid's, in order).
        ue_position_m: UE positions incl. height, shape [n_ue, 3], metres.
        indoor: Indoor flags, shape [n_ue].
        d_2d_in_m: Indoor distances, shape [n_ue], metres.

    Returns:
        The drop.

    Raises:
        ValueError: If the sites differ from the layout's by more than 1 mm.
    """
    layout = build_layout(
        config.topology().model_copy(update={"ues_per_cell": 1}), np.random.default_rng(0)
    )
    ours = layout.bs_position_m[::3, :2]
    if site_xy_m.shape != ours.shape or np.max(np.abs(site_xy_m - ours)) > 1e-3:
        raise ValueError("site positions differ from the 19-site hex grid of the layout")
    layout = dataclasses.replace(
        layout,
        ue_position_m=np.zeros((layout.n_cell, 0, 3)),
        indoor=np.zeros((layout.n_cell, 0), bool),
    )
    return CalibrationDrop(
        layout=layout,
        ue_position_m=np.asarray(ue_position_m, dtype=np.float64),
        indoor=np.asarray(indoor, dtype=bool),
        d_2d_in_m=np.asarray(d_2d_in_m, dtype=np.float64),
    )


__all__ = [
    "O2I_SHADOW_STD_DB",
    "CalibrationConfig",
    "CalibrationDrop",
    "CalibrationResult",
    "coupling_loss_db",
    "drop_from_arrays",
    "drop_ues",
    "evaluate",
    "geometry_sinr_db",
    "geometry_sir_db",
    "run_calibration",
    "serving_cell",
]
