"""A batch of independent one-cell simulations advanced together: one kernel call per slot.

Why: an RL vector env or a many-seed study steps B cells that never interact. Stepped one by one,
each pays the Python around the compiled slot kernels (SimPy, decision points, ~100 numpy calls
per slot); stacked on a leading member axis, the B cells of a slot cost one call of each kernel
and one pass of array operations, the way :class:`~edgetwin.sim.radio.cell.CellGroup` already
batches the cells of one network.

Members are :class:`CellGroup` objects of one-cell scenarios, each built from its own seed
(``edgetwin.scenarios.batch.build_cell_batch``); the batch takes their random sources — channel
model, traffic source, HARQ stream — and runs the slot phases of ``CellGroup`` on stacked state.
Every member is therefore bit-identical to its seed run alone with the same decisions
(``tests/sim/radio/test_cell_batch.py``): same draws, same arithmetic per element, the same
kernels. Members may sit at different slots (idle skipping and TDD make their decision slots
diverge); full-buffer FDD members move in lock step, which is the fast path.

A member's cycle: :meth:`prepare` runs it to its next slot with a PRB decision (arrivals, idle
skip, CSI, HARQ eligibility, rate estimate); :meth:`observation` gives the decision's inputs for
all members; :meth:`transmit` applies PRB maps and powers (EESM, MCS, TBLER, HARQ, OLLA) and
updates the smoothed rates. :meth:`replace` swaps in a fresh member (an env's autoreset).

Not kept per member (the batch serves environments and summary statistics): the per-slot metric
table and the MCS histogram (``CellGroup.results``'s ``slot`` and ``mcs`` tables); per-UE sums
(``m_ue``) are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetwin.sim.radio import slot_kernels as sk
from edgetwin.sim.radio.cell import CellGroup, csi_report
from edgetwin.sim.radio.channel import StatisticalChannel, next_batches
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

_NO_INTERFERENCE = np.zeros((0, 0))
_NO_ROWS = np.zeros(0, dtype=np.int64)


class CellBatch:
    """B independent one-cell members with stacked state (see the module docstring).

    Args:
        members: One-cell :class:`CellGroup` objects of the same configuration (carrier, UEs,
            link adaptation, channel batch length), freshly built and not started.
        record: Also keep each member's per-slot metric sums and MCS histogram, so that
            :meth:`write_back` can give every member what a scenario run leaves in it (its
            ``results()`` tables equal the run's).

    Raises:
        ValueError: An empty list, a member with more than one cell, or members that differ in
            configuration or dimensions.
    """

    def __init__(self, members: list[CellGroup], *, record: bool = False) -> None:
        if not members:
            raise ValueError("a cell batch needs at least one member")
        head = members[0]
        self._check(head)
        self.config = head.config
        self.n_member = len(members)
        self.n_ue, self.n_prb = head.n_ue, head.n_prb
        self.slot_s = head.slot_s
        self.n_slot_total = head.n_slot_total
        self.tables = head.tables
        self.noise_w = head.noise_w
        self.max_power_w = np.full(self.n_member, float(head.max_power_w[0]))
        self.peak_rate_bps = head.peak_rate_bps
        la = self.config.link_adaptation
        # Slots of CSI history the report can reach back (delay + period) below a batch.
        self._lookback = la.cqi_delay_slots + la.cqi_period_slots
        self._batch_slots = head.batch_slots
        for member in members[1:]:
            self._check(member)
        B, U, P = self.n_member, self.n_ue, self.n_prb
        H, S, R = self.config.harq.n_processes, self._batch_slots, self._lookback
        self.members: list[CellGroup] = list(members)

        # --- stacked state (member axis first; every array a CellGroup's [1, ...] × B) -----
        self.buffer_bits: FloatArray = np.zeros((B, U))
        self.retx_bits: FloatArray = np.zeros((B, U))
        self.olla_offset_db: FloatArray = np.zeros((B, U))
        self.avg_rate_bps: FloatArray = np.zeros((B, U))
        self.last_rate_bps: FloatArray = np.zeros((B, U))
        self.ue_mask: BoolArray = np.ones((B, U), dtype=bool)
        self.h_int: IntArray = np.zeros((B, U, H, sk.HI_N), dtype=np.int64)
        self.h_flt: FloatArray = np.zeros((B, U, H, sk.HF_N))
        self.h_retx: BoolArray = np.zeros((B, U, H), dtype=bool)
        self.last_mcs: IntArray = np.zeros((B, U), dtype=np.int64)
        self.m_ue: FloatArray = np.zeros((B, U, sk.M_N))
        self.slot: IntArray = np.zeros(B, dtype=np.int64)  # each member's current slot
        self.done: BoolArray = np.zeros(B, dtype=bool)  # reached the horizon
        self.n_active_slots: IntArray = np.zeros(B, dtype=np.int64)
        self._last_active = np.full(B, -1, dtype=np.int64)
        self._report_slot = np.full(B, -1, dtype=np.int64)
        self._report_db: FloatArray = np.zeros((B, U, P))
        self._report_lin: FloatArray = np.zeros((B, U, P))
        # Channel rows per member: the last R slots of the previous batch, then the current
        # batch of S slots ([R + S, B, U, P]); a member's batch n covers slots n·S .. n·S+S−1.
        self._gain: FloatArray = np.zeros((R + S, B, U, P))
        self._n_channel_batches = np.zeros(B, dtype=np.int64)
        self._harq_u: FloatArray = np.zeros((S, B, U))
        self._n_harq_batches = np.zeros(B, dtype=np.int64)
        # Decision inputs of the pending slot (outputs of the eligibility kernel).
        self.has_data: BoolArray = np.zeros((B, U), dtype=bool)
        self.has_retx: BoolArray = np.zeros((B, U), dtype=bool)
        self.est_db: FloatArray = np.zeros((B, U, P))
        self.rate_bps: FloatArray = np.zeros((B, U, P))
        self._delivered: FloatArray = np.zeros((B, U))
        self._m_slot_k: FloatArray = np.zeros((B, sk.S_N))
        self._mcs_counts: IntArray = np.zeros(self.tables.n_mcs, dtype=np.int64)
        self.record = record
        n_rec = self.n_slot_total if record else 0
        self.m_slot: FloatArray = np.zeros((n_rec, B, sk.S_N))  # per slot and member
        self.mcs_counts: IntArray = np.zeros((B if record else 0, self.tables.n_mcs), np.int64)
        self._sidx = self.tables.kernel_sinr_grid
        self._rate_per_se = head._rate_per_se
        self._p_eq = head._p_eq
        self._olla_down = head._olla_down
        self._dl_phase = head._dl_phase
        # Lock step: every member has data in every slot and every slot carries PDSCH, so all
        # members sit at the same slot and each step is one vectorized pass.
        self._lockstep_ok = bool(self._dl_phase.all()) and all(
            m.traffic.full_buffer for m in members
        )
        for b, member in enumerate(members):
            self._load(b, member)

    # ------------------------------------------------------------------------------------
    # Members
    # ------------------------------------------------------------------------------------
    def _check(self, member: CellGroup) -> None:
        if member.n_cell != 1:
            raise ValueError(f"a cell batch member must have one cell, got {member.n_cell}")
        if hasattr(self, "config") and (
            member.config != self.config
            or (member.n_ue, member.n_prb, member.n_slot_total, member.batch_slots)
            != (self.n_ue, self.n_prb, self.n_slot_total, self._batch_slots)
        ):
            raise ValueError(
                "cell batch members must share the cell configuration, UEs per cell, PRBs, "
                "horizon and channel batch length"
            )

    def replace(self, b: int, member: CellGroup) -> None:
        """Put a freshly built member in row ``b`` (e.g. an env's new episode)."""
        self._check(member)
        self.members[b] = member
        self._load(b, member)
        self._lockstep_ok = bool(self._dl_phase.all()) and all(
            m.traffic.full_buffer for m in self.members
        )

    def _load(self, b: int, member: CellGroup) -> None:
        """Row ``b`` takes ``member``'s initial state (as its ``_init_state`` made it)."""
        self.buffer_bits[b] = member.buffer_bits[0]
        for arr in (
            self.retx_bits, self.olla_offset_db, self.avg_rate_bps, self.last_rate_bps,
            self.h_int, self.h_flt, self.h_retx, self.last_mcs, self.m_ue,
        ):  # fmt: skip
            arr[b] = 0
        self.ue_mask[b] = member.ue_mask[0]
        self.slot[b] = 0
        self.done[b] = False
        self.n_active_slots[b] = 0
        self._last_active[b] = -1
        self._report_slot[b] = -1
        self._n_channel_batches[b] = 0
        self._n_harq_batches[b] = 0

    # ------------------------------------------------------------------------------------
    # Random sources (the members' own, consumed by slot index as CellGroup does)
    # ------------------------------------------------------------------------------------
    def _ensure_sources(self, idx: IntArray) -> None:
        """Channel and HARQ batches holding each member's current slot (members ``idx``)."""
        S = self._batch_slots
        need = self.slot[idx] // S  # batch number of the slot
        while True:
            late = idx[self._n_channel_batches[idx] <= need]
            if late.size == 0:
                break
            self._next_channel_batches(late)
        while True:
            late = idx[self._n_harq_batches[idx] <= need]
            if late.size == 0:
                break
            for b in late:
                # CellGroup._harq_uniforms: [batch_slots, n_cell, n_ue] per batch.
                rng = self.members[b]._harq_rng
                self._harq_u[:, b] = rng.random((S, 1, self.n_ue))[:, 0]
                self._n_harq_batches[b] += 1

    def _next_channel_batches(self, idx: IntArray) -> None:
        """Generate the next channel batch of members ``idx`` (jointly when statistical)."""
        R = self._lookback
        channels = [self.members[b].channel for b in idx]
        if all(isinstance(ch, StatisticalChannel) for ch in channels):
            batches = next_batches(channels)  # type: ignore[arg-type]
        else:
            batches = [ch.next_batch() for ch in channels]
        if R:
            self._gain[:R, idx] = self._gain[-R:, idx]
        for b, batch in zip(idx, batches, strict=True):
            self._gain[R:, b] = batch.gain[:, 0]
            member = self.members[b]  # as channel_at leaves it (results read the latest batch)
            member._prev_batch, member._batch = member._batch, batch
        self._n_channel_batches[idx] += 1

    def _gain_row(self, b: IntArray, k: IntArray) -> IntArray:
        """Row of ``self._gain`` holding slot ``k`` of members ``b``."""
        first = (self._n_channel_batches[b] - 1) * self._batch_slots
        return k - first + self._lookback

    # ------------------------------------------------------------------------------------
    # Slot phases
    # ------------------------------------------------------------------------------------
    def prepare(self, idx: IntArray) -> None:
        """Run members ``idx`` (sorted) to their next slot with a PRB decision, or the horizon.

        Mirrors ``CellGroup._run`` and the first half of ``CellGroup._slot``: arrivals, idle
        skip, closed-form catch-up of the smoothed rates, CSI, HARQ eligibility. A slot with
        data but no eligible UE (every HARQ process busy) runs without a transmission, as in a
        scenario run, and the member moves on.
        """
        idx = np.asarray(idx, dtype=np.int64)
        while idx.size:
            if self._lockstep_ok:
                ready = idx[self.slot[idx] < self.n_slot_total]
            else:
                ready = np.array([b for b in idx if self._skip_to_active(int(b))], dtype=np.int64)
            self.done[idx] = self.slot[idx] >= self.n_slot_total
            if ready.size == 0:
                return
            self._catch_up(ready)
            self._csi(ready)
            self._eligibility(ready)
            waiting = ready[~self.has_data[ready].any(axis=1)]
            if waiting.size:
                # No eligible UE: the slot passes without a decision or transmission.
                self._finish_slot(waiting, np.zeros((waiting.size, self.n_ue)))
            idx = waiting

    def _skip_to_active(self, b: int) -> bool:
        """Member ``b`` to its next slot with data and PDSCH (CellGroup._run); False at the end."""
        member = self.members[b]
        traffic = member.traffic
        n_total = self.n_slot_total
        k = int(self.slot[b])
        skip = self.config.idle_skip
        while k < n_total:
            arrivals = traffic.arrivals(k)
            if arrivals is not None:
                self.buffer_bits[b] += arrivals[0]
            has_data = self.buffer_bits[b].any()
            if has_data and self._dl_phase[k % self._dl_phase.size]:
                self.slot[b] = k
                return True
            if has_data or not skip:
                k += 1
            else:
                k = max(k + 1, traffic.next_arrival_slot(k + 1, n_total))
        self.slot[b] = k
        return False

    def _catch_up(self, idx: IntArray) -> None:
        """Closed-form decay of the smoothed rates over skipped slots (CellGroup._slot)."""
        last = self._last_active[idx]
        gap = np.where(last >= 0, self.slot[idx] - last, 1)
        self._last_active[idx] = self.slot[idx]
        decay = gap > 1
        if decay.any():
            beta = self.config.avg_beta
            for b, g in zip(idx[decay], gap[decay], strict=True):
                self.avg_rate_bps[b] *= beta ** (g - 1)

    def _csi(self, idx: IntArray) -> None:
        """Refresh the CSI reports of members ``idx`` whose measurement slot moved."""
        self._ensure_sources(idx)
        la = self.config.link_adaptation
        period = la.cqi_period_slots
        m = np.maximum(0, ((self.slot[idx] - la.cqi_delay_slots) // period) * period)
        stale = m != self._report_slot[idx]
        if not stale.any():
            return
        b, m = idx[stale], m[stale]
        self._report_slot[b] = m
        # CSI-RS at equal power per PRB; one cell, so no interference (noise + 0 W as in
        # CellGroup._csi, which keeps the arithmetic identical).
        sinr_lin = self._gain[self._gain_row(b, m), b] * self._p_eq / (self.noise_w + 0.0)
        report_db, report_lin = csi_report(sinr_lin, self.tables, la.cqi_quantization)
        self._report_db[b] = report_db
        self._report_lin[b] = report_lin

    def _eligibility(self, idx: IntArray) -> None:
        """HARQ eligibility and per-PRB rate estimates of members ``idx`` (compiled kernel)."""
        lo, inv_step, hi = self._sidx
        if idx.size == self.n_member:  # all rows: no gather
            sk.eligibility_and_rates(
                self.slot, self.h_int, self.h_retx, self.buffer_bits, self.retx_bits,
                self._report_db, self.olla_offset_db, self.tables.se_at_target,
                self._rate_per_se, lo, inv_step, hi, self.has_data, self.has_retx, self.est_db,
                self.rate_bps,
            )  # fmt: skip
            return
        has_data = np.empty((idx.size, self.n_ue), dtype=bool)
        has_retx = np.empty_like(has_data)
        est_db = np.empty((idx.size, self.n_ue, self.n_prb))
        rate_bps = np.empty_like(est_db)
        sk.eligibility_and_rates(
            self.slot[idx], self.h_int[idx], self.h_retx[idx], self.buffer_bits[idx],
            self.retx_bits[idx], self._report_db[idx], self.olla_offset_db[idx],
            self.tables.se_at_target, self._rate_per_se, lo, inv_step, hi, has_data, has_retx,
            est_db, rate_bps,
        )  # fmt: skip
        self.has_data[idx], self.has_retx[idx] = has_data, has_retx
        self.est_db[idx], self.rate_bps[idx] = est_db, rate_bps

    def observation(self) -> dict[str, Any]:
        """The PRB decision's inputs of every member, as ``CellGroup``'s ``prb`` observation.

        Arrays have the member axis first (where ``CellGroup`` has its cell axis) and are
        views of the batch's state: copy what you keep. ``slot`` is int64 [n_member].
        """
        return {
            "slot": self.slot,
            "rate_bps": self.rate_bps,
            "last_rate_bps": self.last_rate_bps,
            "avg_rate_bps": self.avg_rate_bps,
            "buffer_bits": self.buffer_bits,
            "has_data": self.has_data,
            "ue_mask": self.ue_mask,
            "sinr_db": self.est_db,
            "olla_offset_db": self.olla_offset_db,
            "mcs": self.last_mcs,
            "n_tx": self.m_ue[..., sk.M_TX],
            "n_nack": self.m_ue[..., sk.M_NACK],
        }

    def power_observation(self, alloc: IntArray, *, with_gains: bool = True) -> dict[str, Any]:
        """The power decision's inputs: :meth:`observation` plus the PRB map and gains.

        ``with_gains=False`` leaves out ``gain_over_noise_per_w`` ([n_member, n_ue, n_prb],
        one exp per entry), which an env agent's observation does not use.
        """
        obs = {**self.observation(), "alloc": alloc, "max_power_w": self.max_power_w}
        if with_gains:
            obs["gain_over_noise_per_w"] = (
                self._report_lin
                * np.exp(-self.olla_offset_db * (np.log(10.0) / 10.0))[:, :, None]
                / self._p_eq
            )
        return obs

    def transmit(self, idx: IntArray, alloc: IntArray, power_w: FloatArray) -> None:
        """Transmit the pending slot of members ``idx`` and move them one slot on.

        Args:
            idx: Members that act (sorted; each at a pending decision).
            alloc: UE per PRB of every member, int64 [n_member, n_prb] (rows not in ``idx``
                are ignored), −1 = unused.
            power_w: Watts per PRB of every member, [n_member, n_prb].

        Raises:
            ValueError: A PRB given to a UE without data (names the member and the UE).
        """
        B = self.n_member
        act = np.zeros(B, dtype=bool)
        act[idx] = True
        alloc = np.where(act[:, None], alloc, -1).astype(np.int64, copy=False)
        power_w = np.where(alloc >= 0, np.asarray(power_w, dtype=np.float64), 0.0)
        self._ensure_sources(idx)
        rows = np.zeros(B, dtype=np.int64)
        rows[idx] = self._gain_row(idx, self.slot[idx])
        harq_u = self._harq_u[self.slot % self._batch_slots, np.arange(B)]
        harq, la = self.config.harq, self.config.link_adaptation
        lo, inv_step, hi = self._sidx
        t = self.tables
        if self.record:
            n_tx_before = self.m_ue[..., sk.M_TX].copy()
        bad = sk.transmit(
            self.slot, alloc, power_w, self._gain, rows, _NO_INTERFERENCE, _NO_ROWS,
            self.noise_w, self._report_lin, self.olla_offset_db, self.last_mcs, self.has_data,
            self.has_retx, self.buffer_bits, self.retx_bits, self.h_int, self.h_flt,
            self.h_retx, harq_u, t.best_mcs, t.tbs_bits, t.tbler, t.eesm_beta, lo, inv_step, hi,
            harq.rtt_slots, harq.max_transmissions, harq.chase_combining, la.olla,
            la.olla_step_up_db, self._olla_down, la.olla_max_offset_db, self.m_ue,
            self._m_slot_k, self._mcs_counts, self._delivered,
        )  # fmt: skip
        if bad >= 0:
            raise ValueError(
                f"the PRB map of member {bad // self.n_ue} gives PRBs to UE {bad % self.n_ue}, "
                "which has no data (has_data=False)"
            )
        idx = np.asarray(idx, dtype=np.int64)
        if self.record:
            self.m_slot[self.slot[idx], idx] = self._m_slot_k[idx]
            b_tx, u_tx = np.nonzero(self.m_ue[..., sk.M_TX] > n_tx_before)
            np.add.at(self.mcs_counts, (b_tx, self.last_mcs[b_tx, u_tx]), 1)
        self._finish_slot(idx, self._delivered if idx.size == B else self._delivered[idx])

    def write_back(self) -> None:
        """Leave in every member the state a scenario run leaves in its cell (needs ``record``).

        Its ``results()`` then reads the batch's metrics: per-UE sums, per-slot sums, MCS
        histogram, buffers, smoothed rates and link-adaptation state.
        """
        if not self.record:
            raise RuntimeError("write_back needs a CellBatch built with record=True")
        for b, m in enumerate(self.members):
            m.m_ue[0] = self.m_ue[b]  # in place: the observation views stay valid
            m.m_slot[:, 0] = self.m_slot[:, b]
            m.mcs_counts[:] = self.mcs_counts[b]
            m.n_active_slots = int(self.n_active_slots[b])
            m.buffer_bits[0] = self.buffer_bits[b]
            m.retx_bits[0] = self.retx_bits[b]
            m.olla_offset_db[0] = self.olla_offset_db[b]
            m.avg_rate_bps = self.avg_rate_bps[b : b + 1].copy()
            m.last_rate_bps = self.last_rate_bps[b : b + 1].copy()
            m.last_mcs[0] = self.last_mcs[b]

    def _finish_slot(self, idx: IntArray, delivered: FloatArray) -> None:
        """Smoothed rates after the slot of members ``idx`` (CellGroup._slot's last phase)."""
        beta = self.config.avg_beta
        rows: slice | IntArray = slice(None) if idx.size == self.n_member else idx  # no gather
        last = delivered / self.slot_s
        self.last_rate_bps[rows] = last
        self.avg_rate_bps[rows] = beta * self.avg_rate_bps[rows] + (1.0 - beta) * last
        self.n_active_slots[rows] += 1
        self.slot[rows] += 1
