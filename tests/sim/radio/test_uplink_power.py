"""PUSCH power control, TS 38.213 §7.1.1: open loop, Δ_TF, closed-loop TPC accumulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.radio.uplink_power import (
    TPC_ABSOLUTE_DB,
    TPC_ACCUMULATED_DB,
    PuschClosedLoop,
    UplinkPowerConfig,
    delta_tf_db,
    pusch_power_dbm,
)
from edgetwin.sim.units import dbm_to_w


def test_open_loop_hand_values_mu_above_zero() -> None:
    # TS 38.213 §7.1.1: P = min(P_CMAX, P0 + 10·log10(2^μ·M_RB) + α·PL + Δ_TF + f).
    # μ = 1, 10 PRBs: 10·log10(20) = 13.0103 dB; -90 + 13.0103 + 0.8·100 = 3.0103 dBm.
    p = pusch_power_dbm(100.0, 10, p0_dbm=-90.0, alpha=0.8, mu=1, p_cmax_dbm=23.0)
    assert float(p) == pytest.approx(-90 + 10 * math.log10(20) + 80, abs=1e-12)
    assert float(p) == pytest.approx(3.0103, abs=1e-4)
    # μ = 3, 1 PRB: 10·log10(8) = 9.0309; -80 + 9.0309 + 90 = 19.0309 dBm (below P_CMAX).
    p = pusch_power_dbm(90.0, 1, p0_dbm=-80.0, alpha=1.0, mu=3, p_cmax_dbm=23.0)
    assert float(p) == pytest.approx(19.0309, abs=1e-4)
    # Same at PL = 120 dB wants 49.03 dBm: clipped to P_CMAX = 23 dBm.
    p = pusch_power_dbm(120.0, 1, p0_dbm=-80.0, alpha=1.0, mu=3, p_cmax_dbm=23.0)
    assert float(p) == 23.0
    # Doubling the SCS at the same M_RB raises the power by 10·log10(2) = 3.0103 dB.
    p0 = pusch_power_dbm(80.0, 20, p0_dbm=-100.0, alpha=0.7, mu=0, p_cmax_dbm=40.0)
    p2 = pusch_power_dbm(80.0, 20, p0_dbm=-100.0, alpha=0.7, mu=2, p_cmax_dbm=40.0)
    assert float(p2 - p0) == pytest.approx(20 * math.log10(2), abs=1e-12)


def test_open_loop_adds_delta_tf_and_f_before_the_clip() -> None:
    base = pusch_power_dbm(100.0, 10, p0_dbm=-90.0, alpha=1.0, mu=0, p_cmax_dbm=23.0)
    p = pusch_power_dbm(
        100.0, 10, p0_dbm=-90.0, alpha=1.0, mu=0, p_cmax_dbm=23.0, delta_tf_db=2.0, f_db=-3.0
    )
    assert float(p - base) == pytest.approx(-1.0)
    # 20 dBm + 6 dB of closed loop is clipped at 23 dBm.
    p = pusch_power_dbm(100.0, 10, p0_dbm=-90.0, alpha=1.0, mu=0, p_cmax_dbm=23.0, f_db=6.0)
    assert float(p) == 23.0


def test_open_loop_broadcasts_and_zero_prb_is_no_transmission() -> None:
    pl = np.array([[80.0, 100.0, 120.0], [90.0, 110.0, 130.0]])  # [n_cell, n_ue]
    n_prb = np.array([[1, 0, 25], [4, 4, 4]])
    p = pusch_power_dbm(pl, n_prb, p0_dbm=-95.0, alpha=0.8, mu=1, p_cmax_dbm=np.array([23, 26, 23]))
    assert p.shape == (2, 3)
    assert p[0, 1] == -np.inf  # M_RB = 0
    assert dbm_to_w(p)[0, 1] == 0.0
    assert p[1, 1] == pytest.approx(-95 + 10 * math.log10(8) + 0.8 * 110)
    assert np.all(p <= np.array([23, 26, 23]))


def test_open_loop_bad_arguments() -> None:
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        pusch_power_dbm(100.0, 1, p0_dbm=-90, alpha=1.0, mu=4, p_cmax_dbm=23)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        pusch_power_dbm(100.0, 1, p0_dbm=-90, alpha=1.2, mu=0, p_cmax_dbm=23)


def test_against_sionna_open_loop_uplink_power_control() -> None:
    # Sionna covers μ = 0, Δ_TF = 0, f = 0: P = min(P0 + α·PL + 10·log10(#PRB), P_max).
    sys_mod = pytest.importorskip("sionna.sys")
    import torch

    rng = np.random.default_rng(3)
    n_ue = 400
    pl_db = rng.uniform(60.0, 150.0, n_ue)
    n_prb = rng.integers(0, 60, n_ue)
    alpha = rng.choice([0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], n_ue)
    p0 = rng.uniform(-110.0, -60.0, n_ue)
    p_max = rng.choice([20.0, 23.0, 26.0], n_ue)
    ref_w = sys_mod.open_loop_uplink_power_control(
        torch.as_tensor(10.0 ** (pl_db / 10.0), dtype=torch.float64),
        torch.as_tensor(12 * n_prb),  # Sionna counts subcarriers: #PRB = ceil(n_sc / 12)
        alpha=torch.as_tensor(alpha, dtype=torch.float64),
        p0_dbm=torch.as_tensor(p0, dtype=torch.float64),
        ut_max_power_dbm=torch.as_tensor(p_max, dtype=torch.float64),
        precision="double",
    ).numpy()
    ours_w = dbm_to_w(pusch_power_dbm(pl_db, n_prb, p0_dbm=p0, alpha=alpha, mu=0, p_cmax_dbm=p_max))
    assert (ref_w[n_prb == 0] == 0).all()
    assert (ours_w[n_prb == 0] == 0).all()
    assert (ref_w == dbm_to_w(p_max)).any()  # some UEs hit P_max, some do not
    assert (ref_w < dbm_to_w(p_max)).any()
    np.testing.assert_allclose(ours_w, ref_w, rtol=1e-10, atol=0.0)


def test_delta_tf() -> None:
    # TS 38.213 §7.1.1: Δ_TF = 10·log10((2^(BPRE·K_s) − 1)·β_offset), K_s = 1.25.
    # BPRE = 2: 10·log10(2^2.5 − 1) = 10·log10(4.65685) = 6.6809 dB.
    assert float(delta_tf_db(2.0)) == pytest.approx(6.6809, abs=1e-4)
    # BPRE·K_s = 1 → 2^1 − 1 = 1 → 0 dB; CSI-only β_offset = 2 adds 3.0103 dB.
    assert float(delta_tf_db(0.8)) == pytest.approx(0.0, abs=1e-12)
    assert float(delta_tf_db(0.8, beta_offset=2.0)) == pytest.approx(3.0103, abs=1e-4)
    # deltaMCS off (K_s = 0): 0 dB whatever BPRE.
    assert np.all(delta_tf_db(np.array([0.5, 3.0]), k_s=0.0) == 0.0)
    # Increasing in BPRE (more bits per RE need more power).
    d = delta_tf_db(np.linspace(0.1, 5.0, 50))
    assert np.all(np.diff(d) > 0)


def test_tpc_tables() -> None:
    # TS 38.213 Table 7.1.1-1, TPC command field 0, 1, 2, 3.
    assert TPC_ACCUMULATED_DB.tolist() == [-1.0, 0.0, 1.0, 3.0]
    assert TPC_ABSOLUTE_DB.tolist() == [-4.0, -1.0, 1.0, 4.0]


def test_closed_loop_accumulates_tpc_between_occasions() -> None:
    # TS 38.213 §7.1.1: f(i) = f(i − i0) + Σ δ over the commands since occasion i − i0.
    cl = PuschClosedLoop(3)
    ol = np.array([0.0, 0.0, 0.0])
    all_ue = np.ones(3, dtype=bool)
    cl.receive_tpc(np.array([3, 2, -1]))  # +3, +1, none
    cl.receive_tpc(np.array([3, 0, -1]))  # +3, -1, none → Σ = +6, 0, 0
    p = cl.transmit(all_ue, ol, p_cmax_dbm=23.0)
    assert cl.f_db.tolist() == [6.0, 0.0, 0.0]
    assert p.tolist() == [6.0, 0.0, 0.0]
    # UE 2 does not transmit: its command waits for its next occasion.
    cl.receive_tpc(np.array([0, 1, 2]))  # -1, 0, +1
    p = cl.transmit(np.array([True, True, False]), ol, p_cmax_dbm=23.0)
    assert cl.f_db.tolist() == [5.0, 0.0, 0.0]
    assert np.isnan(p[2])
    cl.transmit(all_ue, ol, p_cmax_dbm=23.0)
    assert cl.f_db.tolist() == [5.0, 0.0, 1.0]  # only UE 2's pending +1 applied


def test_closed_loop_holds_at_max_and_min_power() -> None:
    # TS 38.213 §7.1.1: at P_CMAX at occasion i − i0 and Σδ ≥ 0, f(i) = f(i − i0);
    # at minimum power and Σδ ≤ 0, likewise.
    cl = PuschClosedLoop(2)
    ol = np.array([22.0, -39.0])  # UE 0 near P_CMAX = 23, UE 1 near P_min = -40
    both = np.ones(2, dtype=bool)
    cl.receive_tpc(np.array([3, 0]))  # +3, -1
    p = cl.transmit(both, ol, p_cmax_dbm=23.0, p_min_dbm=-40.0)
    assert p.tolist() == [23.0, -40.0]  # both at a limit now
    assert cl.at_max.tolist() == [True, False]
    assert cl.at_min.tolist() == [False, True]
    cl.receive_tpc(np.array([3, 0]))  # pushing further: not accumulated
    cl.transmit(both, ol, p_cmax_dbm=23.0, p_min_dbm=-40.0)
    assert cl.f_db.tolist() == [3.0, -1.0]
    cl.receive_tpc(np.array([0, 3]))  # back off: accumulated
    p = cl.transmit(both, ol, p_cmax_dbm=23.0, p_min_dbm=-40.0)
    assert cl.f_db.tolist() == [2.0, 2.0]
    assert p.tolist() == [23.0, -37.0]


def test_closed_loop_absolute_mode_and_reset() -> None:
    # tpc-Accumulation provided: f(i) = δ of the command (absolute column of Table 7.1.1-1).
    cl = PuschClosedLoop(2, accumulation=False)
    both = np.ones(2, dtype=bool)
    cl.receive_tpc(np.array([0, 3]))
    cl.transmit(both, np.zeros(2), 23.0)
    assert cl.f_db.tolist() == [-4.0, 4.0]
    cl.receive_tpc(np.array([2, -1]))  # UE 1 gets no command: keeps its state
    cl.transmit(both, np.zeros(2), 23.0)
    assert cl.f_db.tolist() == [1.0, 4.0]
    # Reconfiguring P0 or α resets f (TS 38.213 §7.1.1).
    acc = PuschClosedLoop(2)
    acc.receive_tpc(np.array([3, 3]))
    acc.transmit(both, np.zeros(2), 23.0)
    acc.reset(np.array([True, False]))
    assert acc.f_db.tolist() == [0.0, 3.0]
    with pytest.raises(ValueError, match=r"0\.\.3"):
        acc.receive_tpc(np.array([4, 0]))


def test_power_config_errors_name_the_field() -> None:
    assert UplinkPowerConfig().alpha == 0.8
    with pytest.raises(ValidationError) as e:
        UplinkPowerConfig(alpha=0.3)  # type: ignore[arg-type]
    err = e.value.errors()[0]
    assert err["loc"] == ("alpha",)
    assert "0.4" in err["msg"]
    assert "\n" not in err["msg"]
    with pytest.raises(ValidationError, match="p_cmax_dbm"):
        UplinkPowerConfig(p_cmax_dbm=float("nan"))
    with pytest.raises(ValidationError, match="p0_dbm"):
        UplinkPowerConfig(p0_dbm=True)  # type: ignore[arg-type]
