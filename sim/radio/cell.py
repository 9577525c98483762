"""The NR downlink cell process: one SimPy process ticks the slots of all cells of a network.

Inside a slot every cell × UE × PRB computation is vectorized numpy over arrays of shape
``[n_cell, n_ue, n_prb]`` (ARCHITECTURE.md §4.4). Cells are batched on the leading axis so a
57-sector network costs one pass of array operations per slot, not 57.

Phase order inside slot ``k`` (fixed here, never left to SimPy's event ordering):

1. arrivals of slot ``k`` enter the buffers;
2. CSI: the report in use is the one measured at slot ``m = ⌊(k − d) / T⌋·T`` (delay ``d``,
   period ``T``), quantized to CQI; the link adapter backs it off by the OLLA offset;
3. PRB decision (``prb`` decision point) on the estimated per-PRB rates;
4. power decision (``power`` decision point) over the allocated PRBs;
5. transmission: EESM effective SINR, inner-loop MCS, TBS (TS 38.214 §5.1.3.2), TBLER from the
   PHY-abstraction tables, chase-combined HARQ retransmissions, ACK/NACK draws;
6. OLLA on first-transmission feedback, buffers, metrics.

Idle slots (no undelivered bit in any cell) are skipped exactly: the process sleeps until the
next arrival (or an external ``enqueue``); channel batches, traffic batches and HARQ draws are
consumed by slot index, CSI is evaluated lazily at its measurement slot, and averages decay in
closed form, so results are identical with ``idle_skip`` on or off
(``tests/sim/radio/test_cell.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy

from edgetwin.sim.clock import SlotClock
from edgetwin.sim.decision import DecisionPoint
from edgetwin.sim.metrics.summary import RunResult, jain_index
from edgetwin.sim.radio import slot_kernels as sk
from edgetwin.sim.radio.bler import LinkTables, build_link_tables
from edgetwin.sim.radio.channel import ChannelBatch, ChannelConfig, make_channel
from edgetwin.sim.radio.config import CellConfig
from edgetwin.sim.radio.geometry import TopologyConfig, build_layout
from edgetwin.sim.radio.mobility import MobilityConfig, make_mobility
from edgetwin.sim.radio.numerology import (
    frequency_range_of,
    n_prb_for_bandwidth,
    prb_bandwidth_hz,
    prb_center_offsets_hz,
    slot_duration_s,
)
from edgetwin.sim.radio.olla import olla_step_down_db
from edgetwin.sim.radio.tdd import SlotPattern, TddConfig
from edgetwin.sim.radio.traffic import FullBufferTraffic, PoissonTraffic, TrafficSource
from edgetwin.sim.types import BoolArray, FloatArray, IntArray
from edgetwin.sim.units import dbm_to_w, thermal_noise_w

if TYPE_CHECKING:
    from edgetwin.agents.protocol import Policy
    from edgetwin.sim.engine import Simulation

_LN10_OVER_10 = np.log(10.0) / 10.0

_NO_INTERFERENCE = np.zeros((0, 0))
_NO_ROWS = np.zeros(0, dtype=np.int64)


class CellGroup:
    """All NR downlink cells of a network, ticked by one SimPy process.

    Observation handed to the ``prb`` decision point (dict; arrays have a leading cell axis):
    ``slot`` (int), ``rate_bps`` [n_cell, n_ue, n_prb] (estimated rate if the PRB is given to
    the UE, at equal power), ``last_rate_bps`` [n_cell, n_ue] (delivered in the previous active
    slot), ``avg_rate_bps`` [n_cell, n_ue] (smoothed with ``CellConfig.avg_beta``),
    ``buffer_bits`` [n_cell, n_ue], ``has_data`` [n_cell, n_ue] (eligible UEs), ``ue_mask``
    [n_cell, n_ue], ``sinr_db`` [n_cell, n_ue, n_prb] (CQI-reported SINR minus OLLA offset),
    ``olla_offset_db`` [n_cell, n_ue] (dB), ``mcs`` [n_cell, n_ue] (MCS of the UE's last
    transmission), ``n_tx`` and ``n_nack`` [n_cell, n_ue] (running counts of transmissions and
    NACKs: their change between decisions is the HARQ feedback). Arrays may be views of the
    cell's state: copy what you keep.
    Action: int64 [n_cell, n_prb], UE index per PRB, −1 = unused.

    Observation for the ``power`` decision point: everything the ``prb`` decision saw, plus
    ``alloc`` [n_cell, n_prb] (this slot's PRB map), ``gain_over_noise_per_w``
    [n_cell, n_ue, n_prb] (1/W) and ``max_power_w`` [n_cell].
    Action: float64 [n_cell, n_prb] watts per PRB, summing to at most ``max_power_w`` per cell.

    Args:
        sim: The simulation (its environment, random streams and decision-point registry).
        cell: Carrier, link adaptation and HARQ configuration.
        topology: Sites, sectors and UE drops.
        mobility: UE movement.
        channel: Channel backend and propagation scenario.
        traffic: Downlink traffic model.
        traffic_ue_mask: UEs that carry ``traffic``, bool broadcastable to [n_cell, n_ue];
            default all (the
            others carry only what :meth:`enqueue` puts in their buffers).
        prb_policy: Inline PRB scheduler; ``None`` leaves the decision point detached.
        power_policy: Inline power allocator; ``None`` leaves the decision point detached.
        name: Component name.
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        cell: CellConfig,
        topology: TopologyConfig,
        mobility: MobilityConfig,
        channel: ChannelConfig,
        traffic: FullBufferTraffic | PoissonTraffic,
        prb_policy: Policy[Any, Any] | None,
        power_policy: Policy[Any, Any] | None,
        traffic_ue_mask: BoolArray | None = None,
        name: str = "radio",
    ) -> None:
        self.name = name
        self.config = cell
        self.env = sim.env
        self.horizon_s = sim.horizon_s
        streams = sim.streams
        la = cell.link_adaptation

        # --- carrier ---------------------------------------------------------------------
        mu = cell.numerology
        self.slot_s = slot_duration_s(mu)
        self.clock = SlotClock(self.slot_s)
        self.n_slot_total = self.clock.n_slots(sim.horizon_s)
        fr = frequency_range_of(cell.carrier_hz)
        self.n_prb = n_prb_for_bandwidth(cell.bandwidth_hz, mu, frequency_range=fr)
        self.prb_hz = prb_bandwidth_hz(mu)
        self.noise_w = thermal_noise_w(self.prb_hz, cell.ue_noise_figure_db)
        # TDD: PDSCH only in slots with at least n_symbols DL symbols (D slots; an S slot only
        # when its DL part holds the whole PDSCH, as the link tables assume n_symbols).
        self.pattern = SlotPattern.from_config(cell.tdd or TddConfig(duplex="fdd"), mu)
        self._dl_phase = self.pattern.dl_symbols >= cell.n_symbols
        if not self._dl_phase.any():
            raise ValueError(
                f"cell.tdd pattern {cell.tdd.pattern if cell.tdd else ''!r} has no slot with "
                f"cell.n_symbols={cell.n_symbols} downlink symbols; lower n_symbols or add 'D' "
                "slots"
            )
        #: Called as ``listener(k)`` after every slot that transmitted (the radio hop reads the
        #: delivered bits there).
        self.slot_listeners: list[Callable[[int], None]] = []
        if channel.batch_slots < la.cqi_delay_slots + la.cqi_period_slots:
            raise ValueError(
                f"channel.batch_slots ({channel.batch_slots}) must be >= "
                f"cell.link_adaptation.cqi_delay_slots + cqi_period_slots "
                f"({la.cqi_delay_slots + la.cqi_period_slots})"
            )

        # --- network, channel, traffic ---------------------------------------------------
        self.layout = build_layout(topology, streams.get("topology"))
        if channel.backend == "raytraced":
            # UEs dropped inside the scene's buildings are re-drawn outdoors (sionna.rt).
            from edgetwin.sim.radio.channel_raytraced import outdoor_layout

            self.layout = outdoor_layout(self.layout, channel.scene, streams.get("topology"))
        self.mobility = make_mobility(mobility, self.layout, streams.get("mobility"))
        self.n_cell = self.layout.n_cell
        self.n_ue = self.layout.n_ue
        self.channel = make_channel(
            channel,
            self.layout,
            self.mobility,
            carrier_hz=cell.carrier_hz,
            prb_frequencies_hz=prb_center_offsets_hz(self.n_prb, mu),
            slot_s=self.slot_s,
            bs_antenna_gain_dbi=topology.bs_antenna_gain_dbi,
            rng=streams.get("channel"),
        )
        self.traffic = TrafficSource(
            traffic,
            self.n_cell,
            self.n_ue,
            self.slot_s,
            channel.batch_slots,
            streams.get("traffic"),
            ue_mask=traffic_ue_mask,
        )
        self._harq_rng = streams.get("harq")
        self._harq_batch = channel.batch_slots
        #: Slots per channel batch (how far back ``channel_at`` can reach).
        self.batch_slots = channel.batch_slots

        # --- link tables -----------------------------------------------------------------
        self.tables: LinkTables = build_link_tables(
            n_prb_max=self.n_prb,
            n_symbols=cell.n_symbols,
            mcs_table=cell.mcs_table,
            cqi_table=cell.cqi_table,
            n_layers=cell.n_layers,
            dmrs_re_per_prb=cell.dmrs_re_per_prb,
            overhead_re_per_prb=cell.overhead_re_per_prb,
            bler_target=la.bler_target,
        )
        # SINR-grid parameters for the compiled kernels (LinkTables.sinr_index, as scalars).
        self._sidx_lo, self._sidx_inv_step, self._sidx_max = self.tables.kernel_sinr_grid
        re_per_prb = min(156, 12 * cell.n_symbols - cell.dmrs_re_per_prb - cell.overhead_re_per_prb)
        # Bits per second a PRB carries per unit spectral efficiency (bits/RE).
        self._rate_per_se = re_per_prb * cell.n_layers / self.slot_s
        self.max_power_w = np.full(self.n_cell, float(dbm_to_w(cell.max_power_dbm)))
        self._p_eq = float(self.max_power_w[0]) / self.n_prb
        self._olla_down = olla_step_down_db(la.olla_step_up_db, la.bler_target)

        # --- decision points -------------------------------------------------------------
        self.prb_dp: DecisionPoint[dict[str, Any], IntArray] = DecisionPoint(
            self.env, "prb", prb_policy
        )
        self.power_dp: DecisionPoint[dict[str, Any], FloatArray] = DecisionPoint(
            self.env, "power", power_policy
        )
        sim.add_decision_point("prb", self.prb_dp)
        sim.add_decision_point("power", self.power_dp)

        self._init_state()

    # ------------------------------------------------------------------------------------
    # State
    # ------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        H = self.config.harq.n_processes
        la = self.config.link_adaptation
        self.buffer_bits: FloatArray = self.traffic.initial_buffer_bits()
        self.retx_bits: FloatArray = np.zeros((C, U))  # bits held by NACKed HARQ processes
        self.olla_offset_db: FloatArray = np.zeros((C, U))
        self.avg_rate_bps: FloatArray = np.zeros((C, U))
        self.last_rate_bps: FloatArray = np.zeros((C, U))
        self.ue_mask: BoolArray = np.ones((C, U), dtype=bool)
        # HARQ, struct of arrays [n_cell, n_ue, n_harq]; the integer and float fields are packed
        # on a last axis so that the slot loop gathers and scatters each group in one call.
        self.h_int: IntArray = np.zeros((C, U, H, sk.HI_N), dtype=np.int64)
        self.h_flt: FloatArray = np.zeros((C, U, H, sk.HF_N))
        self.h_retx: BoolArray = np.zeros((C, U, H), dtype=bool)  # holds a NACKed TB
        self.last_mcs: IntArray = np.zeros((C, U), dtype=np.int64)  # β of the EESM estimate
        self._delivered: FloatArray = np.zeros((C, U))
        # Transmit power history for interference, ring of the last `L` slots.
        self._p_ring_len = la.cqi_delay_slots + la.cqi_period_slots + 2
        self._p_ring: FloatArray = np.zeros((self._p_ring_len, C, P))
        self._p_ring_slot = np.full(self._p_ring_len, -1, dtype=np.int64)
        # Channel batches: current and previous (CSI is measured up to d + T slots back).
        self._batch: ChannelBatch | None = None
        self._prev_batch: ChannelBatch | None = None
        self._harq_u: FloatArray = np.zeros((0, C, U))
        self._harq_first = 0
        # CSI report cache.
        self._report_slot = -1
        self._report_db: FloatArray = np.zeros((C, U, P))
        self._report_lin: FloatArray = np.zeros((C, U, P))
        # Slot bookkeeping.
        self._last_active = -1
        self._wakeup: simpy.Event = self.env.event()
        # Metrics: per UE running sums, per slot per cell arrays.
        self.m_ue: FloatArray = np.zeros((C, U, sk.M_N))  # per-UE running sums, fields sk.M_*
        # Views handed to the PRB/power observations (made once: m_ue is never reallocated).
        self._n_tx_view = self.m_ue[..., sk.M_TX]
        self._n_nack_view = self.m_ue[..., sk.M_NACK]
        self.m_slot: FloatArray = np.zeros((self.n_slot_total, C, sk.S_N))  # per slot and cell
        self.mcs_counts: IntArray = np.zeros(self.tables.n_mcs, dtype=np.int64)
        self.n_active_slots = 0
        self.n_loop_iterations = (
            0  # slot-loop passes (fewer than slots when idle slots are skipped)
        )

    # ------------------------------------------------------------------------------------
    # Component protocol
    # ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the slot process."""
        self.env.process(self._run())

    def finalize(self, now_s: float) -> None:
        """Nothing to close: per-slot metrics are written as slots run."""

    def enqueue(self, cell: int, ue: int, bits: float) -> None:
        """Add ``bits`` to a UE's downlink buffer now (wakes an idle cell group)."""
        self.buffer_bits[cell, ue] += bits
        if not self._wakeup.triggered:
            self._wakeup.succeed()

    # ------------------------------------------------------------------------------------
    # Slot process
    # ------------------------------------------------------------------------------------
    def _run(self) -> Generator[simpy.Event, Any, None]:
        k = 0
        n_total = self.n_slot_total
        skip = self.config.idle_skip
        while k < n_total:
            self.n_loop_iterations += 1
            arrivals = self.traffic.arrivals(k)
            if arrivals is not None:
                self.buffer_bits += arrivals
            has_data = self.buffer_bits.any()
            if has_data and self._dl_phase[k % self._dl_phase.size]:
                yield from self._slot(k)
                k += 1
            elif has_data or not skip:
                k += 1  # an uplink slot of the TDD pattern, or idle slots not skipped
            else:
                # Nothing to send anywhere: sleep to the next arrival (or an enqueue()).
                k_next = self.traffic.next_arrival_slot(k + 1, n_total)
                t_next = self.clock.time_of(k_next)
                if k_next >= n_total:
                    t_next = self.horizon_s
                yield self._wakeup | self.env.timeout(t_next - self.env.now)
                if self._wakeup.triggered:
                    self._wakeup = self.env.event()
                    k_next = min(k_next, self.clock.next_slot(self.env.now))
                    # An enqueue() lands in the slot that starts at or after it.
                k = max(k + 1, k_next)
                if k >= n_total:
                    return
                yield self.env.timeout(self.clock.time_of(k) - self.env.now)
                continue
            if k < n_total:
                yield self.env.timeout(self.clock.time_of(k) - self.env.now)

    # ------------------------------------------------------------------------------------
    def channel_at(self, k: int) -> tuple[ChannelBatch, int]:
        """Channel batch holding slot ``k``, and ``k``'s index in it.

        The uplink shares it (TDD reciprocity). ``k`` may reach back ``batch_slots`` slots from
        the newest slot asked for.
        """
        b = self._batch
        if b is None or k >= b.first_slot + b.n_slot:
            while b is None or k >= b.first_slot + b.n_slot:
                self._prev_batch = b
                b = self.channel.next_batch()
            self._batch = b
        if k >= b.first_slot:
            return b, k - b.first_slot
        pb = self._prev_batch
        if pb is None or k < pb.first_slot:  # guarded by the batch_slots check in __init__
            raise RuntimeError(f"slot {k} is older than the channel batches kept")
        return pb, k - pb.first_slot

    def _harq_uniforms(self, k: int) -> FloatArray:
        if k >= self._harq_first + self._harq_u.shape[0]:
            while k >= self._harq_first + self._harq_u.shape[0]:
                self._harq_first += self._harq_u.shape[0]
                self._harq_u = self._harq_rng.random((self._harq_batch, self.n_cell, self.n_ue))
        return self._harq_u[k - self._harq_first]

    def _power_at(self, k: int) -> FloatArray | None:
        """Transmit power of every cell in slot ``k`` ([n_cell, n_prb] W), None if silent."""
        j = k % self._p_ring_len
        return self._p_ring[j] if self._p_ring_slot[j] == k else None

    def _interference_w(self, batch: ChannelBatch, power_w: FloatArray | None) -> FloatArray:
        """Inter-cell interference per UE and PRB, [n_cell, n_ue, n_prb] W (0-d if none)."""
        if power_w is None or self.n_cell == 1:
            return np.zeros(())
        C, U = self.n_cell, self.n_ue
        ls = batch.large_scale_gain  # [n_cell, n_ue, n_cell]
        total = (ls.reshape(C * U, C) @ power_w).reshape(C, U, self.n_prb)
        own = ls[np.arange(C), :, np.arange(C)]  # [n_cell, n_ue]
        result: FloatArray = total - own[:, :, None] * power_w[:, None, :]
        return result

    def _served_interference_w(
        self, batch: ChannelBatch, alloc: IntArray, used: BoolArray, power_w: FloatArray
    ) -> tuple[FloatArray, IntArray]:
        """Interference on the UEs served this slot only (a few rows instead of all UEs).

        Returns:
            Interference per served UE and PRB, [n_row, n_prb] W (shape (0, 0) for one cell),
            and the row of every UE, [n_cell · n_ue] (−1 = not served).
        """
        if self.n_cell == 1:
            return _NO_INTERFERENCE, _NO_ROWS
        C, U = self.n_cell, self.n_ue
        flat = (alloc + (np.arange(C) * U)[:, None])[used]
        served = np.zeros(C * U, dtype=bool)
        served[flat] = True
        rows = np.flatnonzero(served)  # flat (cell, ue) ids
        row_of = np.full(C * U, -1, dtype=np.int64)
        row_of[rows] = np.arange(rows.size)
        ls = batch.large_scale_gain.reshape(C * U, C)[rows]  # [n_row, n_cell]
        own_cell = rows // U
        # [n_row, n_prb]: all cells' power through the large-scale gains, minus the serving one.
        interference: FloatArray = ls @ power_w - (
            ls[np.arange(rows.size), own_cell][:, None] * power_w[own_cell]
        )
        return interference, row_of

    def _csi(self, k: int) -> None:
        """Refresh the CSI report used at slot ``k`` (measured at slot m, lazily)."""
        la = self.config.link_adaptation
        period = la.cqi_period_slots
        m = max(0, ((k - la.cqi_delay_slots) // period) * period)
        if m == self._report_slot:
            return
        self._report_slot = m
        batch, j = self.channel_at(m)
        # CSI-RS measurement at equal power per PRB; interference from the cells' power in m-1.
        interference = self._interference_w(batch, self._power_at(m - 1))
        sinr_lin = batch.gain[j] * self._p_eq / (self.noise_w + interference)
        self._report_db, self._report_lin = csi_report(sinr_lin, self.tables, la.cqi_quantization)

    def _slot(self, k: int) -> Generator[simpy.Event, Any, None]:
        t = self.tables
        C, U, P = self.n_cell, self.n_ue, self.n_prb
        cfg = self.config

        # --- closed-form catch-up of the smoothed rate over skipped slots -----------------
        gap = k - self._last_active if self._last_active >= 0 else 1
        beta = cfg.avg_beta
        if gap > 1:
            self.avg_rate_bps *= beta ** (gap - 1)
        self._last_active = k

        # --- HARQ state, eligibility, CSI and rate estimate (compiled kernel) ---------------
        self._csi(k)
        has_data = np.empty((C, U), dtype=bool)
        has_retx = np.empty((C, U), dtype=bool)
        est_db = np.empty((C, U, P))
        rate_bps = np.empty((C, U, P))
        k_cells = np.full(C, k, dtype=np.int64)
        any_data = sk.eligibility_and_rates(
            k_cells, self.h_int, self.h_retx, self.buffer_bits, self.retx_bits, self._report_db,
            self.olla_offset_db, t.se_at_target, self._rate_per_se, self._sidx_lo,
            self._sidx_inv_step, self._sidx_max, has_data, has_retx, est_db, rate_bps,
        )  # fmt: skip

        # --- PRB decision -----------------------------------------------------------------
        alloc: IntArray | None = None
        if any_data:
            # One snapshot for both decisions: buffers change only in the transmission phase.
            buffer_obs = self.buffer_bits.copy()
            obs = {
                "slot": k,
                "rate_bps": rate_bps,
                "last_rate_bps": self.last_rate_bps,
                "avg_rate_bps": self.avg_rate_bps,
                "buffer_bits": buffer_obs,
                "has_data": has_data,
                "ue_mask": self.ue_mask,
                "sinr_db": est_db,
                "olla_offset_db": self.olla_offset_db,
                "mcs": self.last_mcs,
                "n_tx": self._n_tx_view,
                "n_nack": self._n_nack_view,
            }
            if self.prb_dp.is_inline:
                alloc = self.prb_dp.decide(obs)
            else:
                alloc = yield from self.prb_dp.ask(obs)
            alloc = np.ascontiguousarray(alloc, dtype=np.int64)
            if alloc.shape != (C, P):
                raise ValueError(f"PRB action must have shape {(C, P)}, got {alloc.shape}")

        delivered = self._delivered
        delivered[:] = 0.0
        if alloc is not None and (used := alloc >= 0).any():
            # --- power decision -----------------------------------------------------------
            pobs = {
                **obs,
                "alloc": alloc,
                "gain_over_noise_per_w": self._report_lin
                * np.exp(-self.olla_offset_db * _LN10_OVER_10)[:, :, None]
                / self._p_eq,
                "max_power_w": self.max_power_w,
            }
            if self.power_dp.is_inline:
                power_w = self.power_dp.decide(pobs)
            else:
                power_w = yield from self.power_dp.ask(pobs)
            power_w = np.where(used, np.asarray(power_w, dtype=np.float64), 0.0)
            j = k % self._p_ring_len
            self._p_ring[j] = power_w
            self._p_ring_slot[j] = k

            # --- transmission (compiled kernel) ------------------------------------------
            batch, jb = self.channel_at(k)
            interference, row_of = self._served_interference_w(batch, alloc, used, power_w)
            harq = cfg.harq
            la = cfg.link_adaptation
            bad = sk.transmit(
                k_cells, alloc, power_w, batch.gain, np.full(C, jb, dtype=np.int64),
                interference, row_of, self.noise_w,
                self._report_lin, self.olla_offset_db, self.last_mcs, has_data, has_retx,
                self.buffer_bits, self.retx_bits, self.h_int, self.h_flt, self.h_retx,
                self._harq_uniforms(k), t.best_mcs, t.tbs_bits, t.tbler, t.eesm_beta,
                self._sidx_lo, self._sidx_inv_step, self._sidx_max, harq.rtt_slots,
                harq.max_transmissions, harq.chase_combining, la.olla, la.olla_step_up_db,
                self._olla_down, la.olla_max_offset_db, self.m_ue, self.m_slot[k],
                self.mcs_counts, delivered,
            )  # fmt: skip
            if bad >= 0:
                raise ValueError(
                    f"the PRB policy gave PRBs to UE {bad % U} of cell {bad // U}, which has no "
                    "data (has_data=False)"
                )

        # --- smoothed rates ---------------------------------------------------------------
        self.last_rate_bps = delivered / self.slot_s
        self.avg_rate_bps = beta * self.avg_rate_bps + (1.0 - beta) * self.last_rate_bps
        self.n_active_slots += 1
        for listener in self.slot_listeners:
            listener(k)

    @property
    def peak_rate_bps(self) -> float:
        """Peak cell rate: every PRB at the MCS table's highest spectral efficiency, bit/s."""
        return float(self.n_prb * self._rate_per_se * self.tables.se_at_target.max())

    def rate_estimate_bps(self, cell: int, ue: int) -> float:
        """Rate a UE could expect now, bit/s (for offloading estimates, not for scheduling).

        The full-band rate of its latest CSI report at the BLER target (OLLA back-off
        applied), shared equally with the other UEs of its cell that have data now, averaged
        over the TDD pattern's PDSCH slots.
        """
        k = self.clock.next_slot(self.env.now)
        if k >= self.n_slot_total:
            return 0.0
        self._csi(k)
        est_db = self._report_db[cell, ue] - self.olla_offset_db[cell, ue]  # [n_prb]
        se = self.tables.se_at_target[self.tables.sinr_index(est_db)]
        others = int(np.count_nonzero(self.buffer_bits[cell])) - int(self.buffer_bits[cell, ue] > 0)
        # averaged over the TDD pattern: only its PDSCH slots carry the rate
        return float(se.sum() * self._rate_per_se * self._dl_phase.mean()) / (1 + others)

    @property
    def delivered_bits(self) -> FloatArray:
        """Cumulative acknowledged bits per UE, [n_cell, n_ue] (the radio hop reads it)."""
        return self.m_ue[..., sk.M_BITS]

    # Views of the packed metric sums (tests and results read them by name).
    @property
    def m_delivered_bits(self) -> FloatArray:
        """Bits delivered per UE, [n_cell, n_ue]."""
        return self.m_ue[..., sk.M_BITS]

    @property
    def m_tx(self) -> FloatArray:
        """Transmissions per UE (first + retransmissions), [n_cell, n_ue]."""
        return self.m_ue[..., sk.M_TX]

    @property
    def m_nack(self) -> FloatArray:
        """NACKed transmissions per UE, [n_cell, n_ue]."""
        return self.m_ue[..., sk.M_NACK]

    @property
    def m_first_tx(self) -> FloatArray:
        """First transmissions per UE, [n_cell, n_ue]."""
        return self.m_ue[..., sk.M_FIRST_TX]

    @property
    def m_first_nack(self) -> FloatArray:
        """NACKed first transmissions per UE, [n_cell, n_ue]."""
        return self.m_ue[..., sk.M_FIRST_NACK]

    # ------------------------------------------------------------------------------------
    # Results
    # ------------------------------------------------------------------------------------
    def results(self) -> RunResult:
        """Per-UE, per-slot and MCS tables plus headline metrics (see ``scenarios`` docs)."""
        C, U = self.n_cell, self.n_ue
        duration_s = self.n_slot_total * self.slot_s
        m = self.m_ue
        thr_bps = m[..., sk.M_BITS] / duration_s  # [C, U]
        n_tx = m[..., sk.M_TX]
        served = n_tx > 0
        per_tx = m / np.maximum(n_tx, 1.0)[..., None]  # [C, U, sk.M_N] means per transmission
        cell_idx, ue_idx = np.meshgrid(np.arange(C), np.arange(U), indexing="ij")
        pos = self.mobility.positions_at(0.0)
        dist = np.linalg.norm(pos[:, :, :2] - self.layout.bs_position_m[:, None, :2], axis=2)
        # Geometry SINR (TR 38.901 §7.8): every cell at full power over the band, large-scale
        # gains of the latest channel batch — a UE's radio quality whether or not it was served.
        batch = self._batch if self._batch is not None else self.channel_at(0)[0]
        ls = batch.large_scale_gain  # [C, U, C]
        p_prb = float(self.max_power_w[0]) / self.n_prb
        own = ls[np.arange(C), :, np.arange(C)]  # [C, U]
        geometry_sinr_db = 10.0 * np.log10(
            own * p_prb / (self.noise_w + (ls.sum(axis=2) - own) * p_prb)
        )
        ue = pd.DataFrame(
            {
                "cell": cell_idx.ravel(),
                "ue": ue_idx.ravel(),
                "throughput_mbps": thr_bps.ravel() / 1e6,
                "delivered_bits": m[..., sk.M_BITS].ravel(),
                "n_tx": n_tx.ravel().astype(np.int64),
                "n_nack": m[..., sk.M_NACK].ravel().astype(np.int64),
                "bler": np.where(served, per_tx[..., sk.M_NACK], np.nan).ravel(),
                "mean_mcs": np.where(served, per_tx[..., sk.M_MCS], np.nan).ravel(),
                "mean_sinr_db": np.where(served, per_tx[..., sk.M_SINR_DB], np.nan).ravel(),
                "mean_prb": per_tx[..., sk.M_PRB].ravel(),
                "distance_m": dist.ravel(),
                "geometry_sinr_db": geometry_sinr_db.ravel(),
            }
        )
        ms = self.m_slot
        slot = active_slot_table(ms, self.slot_s)
        mcs = pd.DataFrame({"mcs": np.arange(self.tables.n_mcs), "count": self.mcs_counts})
        cell_thr_bps = thr_bps.sum(axis=1)  # [C]
        n_tx_all = int(n_tx.sum())
        n_first = max(int(m[..., sk.M_FIRST_TX].sum()), 1)
        total_prb_slots = self.n_slot_total * self.n_prb * C
        summary = {
            "n_cell": C,
            "n_ue_per_cell": U,
            "n_prb": self.n_prb,
            "n_slots": self.n_slot_total,
            "n_active_slots": self.n_active_slots,
            "cell_throughput_mbps": float(cell_thr_bps.mean() / 1e6),
            "spectral_efficiency_bps_per_hz": float(
                cell_thr_bps.mean() / (self.n_prb * self.prb_hz)
            ),
            "ue_throughput_mean_mbps": float(thr_bps.mean() / 1e6),
            "ue_throughput_median_mbps": float(np.median(thr_bps) / 1e6),
            "ue_throughput_p5_mbps": float(np.percentile(thr_bps, 5) / 1e6),
            "jain_index": jain_index(thr_bps),
            "bler": float(m[..., sk.M_NACK].sum() / n_tx_all) if n_tx_all else float("nan"),
            "bler_first_tx": float(m[..., sk.M_FIRST_NACK].sum() / n_first),
            "mean_mcs": float(m[..., sk.M_MCS].sum() / n_tx_all) if n_tx_all else float("nan"),
            "prb_utilization": float(ms[..., sk.S_PRB].sum() / total_prb_slots),
        }
        return RunResult(tables={"ue": ue, "slot": slot, "mcs": mcs}, summary=summary)


def csi_report(
    sinr_lin: FloatArray, tables: LinkTables, quantization: str
) -> tuple[FloatArray, FloatArray]:
    """The SINR report the gNB uses, from the measured SINR: ``(dB, linear)``, same shape.

    Args:
        sinr_lin: Measured SINR per UE and PRB, [..., n_ue, n_prb], linear.
        tables: Link tables of the carrier (CQI mapping).
        quantization: ``"cqi"`` (TS 38.214 §5.2.2.1) or ``"none"`` (the exact SINR).
    """
    with np.errstate(divide="ignore"):
        sinr_db = 10.0 * np.log10(sinr_lin)
    if quantization == "cqi":
        # TS 38.214 §5.2.2.1: the UE reports the highest CQI meeting 10 % BLER; the gNB
        # maps it back to the lower edge of its SINR interval.
        sinr_db = tables.sinr_of_cqi_db[tables.cqi_of_sinr[tables.sinr_index(sinr_db)]]
    return sinr_db, np.exp(sinr_db * _LN10_OVER_10)


def active_slot_table(m_slot: FloatArray, slot_s: float) -> pd.DataFrame:
    """One row per (slot, cell) that transmitted: the per-slot metric sums of a cell process.

    Args:
        m_slot: Per-slot, per-cell sums, [n_slot, n_cell, ≥ sk.S_N] (fields ``sk.S_*``).
        slot_s: Slot duration, s.

    Returns:
        Columns ``slot, time_s, cell, delivered_bits, n_prb_used, n_tx, n_nack, mean_mcs``, in
        slot then cell order (the rows are ``np.nonzero(m_slot[..., S_TX] > 0)``).
    """
    k_idx, c_idx = np.nonzero(m_slot[..., sk.S_TX] > 0)
    row = m_slot[k_idx, c_idx]  # [n_row, sk.S_N]
    return pd.DataFrame(
        {
            "slot": k_idx,
            "time_s": k_idx * slot_s,
            "cell": c_idx,
            "delivered_bits": row[:, sk.S_BITS],
            "n_prb_used": row[:, sk.S_PRB].astype(np.int64),
            "n_tx": row[:, sk.S_TX].astype(np.int64),
            "n_nack": row[:, sk.S_NACK].astype(np.int64),
            "mean_mcs": row[:, sk.S_MCS] / row[:, sk.S_TX],
        }
    )
