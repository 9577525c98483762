"""TR 38.901 §7.8.1 large-scale calibration: EdgeTwin vs. Sionna 2.2 on the same drops.

For each scenario (UMa, UMi–Street Canyon) and carrier (6, 30 GHz) and each drop:

1. Sionna's TR 38.901 topology helper ``sionna.sys.gen_tr38901_multicell_topology`` drops the
   UEs (19 sites × 3 sectors, 80 % indoor, TR 36.873 floor heights, indoor distances).
2. **Sionna**: its UMa/UMi model samples LOS, path loss (basic + O2I) and shadow fading
   (``sample_lsp``); the BS gain is Sionna's ``AntennaElement("38.901")`` pattern at the LOS
   angles of its scenario plus the 10-element vertical array factor with 12° electrical
   downtilt (computed here: Sionna has no single-TXRU virtualised column); then
   ``sionna.sys.coupling_loss_db``, ``geometry_sinr_db`` and ``geometry_sir_db``.
3. **EdgeTwin** on the same UEs (:mod:`edgetwin.sim.radio.calibration`), two ways:
   ``shared`` — fed Sionna's LOS states, shadow fading and O2I losses (isolates the
   deterministic model: path-loss formulas, wrap-around, antenna, association, SINR);
   ``own`` — its own random draws (compares the statistics).

4. **Uplink** (not in TR 38.901 §7.8): per drop ``--ul-trials`` trials (default: UEs per
   sector); in each, every cell schedules one UE drawn uniformly among those it serves, on the
   whole carrier (μ = 1, 51 PRBs at 6 GHz / 20 MHz; μ = 3, 66 PRBs at 30 GHz / 100 MHz), with
   open-loop PUSCH power control from its serving coupling loss; SINR at the serving gNB
   against the other cells' scheduled UEs plus gNB noise (5 dB NF over the allocation).
   Power-control sets (``--ul-pc``): α = 1, P0 = −106 dBm (TR 36.814 Annex A.2 uplink
   evaluation; as quoted in public LTE-uplink simulator code, the table itself was not at
   hand) and α = 0.8, P0 = −90 dBm (EdgeTwin's ``UplinkPowerConfig`` default); P_CMAX 23 dBm.
   Sionna has no uplink SINR utility: its side is ``open_loop_uplink_power_control`` plus
   ``geometry_sinr_db`` read by reciprocity (:func:`sionna_uplink_sinr_db`), on Sionna's
   coupling losses; EdgeTwin's is :func:`edgetwin.sim.radio.calibration.uplink_sinr_db` with
   ``pusch_power_dbm``; both use the same scheduled UEs.
5. ``edgetwin-own-o2imix``: own draws with 50 % of the indoor UEs on the high-loss O2I model
   (``--o2i-high-fraction``), the set-up that reproduces the R1-165974 coupling loss (below).

Wrap-around: Sionna 2.2's calibration wrap vectors are not lattice vectors of its own site
grid (see the closing print and ``tests/sim/radio/test_wraparound.py``), so by default Sionna is
run twice: with its own virtual BS locations (``sionna``) and with EdgeTwin's nearest images
passed as ``bs_virtual_loc`` (``sionna-etwrap``), which is the like-for-like reference.

Output: per scenario × carrier × metric the 5th/50th/95th percentiles and the largest CDF gap
(maximum horizontal distance between the two empirical quantile functions over 1..99 %), a CSV
and PNG CDF plots in ``--out``. Reference percentiles: the company medians of R1-165974 as
tabulated in QuaDRiGa's ``tutorials/calib_3GPP_ref_data.m`` (fraunhoferhhi/QuaDRiGa; TR 38.900
v14.0.0 parameters, since changed for UMa LOS); geometry there is without noise.

Measured (10 drops × 570 UEs per scenario and carrier, seed 1, 2-core VM, 10m40s, almost all in
Sionna's LSP sampling): ``edgetwin-shared`` vs ``sionna-etwrap`` ≤ 0.02 dB at 5/50/95 % and
≤ 0.10 dB largest CDF gap (UMa: Sionna's random h_E for UEs above 13 m, which EdgeTwin's path
loss fixes at 1 m; UMi exact); ``edgetwin-own`` ≤ 0.74 dB at 5/50/95 % and ≤ 1.13 dB largest CDF
gap (independent draws; Sionna's shadowing is spatially correlated, EdgeTwin's is not).

Uplink, measured (3 drops × 570 UEs, 30 UL trials = 1,710 SINR samples per case, seed 1;
p5 / p50 / p95 dB, α = 1, P0 = −106 dBm): UMa 6 GHz Sionna −20.31 / 2.94 / 10.22, EdgeTwin
same draws identical (largest CDF gap 0.18 dB, the UMa h_E effect), own draws −19.61 / 2.74 /
10.25; UMa 30 GHz −43.08 / −19.50 / 9.88, identical, own −43.85 / −19.91 / 10.13; UMi 6 GHz
−14.54 / 4.15 / 9.73, identical, own −14.51 / 4.78 / 9.85; UMi 30 GHz −37.95 / −13.77 / 10.36,
identical, own −37.75 / −12.57 / 10.37 (α = 0.8, P0 = −90 dBm: same picture, ≤ 1.2 dB own).

R1-165974 gap: the low-loss-only O2I model (what Sionna's ``o2i_model="low"`` and EdgeTwin
use) gives a coupling loss 5-9 dB below the company medians at p50 and ~15 dB at p95. With
half of the indoor UEs on the high-loss model (TR 38.901 Table 7.4.3-2) EdgeTwin's own draws
land within 1.1 dB of the reference at p5 / p50 / p95 in all four cases (UMa 6 GHz 85.3 /
119.8 / 151.3 vs 86.0 / 120.3 / 150.4; UMa 30 GHz 101.6 / 139.5 / 173.1 vs 102.0 / 140.1 /
172.0; UMi 6 GHz 74.0 / 112.1 / 143.2 vs 74.8 / 112.2 / 142.3; UMi 30 GHz 88.7 / 132.1 / 165.7
vs 89.3 / 132.4 / 164.6). NVIDIA Aerial's R1-165974 phase-1 calibration config
(``testBenches/chanModels/config/statistic_channel_config_phase1.yaml``:
``o2i_building_penetr_loss_ind: 2  # 50% low-loss, 50% high-loss``) uses the same mix. The SIR
does not move (a UE's O2I loss is common to all its links) and stays ~0.5-1 dB below the
reference medians; that remaining gap is not explained here.

Usage::

    .venv/bin/python benchmarks/calibration_38901.py --out results/calibration --drops 4
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetwin.sim.radio.calibration import (
    CalibrationConfig,
    coupling_loss_db,
    drop_from_arrays,
    evaluate,
    schedule_uplink,
    uplink_sinr_db,
)
from edgetwin.sim.radio.geometry import ue_to_bs_xy_m

PCTS = (5, 50, 95)
METRICS = ("coupling_loss_db", "geometry_sinr_db", "geometry_sir_db")
#: Uplink power-control sets (α, P0 dBm): full compensation of TR 36.814 Annex A.2 (the
#: calibration default) and EdgeTwin's default uplink (UplinkPowerConfig: α = 0.8, −90 dBm).
UL_SETS: tuple[tuple[float, float], ...] = ((1.0, -106.0), (0.8, -90.0))


def ul_metric(alpha: float, p0_dbm: float) -> str:
    """Name of the uplink SINR metric of one power-control set."""
    return f"ul_sinr_db[a={alpha:g},P0={p0_dbm:g}]"


#: R1-165974 company medians (via QuaDRiGa calib_3GPP_ref_data.m: cl38900a / gf38900a), 5/50/95 %.
#: Coupling loss = −(path gain); the geometry there is noise-free (compare with the SIR).
REFERENCE: dict[tuple[str, float, str], tuple[float, float, float]] = {
    ("umi", 6e9, "coupling_loss_db"): (74.8, 112.2, 142.3),
    ("umi", 30e9, "coupling_loss_db"): (89.3, 132.4, 164.6),
    ("uma", 6e9, "coupling_loss_db"): (86.0, 120.3, 150.4),
    ("uma", 30e9, "coupling_loss_db"): (102.0, 140.1, 172.0),
    ("umi", 6e9, "geometry_sir_db"): (-1.7, 7.3, 24.9),
    ("umi", 30e9, "geometry_sir_db"): (-1.6, 7.5, 24.9),
    ("uma", 6e9, "geometry_sir_db"): (-1.0, 8.6, 25.6),
    ("uma", 30e9, "geometry_sir_db"): (-1.0, 8.6, 25.6),
}


@dataclass
class DropMetrics:
    """Per-UE metrics of one side, shape [n_ue] each (dB)."""

    coupling_loss_db: np.ndarray
    geometry_sinr_db: np.ndarray
    geometry_sir_db: np.ndarray
    #: uplink SINR per power-control set (metric name), one value per cell and trial (no NaN)
    ul: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, metric: str) -> np.ndarray:
        """A metric by name (downlink field or uplink set)."""
        return self.ul[metric] if metric in self.ul else getattr(self, metric)


def _array_gain_db(theta_deg: np.ndarray, m: int, d_wl: float, tilt_deg: float) -> np.ndarray:
    """Vertical column array factor (TR 36.897 §5.2.2 weights), steering-vector form."""
    k = np.arange(m)[:, None, None]
    th, tilt = np.deg2rad(theta_deg)[None], np.deg2rad(90.0 + tilt_deg)
    v = np.exp(2j * np.pi * k * d_wl * np.cos(th))
    w = np.exp(-2j * np.pi * k * d_wl * math.cos(tilt)) / math.sqrt(m)
    return 10.0 * np.log10(np.abs((w * v).sum(0)) ** 2)


def sionna_drop(
    cfg: CalibrationConfig, *, n_per_sector: int, seed: int, wrap: str
) -> tuple[DropMetrics, dict[str, Any]]:
    """One drop with Sionna 2.2: metrics and the realizations EdgeTwin can reuse.

    Args:
        cfg: Calibration set-up (scenario, carrier, power, bandwidth, antenna).
        n_per_sector: UEs per sector.
        seed: Sionna's global seed for this drop.
        wrap: ``"sionna"`` (its own virtual BS locations) or ``"edgetwin"`` (nearest images of
            EdgeTwin's wrap-around, passed as ``bs_virtual_loc``).

    Returns:
        ``(metrics, realizations)``; realizations hold ``site_xy`` [19, 2],
        ``ue_loc`` [n_ue, 3], ``indoor`` [n_ue], ``d_in`` [n_ue], ``los`` / ``sf_db`` /
        ``o2i_db`` [n_ue, n_cell].
    """
    import torch
    from sionna.phy import config as sn_config
    from sionna.phy.channel.tr38901 import PanelArray, UMa, UMi
    from sionna.phy.channel.tr38901.antenna import AntennaElement
    from sionna.sys import (
        coupling_loss_db as sn_cl,
    )
    from sionna.sys import (
        gen_tr38901_multicell_topology,
        geometry_sinr_db,
        geometry_sir_db,
    )

    sn_config.seed = seed
    fc = cfg.carrier_hz
    topo, sites = gen_tr38901_multicell_topology(
        cfg.scenario, 1, n_per_sector, fc, return_site_positions=True, precision="double"
    )
    topo = list(topo)
    ut_loc = topo[0]
    if wrap == "edgetwin":
        drop0 = drop_from_arrays(
            cfg,
            site_xy_m=sites.numpy(),
            ue_position_m=ut_loc[0].numpy(),
            indoor=topo[5][0].numpy(),
            d_2d_in_m=np.zeros(ut_loc.shape[1]),
        )
        lay = drop0.layout
        rel = ue_to_bs_xy_m(lay.bs_position_m, ut_loc[0].numpy(), lay.wrap_offset_m)
        img = ut_loc[0].numpy()[:, None, :2] - rel  # [n_ue, n_cell, 2]
        virt = np.concatenate(
            [img, np.broadcast_to(lay.bs_position_m[None, :, 2:], (*img.shape[:2], 1))], -1
        )
        topo[7] = torch.as_tensor(virt.transpose(1, 0, 2)[None], dtype=ut_loc.dtype)
    arrays = {
        "ut_array": PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=fc,
            precision="double",
        ),
        "bs_array": PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="38.901",
            carrier_frequency=fc,
            precision="double",
        ),
    }
    model_cls = UMa if cfg.scenario == "uma" else UMi
    model = model_cls(
        carrier_frequency=fc, o2i_model="low", direction="downlink", precision="double", **arrays
    )
    model.set_topology(*topo)
    lsp = model.sample_lsp()
    scen = model._scenario  # LOS angles, basic path loss, outdoor LOS
    pl = lsp.pathloss[0].numpy()  # [n_cell, n_ue], basic + O2I
    sf_db = 10.0 * np.log10(lsp.sf[0].numpy())
    o2i = pl - scen.basic_pathloss[0].numpy()
    # BS gain at the LOS departure angles (global frame, degrees; sectors have no mech. tilt)
    zod = scen.los_zod[0].numpy()
    aod = scen.los_aod[0].numpy()
    yaw = np.rad2deg(topo[3][0, :, 0].numpy())[:, None]
    phi = (aod - yaw + 180.0) % 360.0 - 180.0
    elem = AntennaElement("38.901", precision="double")
    f_t, f_p = elem.field(torch.as_tensor(np.deg2rad(zod)), torch.as_tensor(np.deg2rad(phi)))
    g_elem = 10.0 * np.log10(f_t.numpy() ** 2 + f_p.numpy() ** 2)
    g = g_elem + _array_gain_db(
        zod, cfg.bs_vertical_elements, cfg.bs_vertical_spacing_wl, cfg.bs_downtilt_deg
    )
    path_gain = -(pl + sf_db) + g  # [n_cell, n_ue]
    cl = sn_cl(torch.as_tensor(path_gain.T), precision="double")
    sinr = geometry_sinr_db(
        cl, cfg.tx_power_dbm, cfg.noise_bandwidth_hz, cfg.ue_noise_figure_db, precision="double"
    )
    sir = geometry_sir_db(cl, precision="double")
    cl_np = cl.numpy()
    metrics = DropMetrics(cl_np.min(axis=1), sinr.numpy(), sir.numpy())
    d_in = topo[10][0].numpy()
    real = {
        "site_xy": sites.numpy(),
        "ue_loc": ut_loc[0].numpy(),
        "indoor": topo[5][0].numpy(),
        "d_in": d_in if d_in.ndim == 1 else d_in.max(axis=0),
        # The path loss of an O2I link uses the LOS state of its outdoor part (TR 38.901 §7.4.3)
        "los": scen.outdoor_los[0].numpy().T,
        "sf_db": sf_db.T,
        "o2i_db": o2i.T,
        # diagnostics: Sionna's per-link coupling loss, basic path loss and BS gain
        "cl_db": cl_np,
        "basic_pl_db": scen.basic_pathloss[0].numpy().T,
        "bs_gain_db": g.T,
    }
    return metrics, real


def edgetwin_drop(
    cfg: CalibrationConfig,
    real: dict[str, Any],
    *,
    mode: str,
    seed: int,
    schedule: np.ndarray | None = None,
    ul_sets: tuple[tuple[float, float], ...] = UL_SETS,
    ul_trials: int | None = None,
) -> DropMetrics:
    """EdgeTwin's metrics on the UEs of a Sionna drop (``mode``: ``"shared"`` or ``"own"``).

    The uplink uses ``schedule`` ([n_trials, n_cell] UE per cell, e.g. the Sionna side's) or,
    when it is None, one drawn from EdgeTwin's own serving cells with ``seed``.
    """
    drop = drop_from_arrays(
        cfg,
        site_xy_m=real["site_xy"],
        ue_position_m=real["ue_loc"],
        indoor=real["indoor"],
        d_2d_in_m=real["d_in"],
    )
    if mode == "shared":
        cl = coupling_loss_db(
            cfg, drop, los=real["los"], shadow_fading_db=real["sf_db"], o2i_loss_db=real["o2i_db"]
        )
    else:
        cl = coupling_loss_db(cfg, drop, np.random.default_rng(seed))
    cl_s, sinr, sir, serving = evaluate(cfg, cl)
    if schedule is None:
        trials = n_ul_trials(cfg, cl.shape[0], ul_trials)
        schedule = schedule_uplink(serving, cl.shape[1], trials, _ul_rng(seed))
    ul = {}
    for a, p0 in ul_sets:
        v = uplink_sinr_db(cfg, cl, schedule, p0_dbm=p0, alpha=a)
        ul[ul_metric(a, p0)] = v[~np.isnan(v)]
    return DropMetrics(cl_s, sinr, sir, ul)


def n_ul_trials(cfg: CalibrationConfig, n_ue: int, ul_trials: int | None) -> int:
    """Uplink trials per drop: given, else the UEs per cell of the drop (each UE ~once)."""
    return ul_trials if ul_trials is not None else max(1, n_ue // 57)


def _ul_rng(seed: int) -> np.random.Generator:
    """The scheduling stream of a drop (separate from every channel draw)."""
    return np.random.default_rng([seed, 0x55AA])


def sionna_uplink_sinr_db(
    cfg: CalibrationConfig,
    cl: np.ndarray,
    schedule: np.ndarray,
    *,
    alpha: float,
    p0_dbm: float,
) -> np.ndarray:
    """Uplink SINR with Sionna 2.2's functions from its per-link coupling losses.

    ``sionna.sys`` has no uplink SINR utility, so the uplink is put together from its parts:
    ``open_loop_uplink_power_control`` (power per UE from its serving coupling loss as the
    pathloss) and ``geometry_sinr_db`` read by reciprocity — the gNBs of the scheduling cells
    as its "users", the scheduled UEs as its "transmitters" with per-transmitter powers,
    serving index = the gNB's own UE, noise over the allocated bandwidth with the gNB noise
    figure. Sionna's power control has no ``2^μ`` factor (its PRB is 12 subcarriers at the
    15 kHz reference), so it is given ``12 · 2^μ · M_RB`` subcarriers, i.e. the allocation in
    15 kHz PRBs as TS 38.213 §7.1.1 counts it.

    Args:
        cfg: Calibration set-up (numerology, PRBs, P_CMAX, gNB noise figure).
        cl: Coupling loss, shape [n_ue, n_cell], dB.
        schedule: UE per trial and cell, shape [n_trials, n_cell]; −1: silent cell.
        alpha: Pathloss compensation α.
        p0_dbm: P0 per 15 kHz PRB, dBm.

    Returns:
        SINR, shape [n_trials, n_cell], dB (NaN for silent cells).
    """
    import torch
    from sionna.sys import geometry_sinr_db, open_loop_uplink_power_control

    mu, m_rb = cfg.ul_mu, cfg.ul_prb
    n_sc = 12 * 2**mu * m_rb
    bw_hz = m_rb * 12 * 15e3 * 2**mu
    out = np.full(schedule.shape, np.nan)
    for t in range(schedule.shape[0]):
        act = np.flatnonzero(schedule[t] >= 0)
        u = schedule[t, act]
        cl_ul = cl[u][:, act]  # [UE of cell act[i], gNB act[j]]
        pl_lin = torch.as_tensor(10.0 ** (np.diagonal(cl_ul) / 10.0), dtype=torch.float64)
        p_w = open_loop_uplink_power_control(
            pl_lin,
            torch.full(pl_lin.shape, n_sc, dtype=torch.int64),
            alpha=alpha,
            p0_dbm=p0_dbm,
            ut_max_power_dbm=cfg.ue_max_power_dbm,
            precision="double",
        )
        p_dbm = 10.0 * torch.log10(p_w) + 30.0
        sinr = geometry_sinr_db(
            torch.as_tensor(cl_ul.T),  # [gNB ("user"), UE ("transmitter")]
            p_dbm[None, :],
            bw_hz,
            cfg.gnb_noise_figure_db,
            serving=torch.arange(act.size),
            precision="double",
        )
        out[t, act] = sinr.numpy()
    return out


def sionna_ul(
    cfg: CalibrationConfig,
    cl: np.ndarray,
    schedule: np.ndarray,
    ul_sets: tuple[tuple[float, float], ...],
) -> dict[str, np.ndarray]:
    """:func:`sionna_uplink_sinr_db` for every power-control set, NaN dropped."""
    out = {}
    for a, p0 in ul_sets:
        v = sionna_uplink_sinr_db(cfg, cl, schedule, alpha=a, p0_dbm=p0)
        out[ul_metric(a, p0)] = v[~np.isnan(v)]
    return out


def quantile_gap_db(a: np.ndarray, b: np.ndarray) -> float:
    """Largest horizontal distance between two empirical CDFs over the 1..99 % quantiles."""
    q = np.linspace(1, 99, 99)
    return float(np.max(np.abs(np.percentile(a, q) - np.percentile(b, q))))


def compare(
    scenario: str,
    fc: float,
    *,
    drops: int,
    n_per_sector: int,
    seed: int,
    ul_sets: tuple[tuple[float, float], ...] = UL_SETS,
    ul_trials: int | None = None,
    o2i_high_fraction: float = 0.5,
) -> dict[str, dict[str, np.ndarray]]:
    """All sides' pooled per-UE metrics for one scenario and carrier.

    Uplink: the Sionna sides and ``edgetwin-shared`` schedule the same UEs (drawn from the
    ``sionna-etwrap`` serving cells; ``sionna`` from its own), ``edgetwin-own`` from its own.
    ``edgetwin-own-o2imix`` (when ``o2i_high_fraction > 0``): own draws with that share of the
    indoor UEs on the high-loss O2I model (the set-up that reproduces R1-165974).
    """
    cfg = CalibrationConfig(scenario=scenario, carrier_hz=fc)  # type: ignore[arg-type]
    sides: dict[str, list[DropMetrics]] = {
        "sionna": [],
        "sionna-etwrap": [],
        "edgetwin-shared": [],
        "edgetwin-own": [],
    }
    for k in range(drops):
        s = seed + 1000 * k
        m_sn, real_sn = sionna_drop(cfg, n_per_sector=n_per_sector, seed=s, wrap="sionna")
        m_sw, real_w = sionna_drop(cfg, n_per_sector=n_per_sector, seed=s, wrap="edgetwin")
        n_ue, n_cell = real_w["cl_db"].shape
        trials = n_ul_trials(cfg, n_ue, ul_trials)
        for m, real in ((m_sn, real_sn), (m_sw, real_w)):
            sched = schedule_uplink(real["cl_db"].argmin(axis=1), n_cell, trials, _ul_rng(s))
            real["ul_schedule"] = sched
            m.ul = sionna_ul(cfg, real["cl_db"], sched, ul_sets)
        sides["sionna"].append(m_sn)
        sides["sionna-etwrap"].append(m_sw)
        sides["edgetwin-shared"].append(
            edgetwin_drop(
                cfg, real_w, mode="shared", seed=s, schedule=real_w["ul_schedule"], ul_sets=ul_sets
            )
        )
        sides["edgetwin-own"].append(
            edgetwin_drop(cfg, real_w, mode="own", seed=s, ul_sets=ul_sets, ul_trials=trials)
        )
        if o2i_high_fraction > 0.0:
            mix = cfg.model_copy(update={"o2i_high_loss_fraction": o2i_high_fraction})
            sides.setdefault("edgetwin-own-o2imix", []).append(
                edgetwin_drop(mix, real_w, mode="own", seed=s, ul_sets=ul_sets, ul_trials=trials)
            )
    names = (*METRICS, *(ul_metric(a, p0) for a, p0 in ul_sets))
    return {
        name: {m: np.concatenate([d.get(m) for d in ds]) for m in names}
        for name, ds in sides.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (CSV + PNG)")
    ap.add_argument("--drops", type=int, default=4, help="drops per scenario and carrier")
    ap.add_argument("--ues-per-sector", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenarios", default="uma,umi")
    ap.add_argument("--carriers-ghz", default="6,30")
    ap.add_argument(
        "--ul-pc",
        default=",".join(f"{a:g}:{p0:g}" for a, p0 in UL_SETS),
        help="uplink power-control sets alpha:P0_dBm, comma-separated",
    )
    ap.add_argument(
        "--ul-trials", type=int, default=None, help="UL trials per drop (default UEs per sector)"
    )
    ap.add_argument(
        "--o2i-high-fraction",
        type=float,
        default=0.5,
        help="high-loss O2I share of the extra side edgetwin-own-o2imix (0: no such side)",
    )
    args = ap.parse_args(argv)
    ul_sets = tuple(
        (float(a), float(p0)) for a, p0 in (x.split(":") for x in args.ul_pc.split(",") if x)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    results = {}
    for scen in args.scenarios.split(","):
        for f in (float(x) * 1e9 for x in args.carriers_ghz.split(",")):
            res = compare(
                scen,
                f,
                drops=args.drops,
                n_per_sector=args.ues_per_sector,
                seed=args.seed,
                ul_sets=ul_sets,
                ul_trials=args.ul_trials,
                o2i_high_fraction=args.o2i_high_fraction,
            )
            results[(scen, f)] = res
            ref_side = res["sionna-etwrap"]
            for metric in ref_side:
                ref = REFERENCE.get((scen, f, metric))
                for side, vals in res.items():
                    p = np.percentile(vals[metric], PCTS)
                    rp = np.percentile(ref_side[metric], PCTS)
                    rows.append(
                        {
                            "scenario": scen,
                            "carrier_ghz": f / 1e9,
                            "metric": metric,
                            "side": side,
                            "n_ue": vals[metric].size,
                            **{f"p{q}": round(float(v), 2) for q, v in zip(PCTS, p, strict=True)},
                            "max_pct_gap_vs_sionna_etwrap_db": round(
                                float(np.max(np.abs(p - rp))), 2
                            ),
                            "max_cdf_gap_vs_sionna_etwrap_db": round(
                                quantile_gap_db(vals[metric], ref_side[metric]), 2
                            ),
                            "ref_3gpp_p5_p50_p95": "" if ref is None else " ".join(map(str, ref)),
                        }
                    )
    _print_table(rows)
    path = args.out / "calibration_38901.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    _plot(results, args.out)
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'scen':4} {'GHz':>4} {'metric':26} {'side':20} {'p5':>7} {'p50':>7} {'p95':>7} "
        f"{'dPct':>5} {'dCDF':>5}  3GPP ref (p5 p50 p95)"
    )
    print(head)
    for r in rows:
        print(
            f"{r['scenario']:4} {r['carrier_ghz']:4.0f} {r['metric']:26} {r['side']:20} "
            f"{r['p5']:7.2f} {r['p50']:7.2f} {r['p95']:7.2f} "
            f"{r['max_pct_gap_vs_sionna_etwrap_db']:5.2f} "
            f"{r['max_cdf_gap_vs_sionna_etwrap_db']:5.2f}"
            f"  {r['ref_3gpp_p5_p50_p95']}"
        )


def _plot(results: dict[tuple[str, float], dict[str, dict[str, np.ndarray]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for (scen, f), res in results.items():
        metrics = list(next(iter(res.values())))
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.5))
        for ax, metric in zip(axes, metrics, strict=True):
            for side, vals in res.items():
                x = np.sort(vals[metric])
                ax.plot(x, np.arange(1, x.size + 1) / x.size, label=side)
            ref = REFERENCE.get((scen, f, metric))
            if ref is not None:
                ax.plot(ref, [q / 100 for q in PCTS], "k+", ms=10, label="R1-165974 median")
            ax.set_xlabel(metric.replace("_db", " [dB]") if metric in METRICS else metric)
            ax.set_ylabel("CDF")
            ax.grid(True)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"TR 38.901 §7.8.1 large-scale calibration, {scen.upper()} {f / 1e9:g} GHz")
        fig.tight_layout()
        fig.savefig(out / f"calibration_{scen}_{f / 1e9:g}ghz.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
