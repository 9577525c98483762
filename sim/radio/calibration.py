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

Uplink (not part of TR 38.901 §7.8, which is downlink only; the set-up of the 3GPP system-level
uplink evaluations): in each trial every cell schedules **one UE drawn at random among the UEs
it serves** on the whole carrier (the same PRBs in all cells); the UE transmits with open-loop
PUSCH power control (TS 38.213 §7.1.1 via :func:`~edgetwin.sim.radio.uplink_power.pusch_power_dbm`,
``f = 0``, ``Δ_TF = 0``) with its serving coupling loss as the pathloss estimate; the SINR at the
serving gNB counts the UEs scheduled in all other cells through their coupling loss to that gNB
(nearest wrap-around images, reciprocity of the downlink coupling loss) and the gNB noise
(thermal + noise figure over the allocated PRBs). Default power control: full pathloss
compensation ``α = 1``, ``P0 = −106 dBm`` per 15 kHz PRB, ``P_CMAX = 23 dBm`` (the LTE-Advanced
uplink evaluation set of TR 36.814 Annex A.2; power class 3), gNB noise figure 5 dB (TR 36.814
Annex A.2, also :class:`~edgetwin.sim.radio.config.UplinkConfig`'s default).

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
from pydantic import ConfigDict, Field, field_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.geometry import (
    Layout,
    TopologyConfig,
    bs_gain_db,
    build_layout,
    ue_to_bs_xy_m,
)
from edgetwin.sim.radio.numerology import (
    frequency_range_of,
    n_prb_for_bandwidth,
    prb_bandwidth_hz,
)
from edgetwin.sim.radio.pathloss import (
    O2I_HIGH_LOSS_STD_DB,
    O2I_LOW_LOSS_STD_DB,
    los_probability,
    o2i_high_loss_db,
    o2i_low_loss_db,
    pathloss_db,
    shadow_fading_std_db,
)
from edgetwin.sim.radio.uplink_power import ALPHA_VALUES, pusch_power_dbm
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
    o2i_high_loss_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of indoor UEs with the high-loss O2I model (else low-loss); 0.5 "
        "reproduces the R1-165974 coupling loss (see benchmarks/calibration_38901.py).",
    )
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
    ul_p0_dbm: float = Field(
        -106.0, ge=-218, le=39, description="Uplink P_O_PUSCH per 15 kHz PRB (TR 36.814 A.2)."
    )
    ul_alpha: float = Field(1.0, description="Uplink pathloss compensation α (TS 38.331 Alpha).")
    ue_max_power_dbm: float = Field(
        23.0, ge=-40, le=40, description="UE P_CMAX (power class 3: 23 dBm)."
    )
    gnb_noise_figure_db: float = Field(
        5.0, ge=0, le=30, description="gNB noise figure (TR 36.814 Annex A.2: 5 dB)."
    )
    ul_numerology: int | None = Field(
        None, ge=0, le=3, description="Uplink μ; default 1 in FR1 (30 kHz), 3 in FR2 (120 kHz)."
    )
    ul_n_prb: int | None = Field(
        None, ge=1, le=275, description="PRBs of each scheduled UE; default: the whole carrier."
    )

    @field_validator("ul_alpha")
    @classmethod
    def _check_alpha(cls, v: float) -> float:
        if v not in ALPHA_VALUES:
            raise ValueError(
                f"ul_alpha={v:g} is not an Alpha of TS 38.331; allowed: "
                + ", ".join(f"{a:g}" for a in ALPHA_VALUES)
            )
        return v

    @property
    def ul_mu(self) -> int:
        """Uplink numerology μ (default: 1 in FR1, 3 in FR2)."""
        if self.ul_numerology is not None:
            return self.ul_numerology
        return 1 if frequency_range_of(self.carrier_hz) == "FR1" else 3

    @property
    def ul_prb(self) -> int:
        """PRBs M_RB of each scheduled UE (default: N_RB of the carrier, TS 38.101-1/-2).

        Raises:
            ValueError: If the bandwidth is not a channel bandwidth of μ and ``ul_n_prb`` is unset.
        """
        if self.ul_n_prb is not None:
            return self.ul_n_prb
        return n_prb_for_bandwidth(
            self.noise_bandwidth_hz, self.ul_mu, frequency_range=frequency_range_of(self.carrier_hz)
        )

    @property
    def ul_noise_dbm(self) -> float:
        """Noise at the gNB over the allocated PRBs: −174 + 10 log10(M_RB · 12 · SCS) + NF, dBm."""
        bw = self.ul_prb * prb_bandwidth_hz(self.ul_mu)
        return float(-174.0 + 10.0 * np.log10(bw) + self.gnb_noise_figure_db)

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
        uplink_sinr_db: Uplink SINR of the UE each cell scheduled, one value per cell with a
            served UE and trial (see :func:`uplink_sinr_db`), dB.
    """

    coupling_loss_db: FloatArray
    geometry_sinr_db: FloatArray
    geometry_sir_db: FloatArray
    serving_cell: IntArray
    uplink_sinr_db: FloatArray


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
        o2i_loss_db: O2I penetration loss, shape [n_ue, n_cell] or [n_ue], dB (default: per
            UE the low-loss model, or the high-loss one with probability
            ``config.o2i_high_loss_fraction``; 0 for outdoor UEs).

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
        z_o2i = rng.standard_normal(n_ue)
        o2i = o2i_low_loss_db(fc, drop.d_2d_in_m) + O2I_LOW_LOSS_STD_DB * z_o2i
        if config.o2i_high_loss_fraction > 0.0:  # drawn only then: the default stream stays
            high = o2i_high_loss_db(fc, drop.d_2d_in_m) + O2I_HIGH_LOSS_STD_DB * z_o2i
            o2i = np.where(rng.random(n_ue) < config.o2i_high_loss_fraction, high, o2i)
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


def schedule_uplink(
    serving: IntArray, n_cell: int, n_trials: int, rng: np.random.Generator
) -> IntArray:
    """One UE per cell and trial, drawn uniformly among the UEs the cell serves.

    Args:
        serving: Serving cell per UE, shape [n_ue].
        n_cell: Number of cells.
        n_trials: Number of independent scheduling trials.
        rng: Random generator (one uniform draw per trial and cell).

    Returns:
        Scheduled UE index, shape [n_trials, n_cell]; −1 where a cell serves no UE.
    """
    serving = np.asarray(serving, dtype=np.int64)
    order = np.argsort(serving, kind="stable")
    start = np.searchsorted(serving[order], np.arange(n_cell), side="left")
    count = np.bincount(serving, minlength=n_cell)[:n_cell]
    pick = np.floor(rng.random((n_trials, n_cell)) * count).astype(np.int64)
    idx = np.minimum(start + pick, max(order.size - 1, 0))
    out: IntArray = np.where(count > 0, order[idx] if order.size else -1, -1)
    return out


def uplink_sinr_db(
    config: CalibrationConfig,
    coupling_loss: FloatArray,
    scheduled: IntArray,
    *,
    p0_dbm: float | None = None,
    alpha: float | None = None,
) -> FloatArray:
    """Uplink SINR at each gNB of the UE it scheduled, open-loop power control, full load.

    The UE ``u = scheduled[t, c]`` of cell ``c`` sends with
    ``P_u = min(P_CMAX, P0 + 10 log10(2^μ M_RB) + α CL_{u,c})`` (TS 38.213 §7.1.1, the serving
    coupling loss as PL, ``f = Δ_TF = 0``) on the same ``M_RB`` PRBs as every other cell's UE;
    ``SINR_c = (P_u − CL_{u,c}) / (Σ_{c'≠c} (P_{u'} − CL_{u',c}) + N)`` with
    ``N = −174 + 10 log10(M_RB · 12 · SCS) + NF_gNB`` (powers summed in mW). The coupling loss
    of a UE to a gNB equals the downlink one (reciprocity; the nearest wrap-around image).

    Args:
        config: Calibration set-up (UL power control, numerology, PRBs, gNB noise figure).
        coupling_loss: Coupling loss, shape [n_ue, n_cell], dB.
        scheduled: UE scheduled per trial and cell, shape [n_trials, n_cell]; −1: none (the
            cell is silent and has no SINR).
        p0_dbm: P0 overriding ``config.ul_p0_dbm``.
        alpha: α overriding ``config.ul_alpha``.

    Returns:
        SINR, shape [n_trials, n_cell], dB; NaN for cells without a scheduled UE.
    """
    cl = np.asarray(coupling_loss, dtype=np.float64)
    sched = np.asarray(scheduled, dtype=np.int64)
    n_cell = cl.shape[1]
    if sched.ndim != 2 or sched.shape[1] != n_cell:
        raise ValueError(f"scheduled must have shape [n_trials, {n_cell}] (got {sched.shape})")
    active = sched >= 0
    u = np.where(active, sched, 0)
    cl_ul = cl[u]  # [n_trials, n_cell (tx: the UE of cell c'), n_cell (rx gNB)]
    cells = np.arange(n_cell)
    pl = cl_ul[:, cells, cells]  # [n_trials, n_cell]: CL of each scheduled UE to its own cell
    p_dbm = pusch_power_dbm(
        pl,
        config.ul_prb,
        p0_dbm=config.ul_p0_dbm if p0_dbm is None else p0_dbm,
        alpha=config.ul_alpha if alpha is None else alpha,
        mu=config.ul_mu,
        p_cmax_dbm=config.ue_max_power_dbm,
    )
    rx_mw = np.where(active[:, :, None], 10.0 ** ((p_dbm[:, :, None] - cl_ul) / 10.0), 0.0)
    signal = rx_mw[:, cells, cells]
    interference = rx_mw.sum(axis=1) - signal
    noise = 10.0 ** (config.ul_noise_dbm / 10.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sinr = 10.0 * np.log10(signal / (interference + noise))
    out: FloatArray = np.where(active, sinr, np.nan)
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


def run_calibration(
    config: CalibrationConfig, *, n_drops: int, seed: int, ul_trials: int | None = None
) -> CalibrationResult:
    """Drop, draw and evaluate ``n_drops`` independent drops (EdgeTwin's own realizations).

    Args:
        config: Calibration set-up.
        n_drops: Number of drops (each ``57 · ues_per_cell`` UEs).
        seed: Seed of the ``SeedSequence`` (one child stream per drop).
        ul_trials: Uplink scheduling trials per drop (default ``ues_per_cell``); drawn after the
            downlink draws of the drop, which they leave unchanged.

    Returns:
        Metrics of all UEs of all drops, concatenated.
    """
    trials = config.ues_per_cell if ul_trials is None else ul_trials
    parts = []
    ul = []
    for child in np.random.SeedSequence(seed).spawn(n_drops):
        rng = np.random.default_rng(child)
        drop = drop_ues(config, rng)
        cl_all = coupling_loss_db(config, drop, rng)
        res = evaluate(config, cl_all)
        parts.append(res)
        sched = schedule_uplink(res[3], cl_all.shape[1], trials, rng)
        sinr_ul = uplink_sinr_db(config, cl_all, sched)
        ul.append(sinr_ul[~np.isnan(sinr_ul)])
    cl, sinr, sir, s = (np.concatenate(x) for x in zip(*parts, strict=True))
    return CalibrationResult(
        coupling_loss_db=cl,
        geometry_sinr_db=sinr,
        geometry_sir_db=sir,
        serving_cell=s,
        uplink_sinr_db=np.concatenate(ul),
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
    "O2I_HIGH_LOSS_STD_DB",
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
    "o2i_high_loss_db",
    "run_calibration",
    "schedule_uplink",
    "serving_cell",
    "uplink_sinr_db",
]
