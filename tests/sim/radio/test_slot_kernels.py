"""The compiled transmit kernel computes what the pure link functions define.

EESM (Brueninghaus et al., PIMRC 2005; `link.eesm_effective_sinr_db`), inner-loop MCS as the
highest MCS meeting the target at the EESM SINR (`LinkTables.best_mcs`), TBS per TS 38.214
§5.1.3.2 (`LinkTables.tbs_bits`), HARQ bookkeeping and chase combining.
"""

import numpy as np
import pytest

from edgetwin.sim.radio import slot_kernels as sk
from edgetwin.sim.radio.bler import build_link_tables
from edgetwin.sim.radio.link import eesm_effective_sinr_db

P, H = 6, 2


@pytest.fixture(scope="module")
def tables():
    return build_link_tables(n_prb_max=P, n_symbols=13)


def _state(sinr_lin, last_mcs=10):
    return {
        "alloc": np.zeros((1, P), dtype=np.int64),
        "power_w": np.ones((1, P)),
        "gain": sinr_lin.reshape(1, 1, P).copy(),  # noise 1 W, power 1 W → SINR = gain
        "report_lin": sinr_lin.reshape(1, 1, P).copy(),
        "olla": np.zeros((1, 1)),
        "last_mcs": np.full((1, 1), last_mcs, dtype=np.int64),
        "buffer": np.full((1, 1), 1e9),
        "retx_bits": np.zeros((1, 1)),
        "h_int": np.zeros((1, 1, H, sk.HI_N), dtype=np.int64),
        "h_flt": np.zeros((1, 1, H, sk.HF_N)),
        "h_retx": np.zeros((1, 1, H), dtype=bool),
        "m_ue": np.zeros((1, 1, sk.M_N)),
        "m_slot": np.zeros((1, sk.S_N)),
        "mcs_counts": np.zeros(29, dtype=np.int64),
        "delivered": np.zeros((1, 1)),
    }


def _transmit(t, s, k, u, has_retx=False, chase=True):
    return sk.transmit(
        np.array([k]), s["alloc"], s["power_w"], s["gain"][None], np.zeros(1, np.int64),
        np.zeros((0, 0)), np.zeros(0, dtype=np.int64),
        1.0, s["report_lin"], s["olla"], s["last_mcs"], np.ones((1, 1), dtype=bool),
        np.full((1, 1), has_retx), s["buffer"], s["retx_bits"], s["h_int"], s["h_flt"],
        s["h_retx"], np.full((1, 1), u), t.best_mcs, t.tbs_bits, t.tbler, t.eesm_beta,
        t.sinr_min_db, 1.0 / t.step_db, t.n_sinr - 1, 4, 4, chase, True, 0.5, 0.5 / 9, 20.0,
        s["m_ue"], s["m_slot"], s["mcs_counts"], s["delivered"],
    )  # fmt: skip


def test_first_transmission_matches_the_link_functions(tables):
    t = tables
    sinr_db = np.array([6.0, 9.0, 12.0, 4.0, 10.0, 8.0])
    s = _state(10 ** (sinr_db / 10))
    assert _transmit(t, s, k=0, u=0.999999) == -1  # ACK unless TBLER ≈ 1
    eff_est_db = eesm_effective_sinr_db(sinr_db, t.eesm_beta[10])
    mcs = int(t.best_mcs[P, t.sinr_index(np.array(eff_est_db))])
    assert s["last_mcs"][0, 0] == mcs
    eff_db = eesm_effective_sinr_db(sinr_db, t.eesm_beta[mcs])
    assert s["m_ue"][0, 0, sk.M_SINR_DB] == pytest.approx(eff_db, abs=1e-9)
    assert s["delivered"][0, 0] == t.tbs_bits[P, mcs]
    assert s["buffer"][0, 0] == 1e9 - t.tbs_bits[P, mcs]
    assert s["h_int"][0, 0, 0, sk.HI_READY] == 4  # busy for the HARQ RTT
    assert not s["h_retx"].any()


def test_nack_keeps_the_tb_and_the_retransmission_chase_combines(tables):
    t = tables
    sinr_db = np.full(P, 3.0)
    s = _state(10 ** (sinr_db / 10))
    _transmit(t, s, k=0, u=0.0)  # u = 0 < TBLER: NACK
    mcs = s["last_mcs"][0, 0]
    tbs = t.tbs_bits[P, mcs]
    assert s["delivered"][0, 0] == 0.0
    assert s["h_retx"][0, 0, 0]
    assert s["retx_bits"][0, 0] == tbs
    eff1 = 10 ** (eesm_effective_sinr_db(sinr_db, t.eesm_beta[mcs]) / 10)
    assert s["h_flt"][0, 0, 0, sk.HF_SINR_ACC] == pytest.approx(eff1)
    # The retransmission (due at the RTT) reuses MCS and TB; its SINR adds to the first one.
    _transmit(t, s, k=4, u=0.999999, has_retx=True)
    assert s["m_ue"][0, 0, sk.M_SINR_DB] == pytest.approx(
        10 * np.log10(eff1) + 10 * np.log10(2 * eff1), abs=1e-9
    )
    assert s["delivered"][0, 0] == tbs
    assert s["retx_bits"][0, 0] == 0.0
    assert s["m_ue"][0, 0, sk.M_FIRST_TX] == 1
    assert s["m_ue"][0, 0, sk.M_TX] == 2


def test_prbs_to_a_ue_without_data_are_reported(tables):
    s = _state(np.ones(P))
    bad = sk.transmit(
        np.array([0]), s["alloc"], s["power_w"], s["gain"][None], np.zeros(1, np.int64),
        np.zeros((0, 0)), np.zeros(0, dtype=np.int64),
        1.0, s["report_lin"], s["olla"], s["last_mcs"], np.zeros((1, 1), dtype=bool),
        np.zeros((1, 1), dtype=bool), s["buffer"], s["retx_bits"], s["h_int"], s["h_flt"],
        s["h_retx"], np.zeros((1, 1)), tables.best_mcs, tables.tbs_bits, tables.tbler,
        tables.eesm_beta, tables.sinr_min_db, 1.0 / tables.step_db, tables.n_sinr - 1, 4, 4,
        True, True, 0.5, 0.05, 20.0, s["m_ue"], s["m_slot"], s["mcs_counts"], s["delivered"],
    )  # fmt: skip
    assert bad == 0
