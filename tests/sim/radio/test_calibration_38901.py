"""TR 38.901 §7.8.1 large-scale calibration: EdgeTwin against Sionna 2.2 on the same drops."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from edgetwin.sim.radio.calibration import (
    CalibrationConfig,
    coupling_loss_db,
    drop_from_arrays,
    drop_ues,
    evaluate,
    geometry_sinr_db,
    geometry_sir_db,
    o2i_high_loss_db,
    run_calibration,
    schedule_uplink,
    serving_cell,
    uplink_sinr_db,
)

pytest.importorskip("sionna.sys")

_BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "calibration_38901.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibration_38901", _BENCH)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def umi_drop(bench: ModuleType) -> tuple[CalibrationConfig, Any, dict[str, Any]]:
    cfg = CalibrationConfig(scenario="umi", carrier_hz=6e9)
    metrics, real = bench.sionna_drop(cfg, n_per_sector=2, seed=3, wrap="edgetwin")
    return cfg, metrics, real


def test_same_drop_same_draws_matches_sionna_per_link(
    umi_drop: tuple[CalibrationConfig, Any, dict[str, Any]],
) -> None:
    # UMi has no random effective environment height (TR 38.901 Table 7.4.1-1 Note 1 is UMa
    # only), so with Sionna's LOS / shadowing / O2I draws every link must agree exactly:
    # path loss (Table 7.4.1-1), wrap-around geometry and the Table 7.3-1 antenna pattern.
    cfg, metrics, real = umi_drop
    drop = drop_from_arrays(
        cfg,
        site_xy_m=real["site_xy"],
        ue_position_m=real["ue_loc"],
        indoor=real["indoor"],
        d_2d_in_m=real["d_in"],
    )
    cl = coupling_loss_db(
        cfg, drop, los=real["los"], shadow_fading_db=real["sf_db"], o2i_loss_db=real["o2i_db"]
    )
    assert cl.shape == real["cl_db"].shape == (114, 57)
    np.testing.assert_allclose(cl, real["cl_db"], atol=1e-6)
    cl_s, sinr, sir, _ = evaluate(cfg, cl)
    np.testing.assert_allclose(cl_s, metrics.coupling_loss_db, atol=1e-6)
    np.testing.assert_allclose(sinr, metrics.geometry_sinr_db, atol=1e-6)
    np.testing.assert_allclose(sir, metrics.geometry_sir_db, atol=1e-6)


def test_same_drop_own_draws_within_statistical_tolerance(
    bench: ModuleType, umi_drop: tuple[CalibrationConfig, Any, dict[str, Any]]
) -> None:
    # Own LOS/shadowing/O2I draws on Sionna's 114 UEs: medians agree to within the sampling
    # spread of 114 UEs (a gross model error, e.g. a missing O2I loss, is > 10 dB).
    cfg, metrics, real = umi_drop
    own = bench.edgetwin_drop(cfg, real, mode="own", seed=11)
    for m in ("coupling_loss_db", "geometry_sir_db"):
        gap = abs(np.median(getattr(own, m)) - np.median(getattr(metrics, m)))
        assert gap < 5.0, (m, gap)


def test_geometry_sinr_sir_hand_computed() -> None:
    # TR 38.901 §7.8.1 geometry: serving 100 dB, two interferers at 110 dB -> SIR = 10 - 3.01.
    cl = np.array([[100.0, 110.0, 110.0], [120.0, 90.0, 130.0]])
    s = serving_cell(cl)
    np.testing.assert_array_equal(s, [0, 1])
    sir = geometry_sir_db(cl, s)
    assert sir[0] == pytest.approx(10.0 - 10.0 * np.log10(2.0))
    assert sir[1] == pytest.approx(-10.0 * np.log10(10**-3 + 10**-4))
    # Noise: -174 dBm/Hz + 73.01 dB (20 MHz) + 9 dB = -91.99 dBm; received -56 dBm at 44 dBm.
    sinr = geometry_sinr_db(cl, s, tx_power_dbm=44.0, bandwidth_hz=20e6, noise_figure_db=9.0)
    n_rel = 10 ** ((-174.0 + 10 * np.log10(20e6) + 9.0 - (44.0 - 100.0)) / 10)
    assert sinr[0] == pytest.approx(-10.0 * np.log10(2 * 10**-1 + n_rel))
    assert np.all(sinr <= sir)
    with pytest.raises(ValueError, match="0 dB"):
        serving_cell(cl, handover_margin_db=3.0)


def test_drop_follows_table_7_8_1() -> None:
    cfg = CalibrationConfig(scenario="uma", carrier_hz=30e9, ues_per_cell=40)
    drop = drop_ues(cfg, np.random.default_rng(2))
    n = 57 * 40
    assert drop.ue_position_m.shape == (n, 3)
    # 80 % indoor: binomial(2280, 0.8) stays within 4 sigma (= 0.034).
    assert abs(drop.indoor.mean() - 0.8) < 0.034
    # TR 36.873 Table 6-1 floor heights indoors, 1.5 m outdoors.
    h = drop.ue_position_m[:, 2]
    assert set(np.unique(h[drop.indoor])) <= {1.5 + 3.0 * k for k in range(8)}
    assert np.unique(h[drop.indoor]).size == 8
    np.testing.assert_array_equal(h[~drop.indoor], 1.5)
    # TR 38.901 §7.4.3.1: d_2D-in in [0, 25] m indoors, 0 outdoors; min distance 35 m (UMa).
    assert np.all((drop.d_2d_in_m >= 0) & (drop.d_2d_in_m <= 25.0))
    np.testing.assert_array_equal(drop.d_2d_in_m[~drop.indoor], 0.0)
    assert drop.layout.wrap_offset_m.shape == (7, 2)
    # Table 7.8-1: 100 MHz at 30 GHz, 44 dBm in UMa.
    assert cfg.noise_bandwidth_hz == 100e6
    assert cfg.tx_power_dbm == 44.0


def test_association_by_coupling_loss_not_by_drop_cell() -> None:
    # Handover margin 0 dB (Table 7.8-1): with shadowing some UEs are served by another cell
    # than the one they were dropped in, and none is served by a cell with a higher loss.
    cfg = CalibrationConfig(scenario="umi", carrier_hz=6e9, ues_per_cell=5)
    rng = np.random.default_rng(4)
    drop = drop_ues(cfg, rng)
    cl = coupling_loss_db(cfg, drop, rng)
    s = serving_cell(cl)
    dropped_in = np.repeat(np.arange(57), 5)
    assert 0 < np.mean(s != dropped_in) < 0.9
    assert np.all(cl[np.arange(cl.shape[0]), s] <= cl.min(axis=1))


def test_run_is_reproducible_and_seeded() -> None:
    cfg = CalibrationConfig(scenario="umi", carrier_hz=6e9, ues_per_cell=2)
    a = run_calibration(cfg, n_drops=2, seed=9)
    b = run_calibration(cfg, n_drops=2, seed=9)
    c = run_calibration(cfg, n_drops=2, seed=10)
    np.testing.assert_array_equal(a.coupling_loss_db, b.coupling_loss_db)
    assert a.coupling_loss_db.shape == (2 * 57 * 2,)
    assert not np.array_equal(a.coupling_loss_db, c.coupling_loss_db)


@pytest.mark.parametrize(("carrier_hz", "mu", "n_prb"), [(6e9, 1, 51), (30e9, 3, 66)])
def test_uplink_sinr_matches_sionna_power_control_on_same_drop(
    bench: ModuleType,
    umi_drop: tuple[CalibrationConfig, Any, dict[str, Any]],
    carrier_hz: float,
    mu: int,
    n_prb: int,
) -> None:
    # Same UEs, same LOS/shadowing/O2I draws, same scheduled UE per cell: EdgeTwin's
    # pusch_power_dbm + uplink SINR against Sionna's open_loop_uplink_power_control +
    # geometry_sinr_db (read by reciprocity). The 30 GHz config reuses the 6 GHz coupling
    # losses to exercise μ = 3 (2^μ · M_RB in TS 38.213, 15 kHz PRBs on Sionna's side).
    cfg, _, real = umi_drop
    drop = drop_from_arrays(
        cfg,
        site_xy_m=real["site_xy"],
        ue_position_m=real["ue_loc"],
        indoor=real["indoor"],
        d_2d_in_m=real["d_in"],
    )
    cl = coupling_loss_db(
        cfg, drop, los=real["los"], shadow_fading_db=real["sf_db"], o2i_loss_db=real["o2i_db"]
    )
    ul_cfg = CalibrationConfig(scenario="umi", carrier_hz=carrier_hz)
    assert (ul_cfg.ul_mu, ul_cfg.ul_prb) == (mu, n_prb)
    sched = schedule_uplink(real["cl_db"].argmin(axis=1), 57, 4, np.random.default_rng(5))
    for alpha, p0 in bench.UL_SETS:
        ours = uplink_sinr_db(ul_cfg, cl, sched, p0_dbm=p0, alpha=alpha)
        theirs = bench.sionna_uplink_sinr_db(ul_cfg, real["cl_db"], sched, alpha=alpha, p0_dbm=p0)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, atol=1e-6, equal_nan=True)
        ok = ~np.isnan(ours)
        gap = np.abs(np.percentile(ours[ok], (5, 50, 95)) - np.percentile(theirs[ok], (5, 50, 95)))
        assert np.all(gap < 0.5), gap
        # open-loop power control is active: not every UE at P_CMAX, not every UE below it
        assert 0.0 < np.percentile(ours[ok], 50) < 15.0


def test_uplink_sinr_hand_computed() -> None:
    # Two cells, UE 0 in cell 0 (CL 100 dB to it, 120 dB to cell 1), UE 1 in cell 1 (CL 130 dB
    # to it, 110 dB to cell 0). μ = 1, 51 PRBs: 10 log10(102) = 20.09 dB.
    cfg = CalibrationConfig(scenario="umi", carrier_hz=6e9, ul_p0_dbm=-106.0, ul_alpha=1.0)
    cl = np.array([[100.0, 120.0], [110.0, 130.0]])
    sched = np.array([[0, 1], [0, -1]])
    sinr = uplink_sinr_db(cfg, cl, sched)
    bw_db = 10 * np.log10(2 * 51)
    p0 = -106.0 + bw_db + 100.0  # 14.09 dBm, below P_CMAX
    p1 = min(23.0, -106.0 + bw_db + 130.0)  # capped at 23 dBm
    noise_mw = 10 ** ((-174.0 + 10 * np.log10(51 * 12 * 30e3) + 5.0) / 10)
    assert cfg.ul_noise_dbm == pytest.approx(-174.0 + 10 * np.log10(51 * 12 * 30e3) + 5.0)
    s0, i0 = 10 ** ((p0 - 100.0) / 10), 10 ** ((p1 - 110.0) / 10)
    s1, i1 = 10 ** ((p1 - 130.0) / 10), 10 ** ((p0 - 120.0) / 10)
    assert sinr[0, 0] == pytest.approx(10 * np.log10(s0 / (i0 + noise_mw)))
    assert sinr[0, 1] == pytest.approx(10 * np.log10(s1 / (i1 + noise_mw)))
    # a silent cell has no SINR and sends no interference
    assert np.isnan(sinr[1, 1])
    assert sinr[1, 0] == pytest.approx(10 * np.log10(s0 / noise_mw))
    with pytest.raises(ValueError, match="Alpha"):
        CalibrationConfig(ul_alpha=0.75)
    with pytest.raises(ValueError, match="shape"):
        uplink_sinr_db(cfg, cl, np.array([0, 1]))


def test_schedule_uplink_picks_served_ues_only() -> None:
    serving = np.array([2, 0, 2, 2, 0, 3])  # cell 1 serves nobody
    sched = schedule_uplink(serving, 4, 400, np.random.default_rng(0))
    assert sched.shape == (400, 4)
    np.testing.assert_array_equal(sched[:, 1], -1)
    for c in (0, 2, 3):
        assert set(np.unique(sched[:, c])) == set(np.flatnonzero(serving == c))
    # uniform among the served UEs: each of cell 2's three UEs about a third of the time
    counts = np.bincount(sched[:, 2], minlength=6)[[0, 2, 3]]
    assert np.all(np.abs(counts / 400 - 1 / 3) < 0.1)


def test_run_calibration_uplink_is_seeded_and_keeps_downlink_draws() -> None:
    cfg = CalibrationConfig(scenario="uma", carrier_hz=6e9, ues_per_cell=2)
    a = run_calibration(cfg, n_drops=2, seed=9)
    b = run_calibration(cfg, n_drops=2, seed=9, ul_trials=5)
    np.testing.assert_array_equal(a.coupling_loss_db, b.coupling_loss_db)
    assert a.uplink_sinr_db.size <= 2 * 2 * 57
    assert b.uplink_sinr_db.size > a.uplink_sinr_db.size
    assert not np.any(np.isnan(a.uplink_sinr_db))
    # α = 1, P0 = −106 dBm: no UE exceeds the P0 + 10 log10(2^μ M_RB) target over the noise
    snr_max = -106.0 + 10 * np.log10(2 * 51) - cfg.ul_noise_dbm
    assert np.all(a.uplink_sinr_db <= snr_max + 1e-9)


def test_o2i_high_loss_share_is_opt_in() -> None:
    # TR 38.901 Table 7.4.3-2 high-loss model at 6 GHz, d_2D-in = 10 m:
    # 5 − 10 log10(0.7·10^(−2.48) + 0.3·10^(−2.9)) + 5 = 35.69 dB.
    assert o2i_high_loss_db(6e9, np.array([10.0]))[0] == pytest.approx(35.694, abs=1e-3)
    base = CalibrationConfig(scenario="umi", carrier_hz=6e9, ues_per_cell=4)
    mix = base.model_copy(update={"o2i_high_loss_fraction": 0.5})
    drop = drop_ues(base, np.random.default_rng(1))
    cl_low = coupling_loss_db(base, drop, np.random.default_rng(2))
    cl_mix = coupling_loss_db(mix, drop, np.random.default_rng(2))
    # outdoor UEs untouched; indoor ones: same LOS/shadowing, so only the O2I loss can differ
    # and it only grows (high-loss mean − low-loss mean ≈ 14 dB at 6 GHz)
    np.testing.assert_array_equal(cl_low[~drop.indoor], cl_mix[~drop.indoor])
    d = (cl_mix - cl_low)[drop.indoor, 0]
    assert 0.3 < np.mean(d > 1.0) < 0.7
    assert np.median(d[d > 1.0]) > 8.0
