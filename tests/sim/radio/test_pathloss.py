"""TR 38.901 path loss / LOS probability: hand-computed reference values and Sionna cross-check."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.radio.pathloss import (
    SCENARIOS,
    breakpoint_distance_m,
    draw_o2i_low_loss_db,
    los_probability,
    median_delay_spread_s,
    o2i_low_loss_db,
    pathloss_db,
    shadow_fading_std_db,
)

FC = 3.5e9  # 20 log10(3.5) = 10.88136; 21.3 log10(3.5) = 11.58865; 24.9 log10(3.5) = 13.54729


# --- TR 38.901 Table 7.4.1-1, computed by hand -------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "d_2d", "h_bs", "h_ut", "los", "expected"),
    [
        # UMa LOS, d_2D = 100 m < d'_BP = 4·24·0.5·3.5e9/c = 560.39 m -> PL1.
        # d_3D = sqrt(100² + 23.5²) = 102.72414, log10 = 2.011673
        # PL1 = 28 + 22·2.011673 + 10.88136 = 83.13816
        ("uma", 100.0, 25.0, 1.5, True, 83.13816),
        # UMa NLOS, d_2D = 300 m: d_3D = 300.91901, log10 = 2.478450
        # PL_LOS = 28 + 22·2.478450 + 10.88136 = 93.40725
        # PL'_NLOS = 13.54 + 39.08·2.478450 + 10.88136 − 0.6·0 = 121.27917 -> max = 121.27917
        ("uma", 300.0, 25.0, 1.5, False, 121.27917),
        # UMa LOS beyond the breakpoint, d_2D = 1000 m: d_3D = 1000.27609, log10 = 3.000120
        # d'_BP² + (h_BS − h_UT)² = 560.3877² + 23.5² = 314586.60, log10 = 5.497740
        # PL2 = 28 + 40·3.000120 + 10.88136 − 9·5.497740 = 109.40649
        ("uma", 1000.0, 25.0, 1.5, True, 109.40649),
        # UMi LOS, d_2D = 50 m < d'_BP = 4·9·0.5·3.5e9/c = 210.15 m:
        # d_3D = sqrt(50² + 8.5²) = 50.71735, log10 = 1.705157
        # PL1 = 32.4 + 21·1.705157 + 10.88136 = 79.08965
        ("umi", 50.0, 10.0, 1.5, True, 79.08965),
        # UMi NLOS, d_2D = 100 m: d_3D = 100.36060, log10 = 2.001563
        # PL_LOS = 32.4 + 21·2.001563 + 10.88136 = 85.31419
        # PL'_NLOS = 35.3·2.001563 + 22.4 + 11.58865 − 0.3·0 = 104.64383 -> max = 104.64383
        ("umi", 100.0, 10.0, 1.5, False, 104.64383),
        # RMa LOS, d_2D = 1000 m < d_BP = 2π·35·1.5·3.5e9/c = 3851.1 m, h = 5 m:
        # d_3D = sqrt(1000² + 33.5²) = 1000.56097, log10 = 3.000244
        # 20 log10(40π·1000.56097·3.5/3) = 20 log10(146689.90) = 103.32800
        # h^1.72 = 15.93046: min(0.03·15.93, 10) = 0.477914, min(0.044·15.93, 14.77) = 0.700940
        # 0.002·log10(5)·1000.56097 = 1.398724
        # PL1 = 103.32800 + 0.477914·3.000244 − 0.700940 + 1.398724 = 105.45965
        ("rma", 1000.0, 35.0, 1.5, True, 105.45965),
        # InH LOS, d_2D = 20 m, h_BS = 3 m, h_UT = 1 m: d_3D = 20.09975, log10 = 1.303191
        # PL = 32.4 + 17.3·1.303191 + 10.88136 = 65.82656
        ("inh", 20.0, 3.0, 1.0, True, 65.82656),
        # InH NLOS: PL'_NLOS = 38.3·1.303191 + 17.30 + 13.54729 = 80.75950 (> 65.82656)
        ("inh", 20.0, 3.0, 1.0, False, 80.75950),
    ],
)
def test_pathloss_reference_values(
    scenario: str, d_2d: float, h_bs: float, h_ut: float, los: bool, expected: float
) -> None:
    got = pathloss_db(scenario, d_2d, fc_hz=FC, h_bs_m=h_bs, h_ut_m=h_ut, los=los)  # type: ignore[arg-type]
    assert got.shape == ()
    assert float(got) == pytest.approx(expected, abs=1e-4)


def test_breakpoint_distances() -> None:
    # TR 38.901 Table 7.4.1-1 Notes 1 and 5 (see the arithmetic above).
    assert float(breakpoint_distance_m("uma", fc_hz=FC, h_bs_m=25, h_ut_m=1.5)) == pytest.approx(
        560.3877, abs=1e-3
    )
    assert float(breakpoint_distance_m("umi", fc_hz=FC, h_bs_m=10, h_ut_m=1.5)) == pytest.approx(
        210.1454, abs=1e-3
    )
    assert float(breakpoint_distance_m("rma", fc_hz=FC, h_bs_m=35, h_ut_m=1.5)) == pytest.approx(
        3851.115, abs=1e-2
    )
    assert np.isinf(breakpoint_distance_m("inh", fc_hz=FC, h_bs_m=3, h_ut_m=1))


@pytest.mark.parametrize(
    ("scenario", "d_2d", "h_ut", "expected"),
    [
        # TR 38.901 Table 7.4.2-1. UMa, d = 100 m, h_UT = 1.5 m (C' = 0):
        # 18/100 + exp(−100/63)·(1 − 0.18) = 0.18 + 0.204477·0.82 = 0.347671
        ("uma", 100.0, 1.5, 0.347671),
        # UMa, h_UT = 20 m: C' = (7/10)^1.5 = 0.585662;
        # × (1 + 0.585662·5/4·1³·exp(−100/150) = 1 + 0.585662·1.25·0.513417) = 0.478347
        ("uma", 100.0, 20.0, 0.478347),
        ("uma", 10.0, 1.5, 1.0),
        # UMi, d = 50 m: 18/50 + exp(−50/36)·(1 − 0.36) = 0.36 + 0.249352·0.64 = 0.519585
        ("umi", 50.0, 1.5, 0.519585),
        # RMa, d = 510 m: exp(−500/1000) = 0.606531
        ("rma", 510.0, 1.5, 0.606531),
        # InH mixed office: d = 4 m: exp(−2.8/4.7) = 0.551152; d = 20 m: 0.32·exp(−13.5/32.6)
        ("inh", 4.0, 1.0, 0.551152),
        ("inh", 20.0, 1.0, 0.211497),
        ("inh", 1.0, 1.0, 1.0),
    ],
)
def test_los_probability_reference_values(
    scenario: str, d_2d: float, h_ut: float, expected: float
) -> None:
    got = los_probability(scenario, d_2d, h_ut_m=h_ut)  # type: ignore[arg-type]
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_shadow_fading_std() -> None:
    # TR 38.901 Table 7.4.1-1.
    los = np.array([True, False])
    np.testing.assert_allclose(shadow_fading_std_db("uma", los), [4.0, 6.0])
    np.testing.assert_allclose(shadow_fading_std_db("umi", los), [4.0, 7.82])
    np.testing.assert_allclose(shadow_fading_std_db("inh", los), [3.0, 8.03])
    np.testing.assert_allclose(
        shadow_fading_std_db("rma", [True, True, False], beyond_breakpoint=[False, True, True]),
        [4.0, 6.0, 8.0],
    )


def test_o2i_low_loss() -> None:
    # TR 38.901 Tables 7.4.3-1/-2 at 3.5 GHz: L_glass = 2.7 dB, L_concrete = 19 dB
    # PL_tw = 5 − 10 log10(0.3·10^−0.27 + 0.7·10^−1.9) = 5 − 10 log10(0.161110 + 0.008812)
    #       = 12.69750 dB; PL_in = 0.5·10 m = 5 dB.
    assert float(o2i_low_loss_db(FC, 10.0)) == pytest.approx(17.69750, abs=1e-4)
    draws = draw_o2i_low_loss_db("uma", FC, (20_000,), np.random.default_rng(0))
    # E[min(U1, U2)] on [0, 25] = 25/3 -> mean 12.6975 + 0.5·8.333 = 16.864 dB;
    # std of the mean < 5 dB / sqrt(20000) = 0.035 dB.
    assert draws.mean() == pytest.approx(16.864, abs=0.15)
    assert np.all(draw_o2i_low_loss_db("inh", FC, (5,), np.random.default_rng(0)) == 0.0)


def test_delay_spread_medians() -> None:
    # TR 38.901 Table 7.5-6: UMa NLOS μ_lgDS = −6.28 − 0.204 log10(max(fc, 6)) = −6.438743
    assert float(median_delay_spread_s("uma", False, fc_hz=FC)) == pytest.approx(3.64131e-7, 1e-4)
    # UMi LOS: −0.24 log10(1 + 3.5) − 7.14 = −7.296771
    assert float(median_delay_spread_s("umi", True, fc_hz=FC)) == pytest.approx(5.04927e-8, 1e-4)
    # O2I column for indoor UEs of outdoor scenarios: −6.62
    assert float(median_delay_spread_s("uma", True, fc_hz=FC, indoor=True)) == pytest.approx(
        10**-6.62
    )


def test_vectorized_broadcasting_and_monotonicity() -> None:
    d = np.linspace(20, 2000, 200)
    los = np.zeros((3, 1), dtype=bool)
    los[0] = True
    pl = pathloss_db("uma", d[None, :], fc_hz=FC, h_bs_m=25.0, h_ut_m=1.5, los=los)
    assert pl.shape == (3, 200)
    assert np.all(np.diff(pl, axis=1) > 0)
    assert np.all(pl[1] >= pl[0])  # NLOS = max(LOS, NLOS')
    # Below the minimum distance the loss is held at its 10 m value.
    assert float(pathloss_db("umi", 1.0, fc_hz=FC, h_bs_m=10, h_ut_m=1.5, los=True)) == float(
        pathloss_db("umi", 10.0, fc_hz=FC, h_bs_m=10, h_ut_m=1.5, los=True)
    )
    for s in SCENARIOS:
        p = los_probability(s, d)
        assert np.all((p >= 0) & (p <= 1))
        assert np.all(np.diff(p) <= 1e-12)


def test_unknown_scenario_is_rejected() -> None:
    with pytest.raises(ValueError, match="scenario must be one of"):
        pathloss_db("urban", 100.0, fc_hz=FC, h_bs_m=25, h_ut_m=1.5, los=True)  # type: ignore[arg-type]


# --- Cross-check against Sionna's TR 38.901 scenarios -------------------------------------
@pytest.mark.parametrize(
    ("scenario", "h_bs", "h_ut", "d_max"),
    [
        ("uma", 25.0, 1.5, 5000.0),
        ("umi", 10.0, 1.5, 5000.0),
        ("rma", 35.0, 1.5, 10000.0),
        ("inh", 3.0, 1.0, 150.0),
    ],
)
def test_matches_sionna(scenario: str, h_bs: float, h_ut: float, d_max: float) -> None:
    torch = pytest.importorskip("torch")
    tr38901 = pytest.importorskip("sionna.phy.channel.tr38901")

    fc = 3.5e9

    def array() -> object:
        return tr38901.PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=fc,
            precision="double",
        )

    common = {
        "ut_array": array(),
        "bs_array": array(),
        "direction": "downlink",
        "precision": "double",
    }
    if scenario == "uma":
        sc = tr38901.UMaScenario(carrier_frequency=fc, o2i_model="low", **common)
    elif scenario == "umi":
        sc = tr38901.UMiScenario(carrier_frequency=fc, o2i_model="low", **common)
    elif scenario == "rma":
        sc = tr38901.RMaScenario(carrier_frequency=fc, **common)
    else:
        sc = tr38901.InHScenario(carrier_frequency=fc, indoor_scenario="mixed", **common)
    d = np.geomspace(10.5, d_max * 0.99, 60)
    n = d.size
    ut = np.zeros((1, n, 3))
    ut[0, :, 0] = d
    ut[0, :, 2] = h_ut
    bs = np.zeros((1, 1, 3))
    bs[0, 0, 2] = h_bs

    def t(x: np.ndarray) -> object:
        return torch.tensor(x, dtype=torch.float64)

    indoor = torch.full((1, n), scenario == "inh", dtype=torch.bool)
    extra = {"in_car": torch.zeros(1, n, dtype=torch.bool)} if scenario == "rma" else {}
    for los in (True, False):
        sc.set_topology(
            t(ut),
            t(bs),
            t(np.zeros((1, n, 3))),
            t(np.zeros((1, 1, 3))),
            t(np.zeros((1, n, 3))),
            indoor,
            los,
            **extra,
        )
        ref = sc.basic_pathloss.numpy()[0, 0]
        ours = pathloss_db(scenario, d, fc_hz=fc, h_bs_m=h_bs, h_ut_m=h_ut, los=los)  # type: ignore[arg-type]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    ref_p = sc.los_probability.numpy()[0, 0]
    np.testing.assert_allclose(los_probability(scenario, d, h_ut_m=h_ut), ref_p, atol=1e-12)  # type: ignore[arg-type]
