"""The NR downlink as a message hop: delivery time by hand from TBS and the TDD pattern."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.agents import make_policy
from edgetwin.sim.engine import Simulation
from edgetwin.sim.net.message import Message
from edgetwin.sim.net.radio_hop import RadioHop
from edgetwin.sim.radio.cell import CellGroup
from edgetwin.sim.radio.channel import ChannelConfig
from edgetwin.sim.radio.config import CellConfig, LinkAdaptationConfig
from edgetwin.sim.radio.geometry import TopologyConfig
from edgetwin.sim.radio.mobility import MobilityConfig
from edgetwin.sim.radio.traffic import FullBufferTraffic, PoissonTraffic

SLOT_S = 0.5e-3  # μ = 1 (TS 38.211 §4.3.2)


def _cells(sim: Simulation, n_ue: int = 1, traffic=None, mask=None) -> CellGroup:
    cells = CellGroup(
        sim,
        cell=CellConfig(
            bandwidth_hz=20e6,
            numerology=1,
            tdd={"pattern": "DDDSU", "special_symbols": "10:2:2"},
            link_adaptation=LinkAdaptationConfig(cqi_quantization="none", olla=False),
        ),
        # one UE 40 m from the gNB: SINR far above the top MCS's threshold, BLER ~ 0
        topology=TopologyConfig(
            ues_per_cell=n_ue, cell_radius_m=45.0, min_distance_m=40.0, indoor_fraction=0.0
        ),
        mobility=MobilityConfig(kind="static"),
        channel=ChannelConfig(fading="none", shadowing=False, los="los", batch_slots=50),
        traffic=traffic or PoissonTraffic(packet_rate_hz=1e-9),
        prb_policy=make_policy("prb/rr"),
        power_policy=make_policy("power/equal"),
        traffic_ue_mask=mask,
    )
    sim.add(cells)
    return cells


def test_tbs_of_the_top_mcs_by_hand() -> None:
    # TS 38.214 §5.1.3.2, 51 PRBs, 13 symbols, 12 DM-RS REs/PRB, MCS 28 of Table 5.1.3.1-1
    # (Qm 6, R 948/1024), 1 layer: N'_RE = 12·13 − 12 = 144; N_RE = 144·51 = 7344;
    # N_info = 7344·0.92578·6 = 40794.6 > 3824; n = ⌊log2(N_info − 24)⌋ − 5 = 10;
    # N'_info = max(3840, 2^10·round((N_info − 24)/2^10)) = 40960; R > 1/4:
    # C = ⌈(40960 + 24)/8424⌉ = 5; TBS = 8·5·⌈(40960 + 24)/40⌉ − 24 = 40976.
    sim = Simulation(seed=0, horizon_s=0.01)
    cells = _cells(sim)
    assert cells.n_prb == 51
    assert int(cells.tables.tbs_bits[51, 28]) == 40976


def test_a_message_is_delivered_at_the_end_of_the_slot_of_its_last_bit() -> None:
    # DDDSU with a 10:2:2 special slot: PDSCH (13 symbols) fits in slots 0, 1, 2, 5, 6, 7, ...
    # (the S slot's 10 DL symbols are fewer than the 13 of a PDSCH). 3 full TBs + 1 bit need
    # the DL slots 0, 1, 2 and 5: delivered at the end of slot 5 = 6 slots = 3 ms.
    sim = Simulation(seed=0, horizon_s=0.02)
    cells = _cells(sim)
    hop = RadioHop(sim.env, "nr_dl", cells, {"ue": (0, 0)}, "down")
    tbs = int(cells.tables.tbs_bits[51, 28])
    got: list[float] = []

    def send():
        msg = Message(3 * tbs + 1, "server", "ue", 0.0)
        yield hop.send(msg)
        got.append(sim.env.now)
        assert msg.hops[0].t_delivered_s == pytest.approx(6 * SLOT_S)

    sim.env.process(send())
    sim.run()
    assert got == [pytest.approx(6 * SLOT_S)]
    assert cells.m_tx[0, 0] == 4
    assert cells.m_nack[0, 0] == 0
    assert hop.in_flight == 0


def test_messages_of_one_ue_are_delivered_in_order_and_the_second_waits() -> None:
    sim = Simulation(seed=0, horizon_s=0.02)
    cells = _cells(sim)
    hop = RadioHop(sim.env, "nr_dl", cells, {"ue": (0, 0)}, "down")
    tbs = int(cells.tables.tbs_bits[51, 28])
    times: dict[str, float] = {}

    def one(tag: str, bits: int):
        yield hop.send(Message(bits, "server", "ue", 0.0))
        times[tag] = sim.env.now

    sim.env.process(one("a", 2 * tbs))
    sim.env.process(one("b", 10))
    sim.run()
    # a fills slots 0 and 1; b's 10 bits ride slot 2 (FIFO: it is not served first)
    assert times == {"a": pytest.approx(2 * SLOT_S), "b": pytest.approx(3 * SLOT_S)}


def test_background_traffic_stays_off_the_llm_ues_and_competes_for_prbs() -> None:
    # Two UEs: UE 0 carries only messages, UE 1 a full buffer. Round robin halves the PRBs, so
    # the same message takes longer than alone, and UE 0 gets no background bits.
    def deliver(background: bool) -> float:
        sim = Simulation(seed=0, horizon_s=0.05)
        mask = np.array([False, True]) if background else np.array([False, False])
        cells = _cells(sim, n_ue=2, traffic=FullBufferTraffic(), mask=mask)
        hop = RadioHop(sim.env, "nr_dl", cells, {"ue": (0, 0)}, "down")
        done: list[float] = []

        def send():
            yield hop.send(Message(200_000, "server", "ue", 0.0))
            done.append(sim.env.now)

        sim.env.process(send())
        sim.run()
        assert cells.delivered_bits[0, 0] == pytest.approx(200_000)
        return done[0]

    assert deliver(background=True) > 1.5 * deliver(background=False)


def test_an_unknown_ue_is_refused_with_the_attached_count() -> None:
    sim = Simulation(seed=0, horizon_s=0.01)
    hop = RadioHop(sim.env, "nr_dl", _cells(sim), {"ue": (0, 0)}, "down")
    with pytest.raises(ValueError, match="not attached to this radio"):
        hop.send(Message(8, "server", "someone", 0.0))


def test_a_prompt_up_the_nr_uplink_arrives_at_the_end_of_its_last_pusch_slot() -> None:
    # The uplink hop inherits the uplink process's timeline (tests/sim/radio/test_uplink_cell.py
    # works it by hand: SR occasion, DCI, K2, PUSCH slots, TBS): the message is delivered at the
    # end of the PUSCH slot that carries its last bit, ul_delivery_timeline(...).delivery_slot.
    from edgetwin.sim.radio.config import UplinkConfig
    from edgetwin.sim.radio.ul_grant import ul_delivery_timeline
    from edgetwin.sim.radio.uplink import UplinkCellGroup
    from edgetwin.sim.radio.uplink_power import UplinkPowerConfig

    sim = Simulation(seed=0, horizon_s=0.05)
    cells = _cells(sim)
    cfg = UplinkConfig(
        power=UplinkPowerConfig(p0_dbm=-60.0, alpha=1.0),
        sr_grant_prb=51,
        cap_grant_to_buffer=False,
        cap_grant_to_power_headroom=False,
    )
    ul = UplinkCellGroup(sim, dl=cells, config=cfg, ul_prb_policy=make_policy("ul_prb/pf"))
    sim.add(ul)
    hop = RadioHop(sim.env, "nr_ul", ul, {"ue": (0, 0)}, "up")
    bits = 100_000
    got: list[float] = []

    def send():
        yield sim.env.timeout(3.2 * SLOT_S)  # lands in slot 4
        yield hop.send(Message(bits, "ue", "server", sim.env.now))
        got.append(sim.env.now)

    sim.env.process(send())
    sim.run()
    ue = sim.results().tables["ul_ue"].iloc[0]
    assert (ue["n_nack"], ue["mean_mcs"]) == (0, 28)  # clean first transmissions at MCS 28
    tbs = int(ul.tables.tbs_bits[51, 28])
    tl = ul_delivery_timeline(bits, 4, tbs, ul.pattern, cfg.grant)
    assert got == [pytest.approx((tl.delivery_slot + 1) * SLOT_S)]
