"""Behaviour of the NR cell process (link adaptation, HARQ, idle skipping, decision seams)."""

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
from edgetwin.sim.radio.traffic import FullBufferTraffic, PoissonTraffic


def build(
    *,
    seed=0,
    duration_s=0.2,
    cell=None,
    topology=None,
    mobility=None,
    channel=None,
    traffic=None,
    prb="prb/pf",
    power="power/equal",
):
    sim = Simulation(seed=seed, horizon_s=duration_s)
    cells = CellGroup(
        sim,
        cell=cell or CellConfig(bandwidth_hz=10e6, numerology=1),
        topology=topology or TopologyConfig(ues_per_cell=6, cell_radius_m=1000.0),
        mobility=mobility or MobilityConfig(),
        channel=channel or ChannelConfig(batch_slots=50),
        traffic=traffic or FullBufferTraffic(),
        prb_policy=make_policy(prb) if prb else None,
        power_policy=make_policy(power) if power else None,
    )
    sim.add(cells)
    return sim, cells


def run(**kw):
    sim, cells = build(**kw)
    sim.run()
    return sim.results(), cells


def test_full_buffer_run_delivers_and_reports():
    res, cells = run()
    s = res.summary
    assert s["cell_throughput_mbps"] > 0
    assert 0 < s["jain_index"] <= 1
    assert 0 <= s["prb_utilization"] <= 1
    ue = res.tables["ue"]
    assert len(ue) == cells.n_cell * cells.n_ue
    # Delivered bits are consistent between the per-UE and per-slot tables.
    assert ue["delivered_bits"].sum() == pytest.approx(res.tables["slot"]["delivered_bits"].sum())
    assert res.tables["mcs"]["count"].sum() == ue["n_tx"].sum()


def test_olla_long_run_bler_within_one_percent_of_target():
    # Static UEs, no fast fading: the only BLER control is OLLA, whose stationary point
    # (P(NACK)·Δ_up = P(ACK)·Δ_down with Δ_down = Δ_up·t/(1−t)) is BLER = t. It can act only on
    # UEs whose MCS is not pinned at an edge of the MCS table, so the statement is about them.
    target = 0.1
    cell = CellConfig(
        bandwidth_hz=10e6,
        numerology=1,
        max_power_dbm=30.0,
        link_adaptation=LinkAdaptationConfig(bler_target=target, olla_step_up_db=0.5),
        harq=HarqConfig(max_transmissions=1),
    )
    res, _ = run(
        duration_s=4.0,
        cell=cell,
        topology=TopologyConfig(ues_per_cell=8, cell_radius_m=1000.0, min_distance_m=300.0),
        channel=ChannelConfig(fading="none", batch_slots=200),
        prb="prb/rr",
    )
    ue = res.tables["ue"]
    adaptable = ue[(ue["mean_mcs"] > 0.5) & (ue["mean_mcs"] < 27.5)]
    assert len(adaptable) >= 4
    n_first = adaptable["n_tx"].sum()
    assert n_first > 8000  # enough first transmissions for a ±1 % statement (σ ≈ 0.3 %)
    assert abs(adaptable["n_nack"].sum() / n_first - target) < 0.01


def test_chase_combining_retransmissions_succeed_more_often():
    cell = CellConfig(
        bandwidth_hz=10e6,
        numerology=1,
        harq=HarqConfig(max_transmissions=4, rtt_slots=4),
        link_adaptation=LinkAdaptationConfig(bler_target=0.3),
    )
    sim, cells = build(duration_s=1.0, cell=cell)
    sim.run()
    first_nack = cells.m_first_nack.sum() / cells.m_first_tx.sum()
    retx = cells.m_tx.sum() - cells.m_first_tx.sum()
    retx_nack = (cells.m_nack.sum() - cells.m_first_nack.sum()) / retx
    assert retx > 0
    assert retx_nack < first_nack


def test_no_retransmissions_with_a_single_transmission():
    cell = CellConfig(bandwidth_hz=10e6, harq=HarqConfig(max_transmissions=1))
    _, cells = run(cell=cell)
    assert cells.m_tx.sum() == cells.m_first_tx.sum()
    assert cells.h_retx.sum() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_idle_skipping_gives_identical_results(seed):
    traffic = PoissonTraffic(packet_rate_hz=20.0, packet_bits=20_000)
    out = {}
    for skip in (True, False):
        cell = CellConfig(bandwidth_hz=10e6, idle_skip=skip)
        res, cells = run(
            seed=seed,
            duration_s=1.0,
            cell=cell,
            traffic=traffic,
            channel=ChannelConfig(batch_slots=64),
        )
        out[skip] = (res, cells)
    (r1, c1), (r0, c0) = out[True], out[False]
    # The skipping run really skipped, and the catch-up is exact.
    assert c1.n_loop_iterations < 0.7 * c0.n_loop_iterations
    assert c1.n_active_slots == c0.n_active_slots
    for name in ("ue", "slot", "mcs"):
        pd.testing.assert_frame_equal(r1.tables[name], r0.tables[name])
    s1 = {k: v for k, v in r1.summary.items() if k != "wall_s"}
    s0 = {k: v for k, v in r0.summary.items() if k != "wall_s"}
    assert s1 == s0


def test_bursty_buffers_limit_what_ues_get():
    # Offered load 6 UEs × 50 pkt/s × 12 kbit = 3.6 Mbit/s, far below capacity: all of it is
    # delivered (minus what is still queued at the end) and no more.
    traffic = PoissonTraffic(packet_rate_hz=50.0, packet_bits=12_000)
    res, cells = run(duration_s=1.0, traffic=traffic)
    delivered = res.tables["ue"]["delivered_bits"].sum()
    offered = delivered + cells.buffer_bits.sum()
    assert offered == pytest.approx(6 * 50 * 12_000, rel=0.25)
    assert cells.buffer_bits.sum() < 0.1 * offered


class GreedyToFirst:
    def reset(self, *, seed=None):
        pass

    def act(self, obs):
        return np.zeros(obs["rate_bps"].shape[::2], dtype=np.int64)  # every PRB to UE 0


def test_scheduling_a_ue_without_data_is_rejected():
    traffic = PoissonTraffic(packet_rate_hz=5.0, packet_bits=1000)
    sim, cells = build(traffic=traffic, duration_s=1.0)
    cells.prb_dp.attach(GreedyToFirst())
    with pytest.raises(ValueError, match="which has no data"):
        sim.run()


def test_external_prb_decisions_through_the_decision_point():
    sim, cells = build(prb=None, duration_s=0.01)
    req = sim.run_until_decision("prb")
    n = 0
    while req is not None:
        obs = req.obs
        assert obs["rate_bps"].shape == (1, cells.n_ue, cells.n_prb)
        assert obs["has_data"].all()
        req.reply.succeed(np.full((1, cells.n_prb), n % cells.n_ue, dtype=np.int64))
        n += 1
        req = sim.run_until_decision("prb")
    assert n == cells.n_slot_total
    assert (cells.m_tx > 0).all()


def test_inter_cell_interference_lowers_sinr():
    topo = TopologyConfig(kind="hex", n_sites=7, sectors_per_site=3, ues_per_cell=4)
    full, _ = run(topology=topo, duration_s=0.05)
    quiet, _ = run(
        topology=topo,
        duration_s=0.05,
        traffic=PoissonTraffic(packet_rate_hz=2.0, packet_bits=8_000),
    )
    # Fully loaded neighbours interfere more than nearly silent ones.
    assert full.tables["ue"]["mean_sinr_db"].median() < quiet.tables["ue"]["mean_sinr_db"].median()


def test_raytraced_cell_runs_with_ues_moved_outdoors(tmp_path):
    pytest.importorskip("drjit")
    from edgetwin.sim.radio.channel_raytraced import indoor_mask, rt_status

    ok, why = rt_status()
    if not ok:
        pytest.skip(f"ray tracing unavailable: {why}")
    res, cells = run(
        duration_s=0.02,
        topology=TopologyConfig(ues_per_cell=4, cell_radius_m=50.0, min_distance_m=5.0),
        mobility=MobilityConfig(kind="static"),
        channel=ChannelConfig(backend="raytraced", batch_slots=20, cache_dir=str(tmp_path)),
    )
    scene = cells.channel._scene  # the scene the channel traced
    assert not indoor_mask(scene, cells.layout.ue_position_m).any()
    assert res.summary["cell_throughput_mbps"] > 0


def test_idle_skipping_is_exact_with_inter_cell_interference():
    # Interference and CSI use the transmit-power history; skipped slots must count as silent.
    topo = TopologyConfig(kind="hex", n_sites=7, sectors_per_site=3, ues_per_cell=3)
    traffic = PoissonTraffic(packet_rate_hz=4.0, packet_bits=40_000)
    out = {}
    for skip in (True, False):
        cell = CellConfig(bandwidth_hz=10e6, idle_skip=skip)
        out[skip] = run(seed=3, duration_s=0.4, cell=cell, topology=topo, traffic=traffic)
    (r1, c1), (r0, c0) = out[True], out[False]
    assert c1.n_loop_iterations < c0.n_loop_iterations
    for name in ("ue", "slot", "mcs"):
        pd.testing.assert_frame_equal(r1.tables[name], r0.tables[name])


def test_the_ue_table_reports_each_ues_geometry_sinr_served_or_not():
    # TR 38.901 §7.8 geometry SINR: serving gain × power per PRB over noise plus every other
    # cell's gain × the same power; independent of scheduling (a starved UE has one too).
    res, cells = run(
        duration_s=0.01,
        topology=TopologyConfig(kind="hex", n_sites=1, sectors_per_site=3, ues_per_cell=3),
        prb="prb/maxrate",
    )
    ue = res.tables["ue"]
    ls = cells._batch.large_scale_gain
    p = float(cells.max_power_w[0]) / cells.n_prb
    c, u = ue["cell"].to_numpy(), ue["ue"].to_numpy()
    own = ls[c, u, c]
    want = 10 * np.log10(own * p / (cells.noise_w + (ls[c, u].sum(axis=1) - own) * p))
    np.testing.assert_allclose(ue["geometry_sinr_db"], want, rtol=1e-12)
    assert ue["geometry_sinr_db"].notna().all()
    assert ue["mean_sinr_db"].isna().any()  # max-rate starves some UEs: no served SINR
