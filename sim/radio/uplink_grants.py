"""Per-UE SR → grant → BSR state machine of the NR uplink, vectorized over [n_cell, n_ue].

The rules are those of :mod:`edgetwin.sim.radio.ul_grant` (its module docstring cites every
clause); this module runs them for many UEs at once inside the uplink slot process
(:mod:`edgetwin.sim.radio.uplink`), with no Python loop over UEs:

* a UE whose buffer holds new data that the gNB does not know of sends an SR on its next valid
  SR occasion (TS 38.213 §9.2.4, §11.1), or, with a configured grant, waits for the next
  configured occasion instead (TS 38.321 §5.8.2, §5.4.5);
* the gNB answers the SR with a fixed grant on the earliest PUSCH slot a DCI sent from
  SR + ``gnb_processing_slots`` can reach (smallest valid K2, TS 38.214 §6.1.2.1);
* that first PUSCH carries the BSR; once it is decoded (ACK, possibly after HARQ
  retransmissions) the UE is *scheduled*: the gNB knows its buffer and may grant it on every
  PUSCH slot it can still reach with a DCI sent from the BSR slot + ``gnb_processing_slots``
  (or on a configured occasion).

Simplification (documented in :class:`UplinkGrantState`): a scheduled UE's known buffer is
refreshed to its true new-data buffer after each of its PUSCHs (a padding / periodic BSR,
TS 38.321 §5.4.5, whose bits are not charged); the session ends when that report is empty.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from edgetwin.sim.radio.tdd import SlotPattern
from edgetwin.sim.radio.ul_grant import UlGrantConfig, check_ul_grant, resolved_k2_slots
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

__all__ = [
    "BSR_RETX",
    "CG_WAIT",
    "GRANT_WAIT",
    "IDLE",
    "SCHEDULED",
    "SR_WAIT",
    "UplinkGrantState",
    "fixed_grant_map",
    "next_true_offset",
]

#: Phases of a UE's uplink access (values of ``UplinkGrantState.phase``).
IDLE: Final = 0  # nothing the gNB must learn of
SR_WAIT: Final = 1  # new data, waiting for a valid SR occasion
GRANT_WAIT: Final = 2  # SR sent; waiting for the SR grant's PUSCH
BSR_RETX: Final = 3  # the TB carrying the BSR was NACKed; waiting for its retransmission
SCHEDULED: Final = 4  # the gNB knows the buffer (BSR decoded)
CG_WAIT: Final = 5  # new data, waiting for a configured-grant occasion (no SR)

_NEVER: Final = np.iinfo(np.int64).max // 4


def next_true_offset(mask: BoolArray) -> IntArray:
    """Per phase p of a periodic mask [n], the distance d ≥ 0 to the next phase holding True.

    Returns ``_NEVER`` for every phase when the mask has no True. O(n log n) (masks can span a
    hyper-period of thousands of slots).
    """
    n = mask.size
    pos = np.flatnonzero(mask)
    if pos.size == 0:
        return np.full(n, _NEVER, dtype=np.int64)
    p = np.arange(n)
    i = np.searchsorted(pos, p)  # first True at or after p, or pos.size (wrap)
    nxt = np.where(i < pos.size, pos[np.minimum(i, pos.size - 1)], pos[0] + n)
    return np.asarray(nxt - p, dtype=np.int64)


def _periodic(pattern: SlotPattern, period: int, offset: int, min_ul: int) -> BoolArray:
    """Valid periodic occasions over one hyper-period lcm(period, pattern period), [n_hyper].

    Slot k is one where (k − offset) mod period = 0 and it has ≥ ``min_ul`` UL symbols
    (TS 38.213 §9.2.4, §11.1).
    """
    n = math.lcm(period, pattern.period_slots)
    k = np.arange(n, dtype=np.int64)
    return np.asarray(((k - offset) % period == 0) & pattern.carries_ul(k, min_ul))


def fixed_grant_map(n_fixed_prb: IntArray, n_prb: int) -> tuple[IntArray, BoolArray]:
    """Place fixed-size grants (SR grants, configured grants) from the bottom of the band.

    UEs are served in index order; a grant that does not fit in what is left of the band is not
    given (the UE waits for the next PUSCH slot), nor is any grant after it in the same cell.

    Args:
        n_fixed_prb: PRBs each UE's fixed grant needs, [n_cell, n_ue] (0 = no fixed grant).
        n_prb: PRBs of the carrier.

    Returns:
        ``(alloc, granted)``: UE per PRB, int64 [n_cell, n_prb] (−1 = not taken), and the UEs
        whose grant was placed, bool [n_cell, n_ue].
    """
    m = np.asarray(n_fixed_prb, dtype=np.int64)
    end = np.cumsum(m, axis=1)  # [n_cell, n_ue] last PRB + 1 of each grant
    granted = (m > 0) & (end <= n_prb)
    alloc = np.full((m.shape[0], n_prb), -1, dtype=np.int64)
    c, u = np.nonzero(granted)
    if c.size:
        width = int(m[c, u].max())
        off = np.arange(width)[None, :]  # [1, width]
        start = (end[c, u] - m[c, u])[:, None]
        ok = off < m[c, u][:, None]  # [n_granted, width]
        rows = np.broadcast_to(c[:, None], ok.shape)[ok]
        cols = (start + off)[ok]
        alloc[rows, cols] = np.broadcast_to(u[:, None], ok.shape)[ok]
    return alloc, granted


class UplinkGrantState:
    """Access phase, gNB-known buffer and grant timing of every UE, arrays [n_cell, n_ue].

    Attributes:
        phase: One of ``IDLE``, ``SR_WAIT``, ``GRANT_WAIT``, ``BSR_RETX``, ``SCHEDULED``,
            ``CG_WAIT``, int64 [n_cell, n_ue].
        known_bits: Buffer the gNB knows from the UE's last BSR, bits [n_cell, n_ue].
        ready_slot: First slot a DCI may be sent from: after the SR (``GRANT_WAIT``) or the BSR
            (``SCHEDULED``), int64 [n_cell, n_ue].
        n_sr: SRs sent per UE, [n_cell, n_ue].
        n_bsr: BSR-carrying first PUSCHs decoded per UE, [n_cell, n_ue].

    Args:
        n_cell: Cells.
        n_ue: UEs per cell.
        pattern: Slot pattern of the carrier.
        cfg: SR / K2 / configured-grant timing (checked with :func:`check_ul_grant`).
    """

    def __init__(self, n_cell: int, n_ue: int, pattern: SlotPattern, cfg: UlGrantConfig):
        check_ul_grant(cfg, pattern, field="uplink.grant")
        self.cfg = cfg
        self.pattern = pattern
        per = pattern.period_slots
        self.pusch_phase: BoolArray = pattern.ul_symbols >= cfg.pusch_min_symbols  # [per]
        self._pusch_next = next_true_offset(self.pusch_phase)
        # Latest DCI reaching a PUSCH slot: slot − (smallest K2 landing there from a DL slot).
        k2 = np.asarray(resolved_k2_slots(cfg, pattern.mu), dtype=np.int64)
        phase = np.arange(per, dtype=np.int64)[None, :]
        ok = pattern.carries_dl((phase - k2[:, None]) % per) & self.pusch_phase[None, :]
        self._dci_lead = np.where(ok.any(axis=0), k2[np.argmax(ok, axis=0)], _NEVER)  # [per]
        self._sr = _periodic(pattern, cfg.sr_period_slots, cfg.sr_offset_slots,
                             cfg.sr_pucch_symbols)  # fmt: skip
        self._sr_next = next_true_offset(self._sr)
        p_cg = cfg.configured_grant_period_slots
        self.has_cg = p_cg is not None
        self._cg = (
            _periodic(pattern, p_cg, cfg.configured_grant_offset_slots, cfg.pusch_min_symbols)
            if p_cg is not None
            else np.zeros(1, dtype=bool)
        )
        self.phase: IntArray = np.zeros((n_cell, n_ue), dtype=np.int64)
        self.known_bits: FloatArray = np.zeros((n_cell, n_ue))
        self.ready_slot: IntArray = np.zeros((n_cell, n_ue), dtype=np.int64)
        self.n_sr: FloatArray = np.zeros((n_cell, n_ue))
        self.n_bsr: FloatArray = np.zeros((n_cell, n_ue))

    # --- slot calendar ----------------------------------------------------------------------
    def is_pusch_slot(self, k: int) -> bool:
        """Slot ``k`` has ≥ ``pusch_min_symbols`` UL symbols."""
        return bool(self.pusch_phase[k % self.pusch_phase.size])

    def latest_dci_slot(self, k: int) -> int:
        """Latest DL slot whose DCI can schedule PUSCH slot ``k`` (very negative if none)."""
        return k - int(self._dci_lead[k % self._dci_lead.size])

    def is_cg_occasion(self, k: int) -> bool:
        """Slot ``k`` is a configured-grant occasion (False without a configured grant)."""
        return self.has_cg and bool(self._cg[k % self._cg.size])

    def next_event_slot(self, k: int) -> int:
        """First slot ≥ ``k`` where something may happen.

        That is a PUSCH slot, or an SR occasion while a UE waits for one.
        """
        nxt = k + int(self._pusch_next[k % self._pusch_next.size])
        if (self.phase == SR_WAIT).any():
            nxt = min(nxt, k + int(self._sr_next[k % self._sr_next.size]))
        return nxt

    @property
    def idle(self) -> bool:
        """No UE is in an access procedure or scheduled."""
        return not self.phase.any()

    # --- transitions ------------------------------------------------------------------------
    def trigger(self, new_bits: FloatArray) -> None:
        """Idle UEs with new data start an access: SR, or wait for a configured occasion.

        Args:
            new_bits: True new-data buffer (not in HARQ), bits [n_cell, n_ue].
        """
        start = (self.phase == IDLE) & (new_bits > 0)
        self.phase[start] = CG_WAIT if self.has_cg else SR_WAIT

    def send_sr(self, k: int) -> None:
        """UEs waiting for an SR occasion send their SR if slot ``k`` is a valid one."""
        if not self._sr[k % self._sr.size]:
            return
        sr = self.phase == SR_WAIT
        self.phase[sr] = GRANT_WAIT
        self.ready_slot[sr] = k + self.cfg.gnb_processing_slots
        self.n_sr[sr] += 1.0

    def fixed_candidates(self, k: int) -> BoolArray:
        """UEs owed a fixed grant on PUSCH slot ``k``: SR answered, or configured occasion.

        Returns:
            bool [n_cell, n_ue].
        """
        out = (self.phase == GRANT_WAIT) & (self.ready_slot <= self.latest_dci_slot(k))
        if self.is_cg_occasion(k):
            out |= self.phase == CG_WAIT
        return np.asarray(out)

    def schedulable(self, k: int) -> BoolArray:
        """Scheduled UEs the gNB can still grant new data on PUSCH slot ``k`` (known buffer).

        Returns:
            bool [n_cell, n_ue].
        """
        reach = self.ready_slot <= self.latest_dci_slot(k)
        if self.is_cg_occasion(k):
            reach = np.ones_like(reach)
        return np.asarray((self.phase == SCHEDULED) & reach & (self.known_bits > 0))

    def after_transmit(
        self,
        k: int,
        tx: BoolArray,
        ack: BoolArray,
        kept: BoolArray,
        new_bits: FloatArray,
        retx_pending: BoolArray,
    ) -> None:
        """Advance the phases after the PUSCHs of slot ``k`` were decoded.

        Args:
            k: Slot index.
            tx: UEs that sent a PUSCH, bool [n_cell, n_ue].
            ack: ... and it was ACKed, bool [n_cell, n_ue].
            kept: ... NACKed and kept for a HARQ retransmission, bool [n_cell, n_ue].
            new_bits: True new-data buffer after the slot, bits [n_cell, n_ue].
            retx_pending: UE holds a NACKed TB, bool [n_cell, n_ue].
        """
        ph = self.phase
        bsr_tb = tx & ((ph == GRANT_WAIT) | (ph == CG_WAIT) | (ph == BSR_RETX))
        decoded = bsr_tb & ack
        ph[decoded] = SCHEDULED
        self.ready_slot[decoded] = k + self.cfg.gnb_processing_slots
        self.n_bsr[decoded] += 1.0
        ph[bsr_tb & kept] = BSR_RETX
        ph[bsr_tb & ~ack & ~kept] = IDLE  # BSR lost with its TB: start over (SR again)
        # Every PUSCH of a scheduled UE refreshes the gNB's view of its buffer.
        report = tx & (ph == SCHEDULED)
        self.known_bits[report] = new_bits[report]
        done = (ph == SCHEDULED) & (self.known_bits <= 0) & ~retx_pending
        ph[done] = IDLE
        self.known_bits[done] = 0.0
