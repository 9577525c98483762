"""Compiled per-slot kernels of the NR cell: eligibility/rate estimate and transmission.

Why compiled: a slot touches every UE's HARQ processes, every allocated PRB and the link tables;
written as numpy it costs ~130 array calls of ~1 µs each, which caps a cell at ~6,000
slots/s. The same arithmetic as loops compiled by numba (``cache=True``, so a process pays
the compilation once per machine) runs a 20-UE, 51-PRB slot in a few µs. Both kernels are
pure functions of their array arguments (outputs are written into arrays the caller owns);
the cell process in ``cell.py`` stays the only owner of state and phase order.

Formulas: EESM γ_eff = −β·ln(mean exp(−γ/β)) (Brueninger et al., VTC 2005), evaluated around
the row minimum so high SINRs do not underflow; TBLER lookups from ``LinkTables``; chase
combining adds effective SINRs of the transmissions of one TB; OLLA steps from ``olla.py``.
"""

from __future__ import annotations

import math

import numpy as np

from edgetwin.sim.jit import njit_cached
from edgetwin.sim.radio.olla import olla_update

# Packed HARQ fields (last axis of h_int / h_flt).
HI_READY, HI_TBS, HI_MCS, HI_NPRB, HI_NTX, HI_N = 0, 1, 2, 3, 4, 5
HF_BITS, HF_SINR_ACC, HF_N = 0, 1, 2
# Per-UE metric sums (last axis of m_ue).
M_BITS, M_TX, M_NACK, M_FIRST_TX, M_FIRST_NACK, M_MCS, M_SINR_DB, M_PRB, M_N = range(9)
# Per-slot, per-cell metric sums (last axis of m_slot).
S_BITS, S_TX, S_NACK, S_MCS, S_PRB, S_N = range(6)


@njit_cached(inline="always")
def _sinr_index(sinr_db: float, lo: float, inv_step: float, hi: int) -> int:
    x = (sinr_db - lo) * inv_step + 0.5
    if x < 0.0:
        return 0
    if x > hi:
        return hi
    return int(x)


@njit_cached()
def eligibility_and_rates(
    k: np.ndarray,
    h_int: np.ndarray,
    h_retx: np.ndarray,
    buffer_bits: np.ndarray,
    retx_bits: np.ndarray,
    report_db: np.ndarray,
    olla_offset_db: np.ndarray,
    se_at_target: np.ndarray,
    rate_per_se: float,
    sidx_lo: float,
    sidx_inv_step: float,
    sidx_max: int,
    has_data: np.ndarray,
    has_retx: np.ndarray,
    est_db: np.ndarray,
    rate_bps: np.ndarray,
) -> bool:
    """Eligible UEs and the per-PRB rate estimate the schedulers see.

    Args:
        k: Slot index of each cell, int64 [n_cell] (independent cells of a batch may be at
            different slots).
        h_int: Packed integer HARQ fields, [n_cell, n_ue, n_harq, HI_N].
        h_retx: Process holds a NACKed TB, [n_cell, n_ue, n_harq].
        buffer_bits: Undelivered bits per UE, [n_cell, n_ue].
        retx_bits: Bits held by NACKed processes, [n_cell, n_ue].
        report_db: CQI-reported SINR, [n_cell, n_ue, n_prb], dB.
        olla_offset_db: OLLA back-off, [n_cell, n_ue], dB.
        se_at_target: Spectral efficiency at the BLER target per SINR-grid index, bits/RE.
        rate_per_se: Bit/s a PRB carries per bit/RE.
        sidx_lo: First SINR-grid point, dB.
        sidx_inv_step: 1 / grid step, 1/dB.
        sidx_max: Last grid index.
        has_data: Output, eligible UEs, [n_cell, n_ue] bool.
        has_retx: Output, UE has a retransmission due, [n_cell, n_ue] bool.
        est_db: Output, reported SINR minus OLLA back-off, [n_cell, n_ue, n_prb], dB.
        rate_bps: Output, estimated rate per PRB, [n_cell, n_ue, n_prb], bit/s.

    Returns:
        Whether any UE is eligible.
    """
    n_cell, n_ue, n_harq = h_retx.shape
    n_prb = report_db.shape[2]
    any_data = False
    for c in range(n_cell):
        kc = k[c]
        for u in range(n_ue):
            retx = False
            free = False
            for h in range(n_harq):
                if h_int[c, u, h, HI_READY] <= kc:
                    if h_retx[c, u, h]:
                        retx = True
                    else:
                        free = True
            eligible = retx or (free and buffer_bits[c, u] - retx_bits[c, u] > 0.0)
            has_retx[c, u] = retx
            has_data[c, u] = eligible
            any_data = any_data or eligible
            off = olla_offset_db[c, u]
            for p in range(n_prb):
                e = report_db[c, u, p] - off
                est_db[c, u, p] = e
                rate_bps[c, u, p] = (
                    se_at_target[_sinr_index(e, sidx_lo, sidx_inv_step, sidx_max)] * rate_per_se
                )
    return any_data


@njit_cached()
def transmit(
    k: np.ndarray,
    alloc: np.ndarray,
    power_w: np.ndarray,
    gain: np.ndarray,
    gain_slot: np.ndarray,
    interference_w: np.ndarray,
    row_of: np.ndarray,
    noise_w: float,
    report_lin: np.ndarray,
    olla_offset_db: np.ndarray,
    last_mcs: np.ndarray,
    has_data: np.ndarray,
    has_retx: np.ndarray,
    buffer_bits: np.ndarray,
    retx_bits: np.ndarray,
    h_int: np.ndarray,
    h_flt: np.ndarray,
    h_retx: np.ndarray,
    harq_u: np.ndarray,
    best_mcs: np.ndarray,
    tbs_table: np.ndarray,
    tbler_table: np.ndarray,
    eesm_beta: np.ndarray,
    sidx_lo: float,
    sidx_inv_step: float,
    sidx_max: int,
    rtt_slots: int,
    max_transmissions: int,
    chase_combining: bool,
    olla_on: bool,
    olla_up_db: float,
    olla_down_db: float,
    olla_max_db: float,
    m_ue: np.ndarray,
    m_slot_k: np.ndarray,
    mcs_counts: np.ndarray,
    delivered: np.ndarray,
) -> int:
    """Transmit one slot to the scheduled UEs; update buffers, HARQ, OLLA and metrics in place.

    Args:
        k: Slot index of each cell, int64 [n_cell].
        alloc: UE per PRB, −1 = unused, [n_cell, n_prb].
        power_w: Transmit power per PRB, [n_cell, n_prb], W.
        gain: Serving-link power gain over several slots, [n_slot, n_cell, n_ue, n_prb], linear
            (a network passes its channel batch; a batch of independent cells its stacked
            batches, where the cells may be at different slots).
        gain_slot: Row of ``gain`` holding this slot, per cell, int64 [n_cell].
        interference_w: Inter-cell interference on the served UEs, [n_row, n_prb] W, or shape
            (0, 0) when there is one cell.
        row_of: Row of ``interference_w`` of each UE, [n_cell · n_ue] (−1 = not served).
        noise_w: Thermal noise per PRB, W.
        report_lin: CQI-reported SINR, [n_cell, n_ue, n_prb], linear.
        olla_offset_db: OLLA back-off, [n_cell, n_ue], dB (updated).
        last_mcs: MCS of each UE's last transmission, [n_cell, n_ue] (updated).
        has_data: Eligible UEs, [n_cell, n_ue].
        has_retx: UE has a retransmission due, [n_cell, n_ue].
        buffer_bits: Undelivered bits, [n_cell, n_ue] (updated).
        retx_bits: Bits held by NACKed processes, [n_cell, n_ue] (updated).
        h_int: Packed integer HARQ fields, [n_cell, n_ue, n_harq, HI_N] (updated).
        h_flt: Packed float HARQ fields, [n_cell, n_ue, n_harq, HF_N] (updated).
        h_retx: Process holds a NACKed TB, [n_cell, n_ue, n_harq] (updated).
        harq_u: Uniform draws for ACK/NACK, [n_cell, n_ue].
        best_mcs: Highest MCS meeting the target per (n_prb, SINR index).
        tbs_table: TBS per (n_prb, MCS), bits.
        tbler_table: TBLER per (n_prb, MCS, SINR index).
        eesm_beta: EESM β per MCS.
        sidx_lo: First SINR-grid point, dB.
        sidx_inv_step: 1 / grid step, 1/dB.
        sidx_max: Last grid index.
        rtt_slots: HARQ round-trip time, slots.
        max_transmissions: First transmission + retransmissions.
        chase_combining: Accumulate effective SINR over transmissions of a TB.
        olla_on: Apply OLLA on first-transmission feedback.
        olla_up_db: Back-off increase on NACK, dB.
        olla_down_db: Back-off decrease on ACK, dB.
        olla_max_db: Bound on |back-off|, dB.
        m_ue: Per-UE metric sums, [n_cell, n_ue, M_N] (updated).
        m_slot_k: This slot's per-cell metric sums, [n_cell, S_N] (written).
        mcs_counts: Transmissions per MCS (updated).
        delivered: Output, bits delivered per UE this slot, [n_cell, n_ue] (written).

    Returns:
        −1 on success, else the flat (cell·n_ue + ue) index of a UE given PRBs without data.
    """
    n_cell, n_prb = alloc.shape
    n_ue = buffer_bits.shape[1]
    n_harq = h_retx.shape[2]
    has_interf = interference_w.shape[0] > 0
    ln10_10 = math.log(10.0) / 10.0

    n_alloc = np.zeros((n_cell, n_ue), dtype=np.int64)
    # Linear OLLA back-off factor per UE, [n_cell, n_ue]
    olla_lin = np.exp(-olla_offset_db * ln10_10)
    min_est = np.full((n_cell, n_ue), np.inf)
    min_act = np.full((n_cell, n_ue), np.inf)
    est_prb = np.empty((n_cell, n_prb))
    act_prb = np.empty((n_cell, n_prb))
    delivered[:, :] = 0.0
    m_slot_k[:, :] = 0.0

    # --- per PRB: estimated (reported, backed-off) and actual SINR ------------------------
    for c in range(n_cell):
        for p in range(n_prb):
            u = alloc[c, p]
            if u < 0:
                continue
            if not has_data[c, u]:
                return c * n_ue + u
            n_alloc[c, u] += 1
            est = report_lin[c, u, p] * olla_lin[c, u]
            noise = noise_w
            if has_interf:
                noise += interference_w[row_of[c * n_ue + u], p]
            act = gain[gain_slot[c], c, u, p] * power_w[c, p] / noise
            est_prb[c, p] = est
            act_prb[c, p] = act
            min_est[c, u] = min(min_est[c, u], est)
            min_act[c, u] = min(min_act[c, u], act)

    # --- EESM of the estimate with the β of the UE's last MCS -----------------------------
    sum_est = np.zeros((n_cell, n_ue))
    for c in range(n_cell):
        for p in range(n_prb):
            u = alloc[c, p]
            if u >= 0:
                b = eesm_beta[last_mcs[c, u]]
                sum_est[c, u] += math.exp((min_est[c, u] - est_prb[c, p]) / b)

    # --- per UE: MCS (inner loop), HARQ process, TBS --------------------------------------
    mcs_of = np.zeros((n_cell, n_ue), dtype=np.int64)
    proc_of = np.zeros((n_cell, n_ue), dtype=np.int64)
    for c in range(n_cell):
        for u in range(n_ue):
            n = n_alloc[c, u]
            if n == 0:
                continue
            kc = k[c]
            if has_retx[c, u]:
                hp = 0
                for h in range(n_harq):
                    if h_retx[c, u, h] and h_int[c, u, h, HI_READY] <= kc:
                        hp = h
                        break
                mcs_of[c, u] = h_int[c, u, hp, HI_MCS]
            else:
                hp = 0
                for h in range(n_harq):
                    if (not h_retx[c, u, h]) and h_int[c, u, h, HI_READY] <= kc:
                        hp = h
                        break
                b = eesm_beta[last_mcs[c, u]]
                eff_est = min_est[c, u] - b * math.log(sum_est[c, u] / n)
                eff_db = 10.0 * math.log10(eff_est) if eff_est > 0.0 else -math.inf
                mcs_of[c, u] = best_mcs[n, _sinr_index(eff_db, sidx_lo, sidx_inv_step, sidx_max)]
            proc_of[c, u] = hp

    # --- EESM of the actual SINR with the transmitted MCS's β -----------------------------
    sum_act = np.zeros((n_cell, n_ue))
    for c in range(n_cell):
        for p in range(n_prb):
            u = alloc[c, p]
            if u >= 0:
                b = eesm_beta[mcs_of[c, u]]
                sum_act[c, u] += math.exp((min_act[c, u] - act_prb[c, p]) / b)

    # --- decode, HARQ, OLLA, metrics ------------------------------------------------------
    for c in range(n_cell):
        for u in range(n_ue):
            n = n_alloc[c, u]
            if n == 0:
                continue
            hp = proc_of[c, u]
            mcs = mcs_of[c, u]
            is_retx = has_retx[c, u]
            if is_retx:
                tb_prb = h_int[c, u, hp, HI_NPRB]
                tbs = h_int[c, u, hp, HI_TBS]
                tb_bits = h_flt[c, u, hp, HF_BITS]
                ntx = h_int[c, u, hp, HI_NTX] + 1
                acc0 = h_flt[c, u, hp, HF_SINR_ACC] if chase_combining else 0.0
            else:
                tb_prb = n
                tbs = tbs_table[n, mcs]
                tb_bits = min(float(tbs), buffer_bits[c, u] - retx_bits[c, u])
                ntx = 1
                acc0 = 0.0
            b = eesm_beta[mcs]
            eff = min_act[c, u] - b * math.log(sum_act[c, u] / n) + acc0
            eff_db = 10.0 * math.log10(eff) if eff > 0.0 else -math.inf
            tbler = tbler_table[tb_prb, mcs, _sinr_index(eff_db, sidx_lo, sidx_inv_step, sidx_max)]
            nack = harq_u[c, u] < tbler
            keep = nack and ntx < max_transmissions

            got = 0.0 if nack else tb_bits
            buffer_bits[c, u] -= got
            # A retransmitted TB leaves the retx pool; a kept NACK enters it; a TB dropped
            # after max transmissions stays in the buffer (RLC resends it as new data).
            if keep:
                retx_bits[c, u] += tb_bits
            if is_retx:
                retx_bits[c, u] -= tb_bits
            h_retx[c, u, hp] = keep
            h_int[c, u, hp, HI_READY] = k[c] + rtt_slots
            h_int[c, u, hp, HI_TBS] = tbs
            h_int[c, u, hp, HI_MCS] = mcs
            h_int[c, u, hp, HI_NPRB] = tb_prb
            h_int[c, u, hp, HI_NTX] = ntx if keep else 0
            h_flt[c, u, hp, HF_BITS] = tb_bits
            h_flt[c, u, hp, HF_SINR_ACC] = eff if keep else 0.0
            last_mcs[c, u] = mcs

            if olla_on and not is_retx:
                olla_offset_db[c, u] = olla_update(
                    olla_offset_db[c, u], nack, olla_up_db, olla_down_db, olla_max_db
                )

            delivered[c, u] = got
            m_ue[c, u, M_BITS] += got
            m_ue[c, u, M_TX] += 1.0
            m_ue[c, u, M_NACK] += nack
            m_ue[c, u, M_FIRST_TX] += not is_retx
            m_ue[c, u, M_FIRST_NACK] += nack and not is_retx
            m_ue[c, u, M_MCS] += mcs
            m_ue[c, u, M_SINR_DB] += eff_db
            m_ue[c, u, M_PRB] += n
            m_slot_k[c, S_BITS] += got
            m_slot_k[c, S_TX] += 1.0
            m_slot_k[c, S_NACK] += nack
            m_slot_k[c, S_MCS] += mcs
            m_slot_k[c, S_PRB] += n
            mcs_counts[mcs] += 1
    return -1
