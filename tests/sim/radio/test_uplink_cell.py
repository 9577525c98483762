"""Behaviour of the NR uplink cell process (SR/BSR/K2 timing, PUSCH power, interference)."""

import numpy as np
import pandas as pd
import pytest

from edgetwin.agents import make_policy
from edgetwin.sim.engine import Simulation
from edgetwin.sim.radio.cell import CellGroup
from edgetwin.sim.radio.channel import ChannelConfig
from edgetwin.sim.radio.config import CellConfig, HarqConfig, LinkAdaptationConfig
from edgetwin.sim.radio.geometry import TopologyConfig
from edgetwin.sim.radio.mobility import MobilityConfig
from edgetwin.sim.radio.tdd import TddConfig
from edgetwin.sim.radio.traffic import FullBufferTraffic, PoissonTraffic
from edgetwin.sim.radio.ul_grant import ul_delivery_timeline
from edgetwin.sim.radio.uplink import UplinkCellGroup, UplinkConfig
from edgetwin.sim.radio.uplink_power import UplinkPowerConfig
from edgetwin.sim.units import thermal_noise_w

STATIC = ChannelConfig(fading="none", shadowing=False, los="los", batch_slots=50)
ONE_CELL = TopologyConfig(ues_per_cell=1, cell_radius_m=100.0, min_distance_m=50.0)
SECTORS = TopologyConfig(
    kind="hex", n_sites=1, sectors_per_site=3, ues_per_cell=1, min_distance_m=50.0
)
# High received power per PRB: P0 = −60 dBm, full pathloss compensation (capped at 23 dBm).
LOUD = UplinkPowerConfig(p0_dbm=-60.0, alpha=1.0)


def build(
    *,
    seed=0,
    duration_s=0.1,
    topology=ONE_CELL,
    channel=STATIC,
    uplink=None,
    policy="ul_prb/pf",
    ul_mask=None,
):
    """A DDDSU μ=1 5 MHz carrier (11 PRBs) with an idle downlink and the uplink under test."""
    sim = Simulation(seed=seed, horizon_s=duration_s)
    cell = CellConfig(bandwidth_hz=5e6, numerology=1, tdd=TddConfig(pattern="DDDSU"))
    dl = CellGroup(
        sim,
        cell=cell,
        topology=topology,
        mobility=MobilityConfig(),
        channel=channel,
        traffic=FullBufferTraffic(),
        prb_policy=make_policy("prb/pf"),
        power_policy=make_policy("power/equal"),
        traffic_ue_mask=np.zeros((topology.n_sites * topology.sectors_per_site, 1), bool)
        if topology.ues_per_cell == 1
        else None,
    )
    ul = UplinkCellGroup(
        sim,
        dl=dl,
        config=uplink or UplinkConfig(),
        ul_prb_policy=make_policy(policy) if policy else None,
        traffic_ue_mask=ul_mask,
    )
    sim.add(dl)
    sim.add(ul)
    return sim, dl, ul


def enqueue_at(sim, ul, t_s, cell, ue, bits):
    def proc():
        yield sim.env.timeout(t_s)
        ul.enqueue(cell, ue, bits)

    sim.env.process(proc())


def record(ul):
    """Per transmitted slot: (slot, delivered bits [C, U], PRB map, power dBm [C, U], SINR dB)."""
    log = []
    ul.slot_listeners.append(
        lambda k: log.append(
            (
                k,
                ul.delivered_bits.copy(),
                ul.last_alloc.copy(),
                ul.last_power_dbm.copy(),
                ul.last_sinr_db.copy(),
            )
        )
    )
    return log


# ----------------------------------------------------------------------------------------
# 1. SR → grant → BSR → grants timing on a static channel
# ----------------------------------------------------------------------------------------
def test_single_message_delivered_at_the_slot_the_timeline_predicts():
    # Hand-worked example (DDDSU, μ = 1, 0.5 ms slots; pattern phases D D D S U):
    # * enqueue at 10.5 slots → the message lands in slot 11;
    # * SR occasions: (k − 4) mod 10 = 0 on a slot with UL symbols (TS 38.213 §9.2.4) → 14 (U);
    # * gNB processing 1 slot → first DCI in DL slot 15; K2 ∈ {1, 2, 3, 4} (TS 38.214 Table
    #   6.1.2.1.1-2/-4, j = 1 at μ = 1): the smallest K2 landing on a U slot is 4 → PUSCH 19;
    # * TBS at MCS 28 of Table 5.1.3.1-1 (Qm = 6, R = 948/1024) on 11 PRBs, 14 symbols, 12 DM-RS
    #   REs (TS 38.214 §6.1.4.2 → §5.1.3.2): N_RE = min(156, 12·14 − 12)·11 = 1716,
    #   N_info = 1716·0.92578·6 = 9531.8 > 3824 → n = ⌊log2(9507.8)⌋ − 5 = 8,
    #   N'_info = 256·round(9507.8 / 256) = 9472, C = ⌈9496 / 8424⌉ = 2,
    #   TBS = 8·2·⌈9496 / 16⌉ − 24 = 9480 bits;
    # * PUSCH 19 carries the 16-bit BSR (TS 38.321 §6.1.3.1) and 9464 message bits; the BSR is
    #   known from slot 20: DCI 20 + K2 4 → PUSCH 24 (9480 bits); the last 1056 bits go in 29.
    bits = 20_000
    cfg = UplinkConfig(
        power=LOUD, sr_grant_prb=11, cap_grant_to_buffer=False, cap_grant_to_power_headroom=False
    )
    sim, _, ul = build(uplink=cfg)
    log = record(ul)
    enqueue_at(sim, ul, 10.5 * ul.slot_s, 0, 0, bits)
    sim.run()

    tbs = int(ul.tables.tbs_bits[ul.n_prb, 28])
    assert (ul.n_prb, tbs) == (11, 9480)
    tl = ul_delivery_timeline(bits, 11, tbs, ul.pattern, cfg.grant)
    assert tl.sr_slot == 14
    assert tl.pusch_slots.tolist() == [19, 24, 29]
    assert tl.message_bits.tolist() == [9464, 9480, 1056]

    slots = [k for k, *_ in log]
    delivered = np.array([d[0, 0] for _, d, *_ in log])
    assert slots == tl.pusch_slots.tolist()
    assert np.diff(delivered, prepend=0.0).tolist() == tl.message_bits.tolist()
    assert delivered[-1] == bits  # complete at tl.delivery_slot, not before
    ue = sim.results().tables["ul_ue"].iloc[0]
    assert ue["mean_mcs"] == 28
    assert ue["n_nack"] == 0
    assert ue["n_sr"] == 1
    assert ul.grants.idle
    assert ul.buffer_bits.sum() == 0


def test_message_fitting_the_sr_grant_cancels_the_bsr():
    # 4 PRBs at MCS 28 carry more than 2000 bits: all go in PUSCH 19 (TS 38.321 §5.4.5).
    cfg = UplinkConfig(power=LOUD, sr_grant_prb=4)
    sim, _, ul = build(uplink=cfg)
    log = record(ul)
    enqueue_at(sim, ul, 10.5 * ul.slot_s, 0, 0, 2000)
    sim.run()
    assert [(k, d[0, 0]) for k, d, *_ in log] == [(19, 2000.0)]
    assert (log[0][2] >= 0).sum() == 4


def test_grant_is_capped_to_the_known_buffer():
    # After the BSR, PF would give every PRB; the last grant needs only a few.
    cfg = UplinkConfig(power=LOUD, sr_grant_prb=2, cap_grant_to_power_headroom=False)
    sim, _, ul = build(uplink=cfg)
    log = record(ul)
    enqueue_at(sim, ul, 0.0, 0, 0, 12_000)
    sim.run()
    n_prb = [(a >= 0).sum() for _, _, a, *_ in log]
    assert n_prb[0] == 2
    assert n_prb[1] == ul.n_prb
    assert n_prb[-1] < ul.n_prb
    assert log[-1][1][0, 0] == 12_000


# ----------------------------------------------------------------------------------------
# 2. Open-loop PUSCH power, TS 38.213 §7.1.1
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("p0_dbm", "alpha"), [(-90.0, 0.8), (-60.0, 1.0)])
def test_pusch_power_is_the_open_loop_formula(p0_dbm, alpha):
    cfg = UplinkConfig(power=UplinkPowerConfig(p0_dbm=p0_dbm, alpha=alpha), sr_grant_prb=3)
    sim, dl, ul = build(uplink=cfg)
    log = record(ul)
    enqueue_at(sim, ul, 0.0, 0, 0, 30_000)
    sim.run()
    ls = dl.channel_at(0)[0].large_scale_gain[0, 0, 0]  # static channel: one value
    pl_db = -10.0 * np.log10(ls)
    assert len(log) >= 2
    for _, _, alloc, p_dbm, _ in log:
        m_rb = (alloc[0] == 0).sum()
        want = min(23.0, p0_dbm + 10 * np.log10(2**1 * m_rb) + alpha * pl_db)
        assert p_dbm[0, 0] == pytest.approx(want, abs=1e-9)
    res = sim.results().tables["ul_ue"].iloc[0]
    assert res["energy_j"] > 0


@pytest.mark.parametrize("headroom_cap", [True, False])
def test_a_power_limited_ue_gets_only_the_prbs_its_headroom_fills(headroom_cap):
    # TS 38.213 §7.1.1: with P0 + 10·log10(2^μ·M) + α·PL > P_CMAX the power per PRB falls
    # below target; the gNB (told by the power headroom report, TS 38.321 §5.4.6) grants at
    # most M_max = ⌊10^((P_CMAX − P0 − α·PL)/10) / 2^μ⌋ PRBs to dynamic grants.
    power = UplinkPowerConfig(p0_dbm=-60.0, alpha=1.0)
    cfg = UplinkConfig(power=power, sr_grant_prb=1, cap_grant_to_power_headroom=headroom_cap)
    sim, dl, ul = build(uplink=cfg)
    log = record(ul)
    enqueue_at(sim, ul, 0.0, 0, 0, 60_000)
    sim.run()
    pl_db = -10.0 * np.log10(dl.channel_at(0)[0].large_scale_gain[0, 0, 0])
    m_max = max(1, int(np.floor(10 ** ((23.0 + 60.0 - pl_db) / 10.0) / 2)))
    assert m_max < ul.n_prb  # the case is power limited
    dynamic = [(alloc[0] == 0).sum() for _, _, alloc, _, _ in log[1:]]  # after the SR grant
    assert dynamic
    if headroom_cap:
        assert max(dynamic) <= m_max
    else:
        assert max(dynamic) > m_max


# ----------------------------------------------------------------------------------------
# 3. Inter-cell interference at the gNBs
# ----------------------------------------------------------------------------------------
def _first_slot_sinr(active_cells):
    cfg = UplinkConfig(power=UplinkPowerConfig(p0_dbm=-80.0, alpha=1.0), sr_grant_prb=11)
    sim, dl, ul = build(topology=SECTORS, uplink=cfg)
    log = record(ul)
    for c in active_cells:
        enqueue_at(sim, ul, 0.0, c, 0, 5_000)
    sim.run()
    return log[0], dl, ul


def test_idle_neighbours_leave_signal_over_noise_and_busy_ones_interfere():
    (k, _, alloc, p_dbm, sinr_alone), dl, ul = _first_slot_sinr([0])
    batch, j = dl.channel_at(k)
    noise = thermal_noise_w(ul.prb_hz, 5.0)
    p_prb_w = 10 ** ((p_dbm[0, 0] - 30) / 10) / (alloc[0] >= 0).sum()
    s_over_n = 10 * np.log10(batch.gain[j][0, 0] * p_prb_w / noise)  # [n_prb]
    assert np.array_equal(alloc[1:], np.full_like(alloc[1:], -1))
    np.testing.assert_allclose(sinr_alone[0], s_over_n, rtol=0, atol=1e-12)

    (_, _, alloc3, p3_dbm, sinr_all), _, _ = _first_slot_sinr([0, 1, 2])
    assert (alloc3 >= 0).all()
    assert (sinr_all[0] < sinr_alone[0]).all()
    # Σ over the other cells' UEs of P_prb · large-scale gain(UE of c' → BS 0).
    ls = batch.large_scale_gain
    p3_prb = 10 ** ((p3_dbm[:, 0] - 30) / 10) / ul.n_prb
    interf = sum(p3_prb[c] * ls[c, 0, 0] for c in (1, 2))
    want = 10 * np.log10(batch.gain[j][0, 0] * p3_prb[0] / (noise + interf))
    np.testing.assert_allclose(sinr_all[0], want, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------
# 4. Conservation, determinism, idle skipping
# ----------------------------------------------------------------------------------------
def _bursty_run(seed=3, idle_skip=True):
    topo = TopologyConfig(
        kind="hex", n_sites=1, sectors_per_site=3, ues_per_cell=4, min_distance_m=35.0
    )
    cfg = UplinkConfig(
        idle_skip=idle_skip,
        harq=HarqConfig(max_transmissions=2, rtt_slots=6),
        link_adaptation=LinkAdaptationConfig(bler_target=0.3),
    )
    sim, _, ul = build(
        seed=seed, duration_s=0.6, topology=topo, channel=ChannelConfig(batch_slots=50),
        uplink=cfg,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    n = 40
    times = np.sort(rng.uniform(0.0, 0.15, n))
    cells, ues = rng.integers(0, 3, n), rng.integers(0, 4, n)
    bits = rng.integers(500, 20_000, n).astype(float)
    for t, c, u, b in zip(times, cells, ues, bits, strict=True):
        enqueue_at(sim, ul, float(t), int(c), int(u), float(b))
    enqueued = np.zeros((3, 4))
    np.add.at(enqueued, (cells, ues), bits)
    checks = []
    ul.slot_listeners.append(lambda k: checks.append(ul.delivered_bits.copy()))
    sim.run()
    return sim.results(), ul, enqueued, checks


def test_all_bits_delivered_and_never_more_than_enqueued():
    res, ul, enqueued, checks = _bursty_run()
    assert len(checks) > 20
    for d in checks:  # cumulative ACKed bits never exceed what was enqueued
        assert (d <= enqueued + 1e-9).all()
    np.testing.assert_allclose(ul.delivered_bits, enqueued)
    assert ul.buffer_bits.sum() == 0
    assert ul.grants.idle
    ue = res.tables["ul_ue"]
    assert ue["n_nack"].sum() > 0  # HARQ really was exercised
    assert ue["delivered_bits"].sum() == pytest.approx(
        res.tables["ul_slot"]["delivered_bits"].sum()
    )


def test_same_seed_identical_and_idle_skip_exact():
    r1, u1, *_ = _bursty_run(idle_skip=True)
    r2, _, *_ = _bursty_run(idle_skip=True)
    r0, u0, *_ = _bursty_run(idle_skip=False)
    assert u1.n_loop_iterations < 0.5 * u0.n_loop_iterations
    for name in ("ul_ue", "ul_slot"):
        pd.testing.assert_frame_equal(r1.tables[name], r2.tables[name])
        pd.testing.assert_frame_equal(r1.tables[name], r0.tables[name])
    keys = [k for k in r1.summary if k.startswith("ul_")]
    assert {k: r1.summary[k] for k in keys} == {k: r0.summary[k] for k in keys}


def _background_run(idle_skip=True, with_traffic=True):
    """Two UEs: UE 0 sends one 40 kbit message, UE 1 carries Poisson background packets."""
    topo = TopologyConfig(ues_per_cell=2, cell_radius_m=150.0, min_distance_m=50.0)
    traffic = PoissonTraffic(packet_rate_hz=400.0, packet_bits=8000) if with_traffic else None
    cfg = UplinkConfig(idle_skip=idle_skip, traffic=traffic)
    sim, _, ul = build(duration_s=0.3, topology=topo, uplink=cfg, ul_mask=np.array([False, True]))
    enqueue_at(sim, ul, 0.01, 0, 0, 40_000)
    done = []
    ul.slot_listeners.append(
        lambda k: done.append(k) if not done and ul.delivered_bits[0, 0] >= 40_000 else None
    )
    sim.run()
    return sim.results(), ul, done[0]


def test_uplink_background_traffic_stays_on_its_ues_and_delays_the_message():
    res, ul, k_with = _background_run()
    _, _, k_alone = _background_run(with_traffic=False)
    assert ul.delivered_bits[0, 0] == pytest.approx(40_000)  # no background bits on UE 0
    assert ul.delivered_bits[0, 1] > 40 * 8000  # the background UE is served too
    assert k_with > k_alone  # the message shares the PRBs with the background
    res0, *_ = _background_run(idle_skip=False)
    pd.testing.assert_frame_equal(res.tables["ul_ue"], res0.tables["ul_ue"])


# ----------------------------------------------------------------------------------------
# 5. The ul_prb decision point driven from outside
# ----------------------------------------------------------------------------------------
def test_detached_ul_prb_decision_point_is_driven_externally():
    bits = 20_000
    sim, _, ul = build(
        uplink=UplinkConfig(power=LOUD, sr_grant_prb=11, cap_grant_to_power_headroom=False),
        policy=None,
    )
    enqueue_at(sim, ul, 10.5 * ul.slot_s, 0, 0, bits)
    seen = []
    while (req := sim.run_until_decision("ul_prb")) is not None:
        obs = req.obs
        seen.append((obs["slot"], float(obs["buffer_bits"][0, 0])))
        assert obs["rate_bps"].shape == (1, 1, ul.n_prb)
        assert obs["has_data"][0, 0]
        req.reply.succeed(np.zeros((1, ul.n_prb), dtype=np.int64))  # every PRB to UE 0
    # The SR grant (slot 19) needs no decision; the gNB-known buffer is the BSR: 20000 − 9464.
    assert seen[0] == (24, bits - 9464.0)
    assert [s for s, _ in seen] == [24, 29]
    assert ul.delivered_bits[0, 0] == bits


def test_config_rejects_inapplicable_fields():
    with pytest.raises(ValueError, match="cqi_period_slots"):
        UplinkConfig(link_adaptation=LinkAdaptationConfig(cqi_period_slots=2))
    with pytest.raises(ValueError, match="pusch_min_symbols"):
        UplinkConfig(n_symbols=14, grant={"pusch_min_symbols": 12})
