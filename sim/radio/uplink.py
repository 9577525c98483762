"""The NR uplink (PUSCH) of the cells a :class:`~edgetwin.sim.radio.cell.CellGroup` simulates.

One SimPy process ticks the uplink of all cells. It shares the downlink's layout, mobility,
channel batches (TDD reciprocity: the serving gains and large-scale gains of
``dl.channel_at(k)``), slot pattern and numerology, and reuses the compiled slot kernels
(:mod:`edgetwin.sim.radio.slot_kernels`) for EESM, MCS, TBS, BLER, HARQ and OLLA.

Phase order inside slot ``k`` (fixed here, never left to SimPy's event ordering):

1. messages enqueued before slot ``k`` started enter the UE buffers (an :meth:`enqueue` at
   time t lands in slot ⌊t / slot⌋ + 1, the first slot starting after it, whatever the order
   of same-time events);
2. access (:mod:`edgetwin.sim.radio.uplink_grants`): idle UEs with new data wait for an SR
   occasion (or a configured grant); SRs are sent on valid occasions;
3. on a PUSCH slot: fixed grants (the PUSCH answering an SR, configured grants) take
   ``sr_grant_prb`` / ``configured_grant_prb`` PRBs from the bottom of the band; the
   ``ul_prb`` decision point maps the other PRBs to the UEs whose BSR the gNB has decoded
   (and that it can still reach with a DCI) or that have a HARQ retransmission due;
4. each UE's PUSCH power, TS 38.213 §7.1.1, over its allocated PRBs; inter-cell interference
   at each gNB from the other cells' scheduled UEs (large-scale gains);
5. transmission (compiled kernel); the first PUSCH of an access carries the BSR
   (``grant.bsr_bits``) unless the whole buffer fits in its TB (TS 38.321 §5.4.5);
6. access phases, the gNB-known buffer (BSR) and metrics.

Idle slots are skipped exactly: the process sleeps to the next PUSCH slot or SR occasion
while a UE is in an access or has data, and until an :meth:`enqueue` otherwise.

Simplifications (each documented where it is made): closed-loop power control is off
(f = 0) and Δ_TF = 0 (``deltaMCS`` not supported); the link tables use Sionna's PDSCH BLER
curves (same LDPC codes, AWGN); the link-adaptation estimate is an SRS-like measurement of
the serving gain over noise plus the interference of the last PUSCH slot before it, scaled by
the power per PRB the UE will use (the gNB knows it from the granted M_RB and the UE's power
headroom report); a scheduled UE's known buffer is refreshed after each of its PUSCHs; the
HARQ ``rtt_slots`` is the time from a PUSCH to the earliest PUSCH slot of its retransmission.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy

from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.summary import RunResult, jain_index
from edgetwin.sim.radio import slot_kernels as sk
from edgetwin.sim.radio.bler import LinkTables, build_link_tables
from edgetwin.sim.radio.cell import active_slot_table
from edgetwin.sim.radio.config import UplinkConfig
from edgetwin.sim.radio.olla import olla_step_down_db
from edgetwin.sim.radio.traffic import TrafficSource
from edgetwin.sim.radio.ul_grant import resolved_k2_slots
from edgetwin.sim.radio.uplink_grants import (
    BSR_RETX,
    GRANT_WAIT,
    SCHEDULED,
    UplinkGrantState,
    fixed_grant_map,
)
from edgetwin.sim.radio.uplink_power import pusch_power_dbm
from edgetwin.sim.types import BoolArray, FloatArray, IntArray
from edgetwin.sim.units import thermal_noise_w

if TYPE_CHECKING:
    from edgetwin.agents.protocol import Policy
    from edgetwin.sim.engine import Simulation
    from edgetwin.sim.radio.cell import CellGroup

__all__ = ["UplinkCellGroup", "UplinkConfig"]

_NO_INTERFERENCE = np.zeros((0, 0))
_NO_ROWS = np.zeros(0, dtype=np.int64)
_SYMBOLS_PER_SLOT = 14


class UplinkCellGroup:
    """PUSCH of all cells of a :class:`CellGroup`, ticked by one SimPy process.

    Observation of the ``ul_prb`` decision point (dict; leading cell axis): ``slot`` (int),
    ``rate_bps`` [n_cell, n_ue, n_prb] (estimated rate on each PRB at the UE's power per PRB
    for an equal share of the band; 0 on PRBs reserved for fixed grants), ``last_rate_bps``
    and ``avg_rate_bps`` [n_cell, n_ue], ``buffer_bits`` [n_cell, n_ue] (gNB-known: the last
    BSR, not the true buffer), ``has_data`` [n_cell, n_ue] (UEs the policy may schedule),
    ``ue_mask``, ``sinr_db`` [n_cell, n_ue, n_prb] (estimate minus OLLA offset),
    ``olla_offset_db``, ``mcs``, ``n_tx``, ``n_nack`` [n_cell, n_ue] (as the DL ``prb``
    observation), ``reserved_prb`` bool [n_cell, n_prb] (taken by SR / configured grants).
    Action: int64 [n_cell, n_prb], UE per PRB, −1 unused. The choice on reserved PRBs is
    replaced by the fixed grants; with ``cap_grant_to_buffer`` each UE keeps only its lowest
    PRBs up to ⌈known bits / estimated bits per PRB⌉ + 1 (its retransmission's PRB count when
    one is due), the rest stay unused.

    Args:
        sim: The simulation.
        dl: The downlink cell group whose layout, channel, pattern and carrier are shared.
        config: Uplink configuration.
        ul_prb_policy: Inline UL scheduler; ``None`` leaves the decision point detached.
        name: Component name.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        dl: CellGroup,
        config: UplinkConfig,
        ul_prb_policy: Policy[Any, Any] | None,
        traffic_ue_mask: BoolArray | None = None,
        name: str = "uplink",
    ) -> None:
        self.name = name
        self.config = config
        self.dl = dl
        self.env = sim.env
        self.horizon_s = sim.horizon_s
        la = config.link_adaptation
        self.mu = int(dl.config.numerology)
        self.slot_s = dl.slot_s
        self.clock = dl.clock
        self.n_slot_total = dl.n_slot_total
        self.n_cell, self.n_ue, self.n_prb = dl.n_cell, dl.n_ue, dl.n_prb
        self.prb_hz = dl.prb_hz
        self.pattern = dl.pattern
        # Share of slots that can carry a PUSCH (time-average rate of a UE, for estimates).
        self._pusch_fraction = float(
            np.mean(self.pattern.ul_symbols >= config.grant.pusch_min_symbols)
        )
        self.noise_w = thermal_noise_w(self.prb_hz, config.gnb_noise_figure_db)
        # Other users' uplink traffic (Poisson packets into the masked UEs' buffers), drawn
        # from its own stream so that it is the same for every policy.
        self.traffic: TrafficSource | None = None
        if config.traffic is not None:
            self.traffic = TrafficSource(
                config.traffic, self.n_cell, self.n_ue, self.slot_s, dl.batch_slots,
                sim.streams.get("traffic.ul"), ue_mask=traffic_ue_mask,
            )  # fmt: skip
        self.grants = UplinkGrantState(self.n_cell, self.n_ue, self.pattern, config.grant)
        self._lookback = config.srs_delay_slots + config.srs_period_slots
        batch_slots = dl.batch_slots
        if batch_slots < self._lookback:
            raise ValueError(
                f"channel.batch_slots ({batch_slots}) must be >= uplink.srs_delay_slots + "
                f"srs_period_slots ({self._lookback})"
            )
        #: Called as ``listener(k)`` after every slot that transmitted.
        self.slot_listeners: list[Callable[[int], None]] = []

        self.tables: LinkTables = build_link_tables(
            n_prb_max=self.n_prb,
            n_symbols=config.n_symbols,
            mcs_table=config.mcs_table,
            dmrs_re_per_prb=config.dmrs_re_per_prb,
            bler_target=la.bler_target,
        )
        self._sidx_lo, self._sidx_inv_step, self._sidx_max = self.tables.kernel_sinr_grid
        re_per_prb = min(156, 12 * config.n_symbols - config.dmrs_re_per_prb)  # TS 38.214 §6.1.4.2
        self._rate_per_se = re_per_prb / self.slot_s
        self._olla_down = olla_step_down_db(la.olla_step_up_db, la.bler_target)
        self._pusch_s = self.slot_s * config.n_symbols / _SYMBOLS_PER_SLOT
        self._harq_rng = sim.streams.get("ul_harq")
        self._harq_batch = max(batch_slots or 100, 1)

        self.ul_dp: DecisionPoint[dict[str, Any], IntArray] = DecisionPoint(
            self.env, "ul_prb", ul_prb_policy
        )
        sim.add_decision_point("ul_prb", self.ul_dp)
        self._init_state()

    # ------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        H = self.config.harq.n_processes
        self.buffer_bits: FloatArray = np.zeros((C, U))  # true UE buffers
        self.retx_bits: FloatArray = np.zeros((C, U))
        self.olla_offset_db: FloatArray = np.zeros((C, U))
        self.avg_rate_bps: FloatArray = np.zeros((C, U))
        self.last_rate_bps: FloatArray = np.zeros((C, U))
        self.ue_mask: BoolArray = np.ones((C, U), dtype=bool)
        self.h_int: IntArray = np.zeros((C, U, H, sk.HI_N), dtype=np.int64)
        self.h_flt: FloatArray = np.zeros((C, U, H, sk.HF_N))
        self.h_retx: BoolArray = np.zeros((C, U, H), dtype=bool)
        self.last_mcs: IntArray = np.zeros((C, U), dtype=np.int64)
        self._delivered: FloatArray = np.zeros((C, U))
        self._pending: deque[tuple[int, int, int, float]] = deque()  # (slot, cell, ue, bits)
        self._wakeup: simpy.Event = self.env.event()
        self._harq_u: FloatArray = np.zeros((0, C, U))
        self._harq_first = 0
        # SRS report: serving gain over noise + interference, 1/W, [C, U, P].
        self._report_slot = -1
        self._report_per_w: FloatArray = np.zeros((C, U, P))
        # Interference at each gNB in recent PUSCH slots (slot, [C, P] W), for the SRS report.
        self._interf_hist: deque[tuple[int, FloatArray]] = deque(maxlen=self._lookback + 2)
        self._last_active = -1
        #: Actual SINR per PRB of the last transmitted slot, dB [n_cell, n_prb] (NaN unused).
        self.last_sinr_db: FloatArray = np.full((C, P), np.nan)
        #: PUSCH power of each UE in the last transmitted slot, dBm [n_cell, n_ue] (−inf: none).
        self.last_power_dbm: FloatArray = np.full((C, U), -np.inf)
        #: PRB map of the last transmitted slot, UE per PRB [n_cell, n_prb] (−1 unused).
        self.last_alloc: IntArray = np.full((C, P), -1, dtype=np.int64)
        self.m_ue: FloatArray = np.zeros((C, U, sk.M_N))
        self._n_tx_view = self.m_ue[..., sk.M_TX]
        self._n_nack_view = self.m_ue[..., sk.M_NACK]
        self.m_power_dbm: FloatArray = np.zeros((C, U))  # Σ PUSCH power over transmissions
        self.m_energy_j: FloatArray = np.zeros((C, U))
        self.m_slot: FloatArray = np.zeros((self.n_slot_total, C, sk.S_N))
        self.m_slot_power_w: FloatArray = np.zeros((self.n_slot_total, C))
        self.mcs_counts: IntArray = np.zeros(self.tables.n_mcs, dtype=np.int64)
        self.n_active_slots = 0
        self.n_loop_iterations = 0

    # ------------------------------------------------------------------------------------
    # Component protocol
    # ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the slot process."""
        self.env.process(self._run())

    def finalize(self, now_s: float) -> None:
        """Nothing to close: per-slot metrics are written as slots run."""

    def enqueue(self, cell: int, ue: int, bits: float) -> None:
        """Put ``bits`` in a UE's uplink buffer now; they count from the next slot start.

        The UE then sends an SR on its next valid occasion (or uses a configured grant) unless
        the gNB already serves it. Wakes an idle uplink process.
        """
        if not bits > 0:
            raise ValueError(f"bits must be > 0 (got {bits!r})")
        self._pending.append((self.clock.slot_at(self.env.now) + 1, cell, ue, float(bits)))
        if not self._wakeup.triggered:
            self._wakeup.succeed()

    @property
    def delivered_bits(self) -> FloatArray:
        """Cumulative bits ACKed at the gNB per UE, [n_cell, n_ue] (a view: do not modify)."""
        return self.m_ue[..., sk.M_BITS]

    def rate_estimate_bps(self, cell: int, ue: int) -> float:
        """Uplink rate a UE could expect now, bit/s (for offloading estimates only).

        Its latest SRS report at the power of an equal share of the band with the other UEs of
        its cell that have data (TS 38.213 §7.1.1), OLLA back-off applied, at the BLER target,
        averaged over the TDD pattern's PUSCH slots.
        """
        k = self.clock.next_slot(self.env.now)
        if k >= self.n_slot_total:
            return 0.0
        self._srs(k)
        others = int(np.count_nonzero(self.buffer_bits[cell])) - int(self.buffer_bits[cell, ue] > 0)
        m_share = int(np.ceil(self.n_prb / (1 + others)))
        batch, _ = self.dl.channel_at(k)
        pl_db = self._pathloss_db(batch.large_scale_gain)[cell, ue]
        # A power-limited UE does better on fewer PRBs (P_CMAX spread thinner over more): the
        # best of M = 1, 2, 4, ... up to its share, each on its M best PRBs.
        m = np.unique(np.minimum(2 ** np.arange(10), m_share))  # [n_m]
        p_prb_w = 10.0 ** ((self._power_dbm(np.full(m.size, pl_db), m) - 30.0) / 10.0) / m
        with np.errstate(divide="ignore"):
            est_db = 10.0 * np.log10(self._report_per_w[cell, ue][None, :] * p_prb_w[:, None])
        est_db -= self.olla_offset_db[cell, ue]  # [n_m, n_prb]
        se = -np.sort(-self.tables.se_at_target[self.tables.sinr_index(est_db)], axis=1)
        best = max(float(se[i, : m[i]].sum()) for i in range(m.size))
        return best * self._rate_per_se * self._pusch_fraction

    def access_delay_s(self) -> float:
        """Expected wait from new data to its first PUSCH (s), for offloading estimates only.

        Half an SR period, the gNB's processing, the smallest K2, and half a TDD period for the
        next PUSCH slot (TS 38.213 §9.2.4, TS 38.214 §6.1.2.1).
        """
        g = self.config.grant
        k2 = min(resolved_k2_slots(g, self.mu))
        slots = g.sr_period_slots / 2 + g.gnb_processing_slots + k2 + self.pattern.period_slots / 2
        return float(slots * self.slot_s)

    # ------------------------------------------------------------------------------------
    # Slot process
    # ------------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return bool(self.buffer_bits.any()) or not self.grants.idle

    def _run(self) -> Generator[simpy.Event, Any, None]:
        k = 0
        n_total = self.n_slot_total
        g = self.grants
        while k < n_total:
            self.n_loop_iterations += 1
            self._access(k)
            if g.is_pusch_slot(k) and self._busy():
                yield from self._slot(k)
                g.trigger(self.buffer_bits - self.retx_bits)
            if not self.config.idle_skip:
                k_next = k + 1
            elif self._busy():
                k_next = g.next_event_slot(k + 1)
            else:
                k_next = n_total
            if self.traffic is not None and k_next > k + 1:
                k_next = min(k_next, self.traffic.next_arrival_slot(k + 1, n_total))
            # Sleep to k_next; an enqueue() may bring it forward (to its landing slot).
            while True:
                if self._pending:
                    k_next = min(k_next, max(self._pending[0][0], k + 1))
                if self._wakeup.triggered:
                    self._wakeup = self.env.event()
                t_next = self.horizon_s if k_next >= n_total else self.clock.time_of(k_next)
                yield self._wakeup | self.env.timeout(max(0.0, t_next - self.env.now))
                if not self._wakeup.triggered:
                    break
            k = k_next

    def _access(self, k: int) -> None:
        """Arrivals of slot ``k`` enter the buffers; access triggers and SRs."""
        pend = self._pending
        while pend and pend[0][0] <= k:
            _, c, u, bits = pend.popleft()
            self.buffer_bits[c, u] += bits
        if self.traffic is not None:
            arrivals = self.traffic.arrivals(k)
            if arrivals is not None:
                self.buffer_bits += arrivals
        self.grants.trigger(self.buffer_bits - self.retx_bits)
        self.grants.send_sr(k)

    # ------------------------------------------------------------------------------------
    def _harq_uniforms(self, k: int) -> FloatArray:
        if k >= self._harq_first + self._harq_u.shape[0]:
            while k >= self._harq_first + self._harq_u.shape[0]:
                self._harq_first += self._harq_u.shape[0]
                self._harq_u = self._harq_rng.random((self._harq_batch, self.n_cell, self.n_ue))
        return self._harq_u[k - self._harq_first]

    def _srs(self, k: int) -> None:
        """Refresh the SRS report used at slot ``k`` (measured at m = ⌊(k − d)/T⌋·T)."""
        cfg = self.config
        period = cfg.srs_period_slots
        m = max(0, ((k - cfg.srs_delay_slots) // period) * period)
        if m == self._report_slot:
            return
        self._report_slot = m
        batch, j = self.dl.channel_at(m)
        # Interference the gNB measured in the last PUSCH slot before the SRS.
        interf: FloatArray | float = 0.0
        for slot, i_w in reversed(self._interf_hist):
            if slot < m:
                interf = i_w[:, None, :]
                break
        self._report_per_w = batch.gain[j] / (self.noise_w + interf)

    def _pathloss_db(self, ls: FloatArray) -> FloatArray:
        """Serving coupling loss PL per UE from the large-scale gains, dB [n_cell, n_ue].

        Args:
            ls: Large-scale gain [n_cell, n_ue, n_cell], linear.
        """
        c = np.arange(self.n_cell)
        return np.asarray(-10.0 * np.log10(ls[c, :, c]))

    def _power_dbm(self, pl_db: FloatArray, n_prb: IntArray | int) -> FloatArray:
        """Open-loop PUSCH power (TS 38.213 §7.1.1, f = 0, Δ_TF = 0), dBm; −inf for 0 PRBs.

        Args:
            pl_db: Pathloss per UE, dB [n_cell, n_ue].
            n_prb: Allocated PRBs M_RB per UE, [n_cell, n_ue] or scalar.
        """
        p = self.config.power
        return pusch_power_dbm(
            pl_db, n_prb, p0_dbm=p.p0_dbm, alpha=p.alpha, mu=self.mu, p_cmax_dbm=p.p_cmax_dbm
        )

    def _ue_interference_w(
        self, ls: FloatArray, alloc: IntArray, used: BoolArray, power_prb_w: FloatArray
    ) -> FloatArray:
        """Interference at each gNB per PRB from the other cells' scheduled UEs, W [C, P].

        I[c, p] = Σ_{c' ≠ c} P[c', p] · G[c', u'(c', p), c] with u' the UE cell c' scheduled on
        p and G the large-scale gain (reciprocal: BS c → UE u' of cell c').

        Args:
            ls: Large-scale gain [n_cell, n_ue, n_cell], linear.
            alloc: UE per PRB [n_cell, n_prb] (−1 unused).
            used: ``alloc >= 0``, [n_cell, n_prb].
            power_prb_w: Transmit power per PRB [n_cell, n_prb], W (0 where unused).
        """
        C = self.n_cell
        c = np.arange(C)
        g = ls[c[:, None], np.where(used, alloc, 0), :]  # [C', P, C]
        rx = g * power_prb_w[:, :, None]
        rx[c, :, c] = 0.0  # own cell's UE is signal, not interference
        return np.asarray(rx.sum(axis=0).T)

    def _served_rows(
        self, interference_w: FloatArray, alloc: IntArray, used: BoolArray
    ) -> tuple[FloatArray, IntArray]:
        """Interference in the kernel's served-row format (see ``CellGroup``).

        Returns:
            Interference per served UE and PRB, [n_row, n_prb] W ((0, 0) for one cell), and the
            row of every UE, [n_cell · n_ue] (−1 = not served).
        """
        if self.n_cell == 1:
            return _NO_INTERFERENCE, _NO_ROWS
        C, U = self.n_cell, self.n_ue
        flat = (alloc + (np.arange(C) * U)[:, None])[used]
        served = np.zeros(C * U, dtype=bool)
        served[flat] = True
        rows = np.flatnonzero(served)
        row_of = np.full(C * U, -1, dtype=np.int64)
        row_of[rows] = np.arange(rows.size)
        return np.ascontiguousarray(interference_w[rows // U]), row_of

    def _retx_prb(self, k: int) -> IntArray:
        """PRBs of the retransmission due per UE (0 if none), [n_cell, n_ue]."""
        due = self.h_retx & (self.h_int[..., sk.HI_READY] <= k)
        h = np.argmax(due, axis=2)[..., None]
        nprb = np.take_along_axis(self.h_int[..., sk.HI_NPRB], h, axis=2)[..., 0]
        return np.asarray(np.where(due.any(axis=2), nprb, 0))

    def _power_limited_prb(self, pl_db: FloatArray) -> IntArray:
        """Most PRBs a UE can fill at its open-loop power per PRB, [C, U] (at least 1).

        The largest M_RB with P0 + 10·log10(2^μ·M_RB) + α·PL ≤ P_CMAX (TS 38.213 §7.1.1): more
        PRBs would spread P_CMAX thinner than the target received power per PRB. The gNB knows
        it from the UE's power headroom report (TS 38.321 §5.4.6).

        Args:
            pl_db: Pathloss per UE, dB [n_cell, n_ue].
        """
        p = self.config.power
        headroom_db = p.p_cmax_dbm - p.p0_dbm - p.alpha * pl_db
        m = np.floor(10.0 ** (headroom_db / 10.0) / 2**self.mu)
        return np.asarray(np.clip(m, 1, self.n_prb), dtype=np.int64)

    def _cap(self, alloc: IntArray, need: IntArray) -> IntArray:
        """Keep each UE's lowest ``need`` PRBs of ``alloc`` [C, P]; need [C, U] (−1: no cap)."""
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        mine = alloc[:, None, :] == np.arange(U)[None, :, None]  # [C, U, P]
        rank = np.cumsum(mine, axis=2)
        c = np.arange(C)[:, None]
        p = np.arange(P)[None, :]
        u = np.where(alloc >= 0, alloc, 0)
        over = (need[c, u] >= 0) & (rank[c, u, p] > need[c, u])
        return np.where((alloc >= 0) & over, -1, alloc)

    # ------------------------------------------------------------------------------------
    def _slot(self, k: int) -> Generator[simpy.Event, Any, None]:
        t = self.tables
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        cfg = self.config
        g = self.grants
        gap = k - self._last_active if self._last_active >= 0 else 1
        if gap > 1:
            self.avg_rate_bps *= cfg.avg_beta ** (gap - 1)
        self._last_active = k

        batch, jb = self.dl.channel_at(k)
        ls = batch.large_scale_gain
        pl_db = self._pathloss_db(ls)
        self._srs(k)

        # --- who may send: fixed grants, known buffers, retransmissions --------------------
        new_bits = self.buffer_bits - self.retx_bits
        fixed = g.fixed_candidates(k) & (new_bits > 0)
        sched = g.schedulable(k)
        gnb_new = np.where(fixed, new_bits, np.where(sched, np.minimum(g.known_bits, new_bits), 0))
        # Equal share of the band among the UEs the gNB is serving: the power per PRB that the
        # rate estimate assumes (TS 38.213 §7.1.1 spreads P over M_RB).
        serving = (g.phase == SCHEDULED) | (g.phase == BSR_RETX)
        m_share = np.ceil(P / np.maximum(serving.sum(axis=1, keepdims=True), 1))
        p_share_w = 10.0 ** ((self._power_dbm(pl_db, m_share) - 30.0) / 10.0) / m_share
        with np.errstate(divide="ignore"):
            report_db = 10.0 * np.log10(self._report_per_w * p_share_w[:, :, None])
        has_data = np.empty((C, U), dtype=bool)
        has_retx = np.empty((C, U), dtype=bool)
        est_db = np.empty((C, U, P))
        rate_bps = np.empty((C, U, P))
        sk.eligibility_and_rates(
            np.full(C, k, dtype=np.int64), self.h_int, self.h_retx, self.retx_bits + gnb_new,
            self.retx_bits, report_db, self.olla_offset_db, t.se_at_target, self._rate_per_se,
            self._sidx_lo, self._sidx_inv_step, self._sidx_max, has_data, has_retx, est_db,
            rate_bps,
        )  # fmt: skip
        fixed &= has_data & ~has_retx  # a free HARQ process is needed
        n_fixed = np.where(
            fixed, np.where(g.phase == GRANT_WAIT, cfg.sr_grant_prb, cfg.configured_grant_prb), 0
        )
        alloc, fixed = fixed_grant_map(n_fixed, P)
        reserved = alloc >= 0
        policy_ok = has_data & ~fixed & self.ue_mask

        # --- ul_prb decision ---------------------------------------------------------------
        if policy_ok.any() and not reserved.all():
            rate_bps[np.broadcast_to(reserved[:, None, :], rate_bps.shape)] = 0.0
            obs = {
                "slot": k,
                "rate_bps": rate_bps,
                "last_rate_bps": self.last_rate_bps,
                "avg_rate_bps": self.avg_rate_bps,
                "buffer_bits": g.known_bits.copy(),
                "has_data": policy_ok,
                "ue_mask": self.ue_mask,
                "sinr_db": est_db,
                "olla_offset_db": self.olla_offset_db,
                "mcs": self.last_mcs,
                "n_tx": self._n_tx_view,
                "n_nack": self._n_nack_view,
                "reserved_prb": reserved,
            }
            if self.ul_dp.is_inline:
                action = self.ul_dp.decide(obs)
            else:
                action = yield from self.ul_dp.ask(obs)
            act = self._check_action(action, policy_ok)
            need = np.full((C, U), -1, dtype=np.int64)
            if cfg.cap_grant_to_buffer:
                bits_per_prb = rate_bps.mean(axis=2) * self.slot_s  # [C, U]
                with np.errstate(divide="ignore", invalid="ignore"):
                    need = np.where(bits_per_prb > 0, np.ceil(gnb_new / bits_per_prb) + 1, -1)
            if cfg.cap_grant_to_power_headroom:
                m_max = self._power_limited_prb(pl_db)
                need = np.where(need >= 0, np.minimum(need, m_max), m_max)
            if cfg.cap_grant_to_buffer or cfg.cap_grant_to_power_headroom:
                need = np.where(has_retx, self._retx_prb(k), need).astype(np.int64)
                act = self._cap(act, need)
            alloc = np.where(reserved, alloc, act)

        self._delivered[:] = 0.0
        used = alloc >= 0
        if used.any():
            self._transmit(k, batch.gain[jb], ls, pl_db, alloc, used, has_data, has_retx, fixed)
        self.last_rate_bps = self._delivered / self.slot_s
        self.avg_rate_bps = (
            cfg.avg_beta * self.avg_rate_bps + (1 - cfg.avg_beta) * self.last_rate_bps
        )
        self.n_active_slots += 1
        if used.any():
            for listener in self.slot_listeners:
                listener(k)

    def _check_action(self, action: Any, policy_ok: BoolArray) -> IntArray:
        """The policy's PRB map as int64 [n_cell, n_prb], checked against ``policy_ok``."""
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        act = np.ascontiguousarray(action, dtype=np.int64)
        if act.shape != (C, P):
            raise ValueError(f"ul_prb action must have shape {(C, P)}, got {act.shape}")
        if ((act < -1) | (act >= U)).any():
            raise ValueError(f"ul_prb action entries must be -1..{U - 1}")
        c, p = np.nonzero(act >= 0)
        bad = ~policy_ok[c, act[c, p]]
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"the ul_prb policy gave PRBs to UE {act[c[i], p[i]]} of cell {c[i]}, which "
                "has no schedulable data (has_data=False)"
            )
        return act

    def _transmit(
        self,
        k: int,
        gain: FloatArray,
        ls: FloatArray,
        pl_db: FloatArray,
        alloc: IntArray,
        used: BoolArray,
        has_data: BoolArray,
        has_retx: BoolArray,
        fixed: BoolArray,
    ) -> None:
        """Power, interference, the compiled transmission, BSR overhead and access phases.

        Args:
            k: Slot index.
            gain: Serving-link gain [n_cell, n_ue, n_prb], linear.
            ls: Large-scale gain [n_cell, n_ue, n_cell], linear.
            pl_db: Pathloss per UE [n_cell, n_ue], dB.
            alloc: UE per PRB [n_cell, n_prb] (−1 unused).
            used: ``alloc >= 0``, [n_cell, n_prb].
            has_data: Kernel eligibility [n_cell, n_ue].
            has_retx: A retransmission is due, [n_cell, n_ue].
            fixed: UEs on a fixed (SR / configured) grant, whose TB carries the BSR.
        """
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        t, harq, la = self.tables, self.config.harq, self.config.link_adaptation
        c_idx = np.arange(C)[:, None]
        u_of = np.where(used, alloc, 0)
        n_alloc = np.zeros((C, U), dtype=np.int64)
        np.add.at(n_alloc, (np.broadcast_to(c_idx, alloc.shape)[used], alloc[used]), 1)
        tx = n_alloc > 0
        p_dbm = self._power_dbm(pl_db, n_alloc)  # TS 38.213 §7.1.1 with M_RB = n_alloc
        p_ue_w = np.where(tx, 10.0 ** ((p_dbm - 30.0) / 10.0), 0.0)
        p_prb_ue = p_ue_w / np.maximum(n_alloc, 1)  # [C, U] W per PRB
        power_w = np.where(used, p_prb_ue[c_idx, u_of], 0.0)  # [C, P]
        interf = self._ue_interference_w(ls, alloc, used, power_w) if C > 1 else np.zeros((C, P))
        self._interf_hist.append((k, interf))
        rows, row_of = self._served_rows(interf, alloc, used)
        p_idx = np.arange(P)[None, :]
        sinr = gain[c_idx, u_of, p_idx] * power_w / (self.noise_w + interf)
        with np.errstate(divide="ignore"):
            self.last_sinr_db = np.where(used, 10.0 * np.log10(sinr), np.nan)
        self.last_power_dbm = p_dbm
        self.last_alloc = alloc

        report_lin = self._report_per_w * p_prb_ue[:, :, None]  # estimate at the granted power
        new_before = self.buffer_bits - self.retx_bits
        nack_before = self.m_ue[..., sk.M_NACK].copy()
        m_slot_k = self.m_slot[k]
        bad = sk.transmit(
            np.full(C, k, dtype=np.int64), alloc, power_w, gain[None], np.zeros(C, np.int64),
            rows, row_of, self.noise_w, report_lin,
            self.olla_offset_db, self.last_mcs, has_data, has_retx, self.buffer_bits,
            self.retx_bits, self.h_int, self.h_flt, self.h_retx, self._harq_uniforms(k),
            t.best_mcs, t.tbs_bits, t.tbler, t.eesm_beta, self._sidx_lo, self._sidx_inv_step,
            self._sidx_max, harq.rtt_slots, harq.max_transmissions, harq.chase_combining,
            la.olla, la.olla_step_up_db, self._olla_down, la.olla_max_offset_db, self.m_ue,
            m_slot_k, self.mcs_counts, self._delivered,
        )  # fmt: skip
        if bad >= 0:  # guarded by _check_action; kept as a safety net
            raise ValueError(f"UE {bad % U} of cell {bad // U} was granted PRBs without data")
        nack = tx & (self.m_ue[..., sk.M_NACK] > nack_before)
        self._bsr_overhead(k, fixed & tx, nack, new_before)

        kept = nack & self._sent_process_kept(k)
        retx_pending = np.asarray(self.h_retx.any(axis=2))
        new_after = self.buffer_bits - self.retx_bits
        self.grants.after_transmit(k, tx, tx & ~nack, kept, new_after, retx_pending)
        self.m_power_dbm += np.where(tx, p_dbm, 0.0)
        energy = p_ue_w * self._pusch_s
        self.m_energy_j += energy
        self.m_slot_power_w[k] = p_ue_w.sum(axis=1)

    def _sent_process(self, k: int) -> IntArray:
        """HARQ process each UE used in slot ``k`` (valid where it transmitted), [C, U]."""
        sent = self.h_int[..., sk.HI_READY] == k + self.config.harq.rtt_slots
        return np.asarray(np.argmax(sent, axis=2))

    def _sent_process_kept(self, k: int) -> BoolArray:
        """The process used in slot ``k`` holds its TB for a retransmission, [C, U]."""
        h = self._sent_process(k)[..., None]
        return np.asarray(np.take_along_axis(self.h_retx, h, axis=2)[..., 0])

    def _bsr_overhead(
        self, k: int, first: BoolArray, nack: BoolArray, new_before: FloatArray
    ) -> None:
        """Take ``bsr_bits`` of message room from the first PUSCH of an access.

        The kernel filled the TB with min(TBS, buffer) message bits; when the buffer exceeded
        the TBS the BSR MAC CE rides in it (else it is cancelled, TS 38.321 §5.4.5), so
        ``bsr_bits`` of those bits go back to the buffer (ACK) or out of the HARQ copy (NACK).

        Args:
            k: Slot index.
            first: UEs whose PUSCH this slot was a fixed grant's first transmission, [C, U].
            nack: UEs whose PUSCH was NACKed, [C, U].
            new_before: New-data buffer before the transmission, bits [C, U].
        """
        bsr = float(self.config.grant.bsr_bits)
        if bsr <= 0 or not first.any():
            return
        c, u = np.nonzero(first)
        h = self._sent_process(k)[c, u]
        tbs = self.h_int[c, u, h, sk.HI_TBS].astype(np.float64)
        carried = new_before[c, u] > tbs
        c, u, h = c[carried], u[carried], h[carried]
        if c.size == 0:
            return
        cut = np.minimum(bsr, self.h_flt[c, u, h, sk.HF_BITS])
        ack = ~nack[c, u]
        ca, ua, cuts = c[ack], u[ack], cut[ack]
        self._delivered[ca, ua] -= cuts
        self.buffer_bits[ca, ua] += cuts
        self.m_ue[ca, ua, sk.M_BITS] -= cuts
        np.subtract.at(self.m_slot[k, :, sk.S_BITS], ca, cuts)
        kept = ~ack & self.h_retx[c, u, h]
        ck, uk, hk = c[kept], u[kept], h[kept]
        self.h_flt[ck, uk, hk, sk.HF_BITS] -= cut[kept]
        self.retx_bits[ck, uk] -= cut[kept]

    # ------------------------------------------------------------------------------------
    # Results
    # ------------------------------------------------------------------------------------
    def results(self) -> RunResult:
        """Tables ``ul_ue`` (one row per UE) and ``ul_slot`` (per slot and cell) + ``ul_*``."""
        C, U = self.n_cell, self.n_ue
        duration_s = self.n_slot_total * self.slot_s
        m = self.m_ue
        thr_bps = m[..., sk.M_BITS] / duration_s
        n_tx = m[..., sk.M_TX]
        served = n_tx > 0
        per_tx = m / np.maximum(n_tx, 1.0)[..., None]
        cell_idx, ue_idx = np.meshgrid(np.arange(C), np.arange(U), indexing="ij")

        def when_served(x: FloatArray) -> FloatArray:
            return np.asarray(np.where(served, x, np.nan).ravel())

        ue = pd.DataFrame(
            {
                "cell": cell_idx.ravel(),
                "ue": ue_idx.ravel(),
                "throughput_mbps": thr_bps.ravel() / 1e6,
                "delivered_bits": m[..., sk.M_BITS].ravel(),
                "n_tx": n_tx.ravel().astype(np.int64),
                "n_nack": m[..., sk.M_NACK].ravel().astype(np.int64),
                "bler": when_served(per_tx[..., sk.M_NACK]),
                "mean_mcs": when_served(per_tx[..., sk.M_MCS]),
                "mean_sinr_db": when_served(per_tx[..., sk.M_SINR_DB]),
                "mean_prb": per_tx[..., sk.M_PRB].ravel(),
                "mean_power_dbm": when_served(self.m_power_dbm / np.maximum(n_tx, 1.0)),
                "energy_j": self.m_energy_j.ravel(),
                "n_sr": self.grants.n_sr.ravel().astype(np.int64),
                "n_bsr": self.grants.n_bsr.ravel().astype(np.int64),
            }
        )
        ms = self.m_slot
        slot = active_slot_table(ms, self.slot_s)
        power_w = self.m_slot_power_w[slot["slot"].to_numpy(), slot["cell"].to_numpy()]
        slot["power_w"] = power_w
        slot["energy_j"] = power_w * self._pusch_s
        n_tx_all = int(n_tx.sum())
        n_first = max(int(m[..., sk.M_FIRST_TX].sum()), 1)
        per = self.pattern.period_slots
        n_pusch = int(self.grants.pusch_phase.sum()) * (self.n_slot_total // per) + int(
            self.grants.pusch_phase[: self.n_slot_total % per].sum()
        )
        cell_thr = thr_bps.sum(axis=1)
        summary = {
            "ul_n_pusch_slots": n_pusch,
            "ul_n_active_slots": self.n_active_slots,
            "ul_cell_throughput_mbps": float(cell_thr.mean() / 1e6),
            "ul_ue_throughput_mean_mbps": float(thr_bps.mean() / 1e6),
            "ul_ue_throughput_median_mbps": float(np.median(thr_bps) / 1e6),
            "ul_ue_throughput_p5_mbps": float(np.percentile(thr_bps, 5) / 1e6),
            "ul_jain_index": jain_index(thr_bps),
            "ul_bler": float(m[..., sk.M_NACK].sum() / n_tx_all) if n_tx_all else float("nan"),
            "ul_bler_first_tx": float(m[..., sk.M_FIRST_NACK].sum() / n_first),
            "ul_mean_mcs": float(m[..., sk.M_MCS].sum() / n_tx_all) if n_tx_all else float("nan"),
            "ul_mean_power_dbm": float(self.m_power_dbm.sum() / n_tx_all)
            if n_tx_all
            else float("nan"),
            "ul_energy_j": float(self.m_energy_j.sum()),
            "ul_prb_utilization": float(ms[..., sk.S_PRB].sum() / max(n_pusch * self.n_prb * C, 1)),
            "ul_n_sr": int(self.grants.n_sr.sum()),
        }
        return RunResult(tables={"ul_ue": ue, "ul_slot": slot}, summary=summary)
