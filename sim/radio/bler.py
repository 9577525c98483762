"""Precomputed link tables for the slot loop: TBS, code-block BLER, MCS selection, CQI.

The code-block BLER comes from Sionna's PDSCH AWGN BLER tables
(``sionna/sys/bler_tables/PDSCH_table{1,2,3}.json``: per MCS, BLER at code-block sizes
24/100/500/1000/2000 bits and 15–20 SNRs from −5 dB). They are interpolated the way
``sionna.sys.PHYAbstraction`` does (``SplineGriddataInterpolation.struct``, degree 1):

* bilinearly in (code-block size, SNR dB) on log10(BLER); zeros of a tabulated MCS are replaced
  by (smallest nonzero log10 BLER of that MCS) − 2 before interpolating, and interpolated values
  below that smallest nonzero BLER are set to 0;
* code-block sizes outside the tabulated range are clamped to it (so K' > 2000 uses the
  2000-bit curve, as in Sionna).

Where this module departs from Sionna, it does so on purpose:

* Each tabulated curve is first made non-increasing in SNR (running minimum): the Monte-Carlo
  tables have a few noisy upticks, and the link adaptation relies on monotone tables.
* Outside the tabulated SNR range Sionna holds the edge value; here log10(BLER) continues along
  the end segment's slope (capped at 0), so BLER → 1 below the table and → 0 above it. This
  matters at high SNR for the top MCS, whose tables end before the waterfall (table 2 MCS 27
  has BLER 0.15 at its last point, 25 dB, and would otherwise never reach 10 %).
* Sionna has no curves for the lowest MCS of each table (table 1: 0–2, table 2: 0–1,
  table 3: 0–8) and returns ``inf`` (a certain NACK) for them. Here such an MCS uses the curve
  of the tabulated MCS with the same modulation and the nearest spectral efficiency, shifted in
  SNR by the difference of the Shannon SNRs 10·log10(2^SE − 1) of the two (constant gap to
  capacity; the gap measured on the QPSK tables is ~1 dB at 500–2000-bit blocks for every rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from edgetwin.sim.radio.link import code_block_segmentation, eesm_beta, load_sionna_table, tbs_table
from edgetwin.sim.radio.nr_tables import cqi_table as _cqi_table
from edgetwin.sim.radio.nr_tables import mcs_table as _mcs_table
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

__all__ = ["LinkTables", "build_link_tables", "code_block_bler"]

# Sionna's category index for PDSCH (0 is PUSCH).
_PDSCH_CATEGORY = "1"
# Floor of log10(BLER) in the extrapolated region (values this low are 0 after thresholding).
_LOG_FLOOR = -30.0
# PRB rows processed at once while tabulating TBLER (bounds the temporaries to ~10 MB).
_ROW_CHUNK = 32
# TS 38.214 §5.2.2.1: CQI tables 1/2 target a TB error probability of 0.1, table 3 of 1e-5.
_CQI_BLER_TARGET = {1: 0.1, 2: 0.1, 3: 1e-5}


@dataclass(frozen=True)
class LinkTables:
    """Lookup tables for one cell configuration (all O(1) indexing in the slot loop).

    SINR axes are the uniform grid ``sinr_grid_db = sinr_min_db + step_db * arange(n_sinr)``;
    a SINR is mapped to its grid index with :meth:`sinr_index` (rounded, clipped to the grid).

    Attributes:
        mcs_table: TS 38.214 MCS table (1, 2 or 3).
        n_mcs: Number of MCS indices without the reserved ones (29 for table 1/3, 28 for
            table 2).
        sinr_min_db: First SINR grid point, dB.
        step_db: SINR grid step, dB.
        n_sinr: Number of grid points.
        bler_target: TBLER target of :attr:`best_mcs`.
        eesm_beta: EESM β per MCS, shape [n_mcs].
        tbs_bits: TBS per (number of PRBs, MCS), shape [n_prb_max + 1, n_mcs]; row 0 is 0.
        tbler: Transport-block BLER per (number of PRBs, MCS, SINR grid index), shape
            [n_prb_max + 1, n_mcs, n_sinr] — code-block BLER from Sionna's PHY-abstraction
            tables at the code-block size TS 38.212 segmentation gives for that TBS, combined
            over the C code blocks as 1 - (1 - BLER_cb)^C. Row 0 (no PRB) is 1.
        best_mcs: Highest MCS whose TBLER ≤ ``bler_target`` per (n_prb, SINR index), shape
            [n_prb_max + 1, n_sinr]; 0 when none qualifies.
        se_at_target: Spectral efficiency (bits/RE) of ``best_mcs`` at a full-band allocation,
            shape [n_sinr] (used for per-PRB achievable-rate estimates); 0 where no MCS meets
            the target.
        cqi_of_sinr: CQI index (0..15) per SINR grid index, shape [n_sinr]: the highest CQI whose
            equivalent MCS (highest MCS of ``mcs_table`` with spectral efficiency ≤ the CQI's)
            meets TBLER ≤ ``cqi_bler_target`` at a full-band allocation (TS 38.214 §5.2.2.1).
        sinr_of_cqi_db: SINR the gNB assumes for a reported CQI (the lower edge of its interval:
            the lowest grid SINR whose CQI is ≥ q), shape [16], dB; non-decreasing. A CQI never
            reached on the grid maps to the last grid point; CQI 0 maps to ``sinr_min_db``.
        cqi_table: TS 38.214 CQI table (1, 2 or 3).
        cqi_bler_target: TB error probability the CQI definition uses: 0.1 for CQI tables 1/2,
            1e-5 for table 3 (TS 38.214 §5.2.2.1).
    """

    mcs_table: int
    n_mcs: int
    sinr_min_db: float
    step_db: float
    n_sinr: int
    bler_target: float
    eesm_beta: FloatArray
    tbs_bits: IntArray
    tbler: FloatArray
    best_mcs: IntArray
    se_at_target: FloatArray
    cqi_of_sinr: IntArray
    sinr_of_cqi_db: FloatArray
    cqi_table: int = 1
    cqi_bler_target: float = 0.1

    @property
    def sinr_grid_db(self) -> FloatArray:
        """The SINR grid, shape [n_sinr], dB."""
        return self.sinr_min_db + self.step_db * np.arange(self.n_sinr, dtype=np.float64)

    @property
    def kernel_sinr_grid(self) -> tuple[float, float, int]:
        """``(sinr_min_db, 1 / step_db, n_sinr − 1)``.

        :meth:`sinr_index` as scalars, for the compiled slot kernels' ``_sinr_index``.
        """
        return float(self.sinr_min_db), 1.0 / float(self.step_db), int(self.n_sinr) - 1

    def sinr_index(self, sinr_db: FloatArray) -> IntArray:
        """Grid index of each SINR (rounded, clipped to the grid), same shape as the input.

        Args:
            sinr_db: SINR, any shape, dB (``-inf`` maps to index 0).

        Returns:
            Indices into the last axis of the SINR tables, int64, shape of ``sinr_db``.
        """
        idx = np.rint((np.asarray(sinr_db) - self.sinr_min_db) / self.step_db)
        return np.clip(idx, 0, self.n_sinr - 1).astype(np.int64)


# ------------------------------------------------------------------------------------------
# Code-block BLER curves
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CbCurves:
    """Sionna's BLER curves of one MCS table in log10 form, one entry per MCS index."""

    cbs_bits: FloatArray  # [n_cbs] tabulated code-block sizes K'
    snr_db: tuple[FloatArray, ...]  # per MCS: [n_snr_m] SNR axis (shifted for filled MCS)
    log_bler: tuple[FloatArray, ...]  # per MCS: [n_cbs, n_snr_m] log10(BLER) with zero floor
    min_log: FloatArray  # [n_mcs] log10 of the smallest nonzero tabulated BLER
    source_mcs: IntArray  # [n_mcs] tabulated MCS each curve comes from


def _shannon_snr_db(se: float) -> float:
    """SNR at which the AWGN capacity equals ``se`` bits/symbol, 10·log10(2^SE − 1) (Shannon)."""
    return float(10.0 * np.log10(2.0**se - 1.0))


@cache
def _cb_curves(mcs_table: int) -> _CbCurves:
    """Load and prepare Sionna's PDSCH BLER table for one MCS table (cached)."""
    tab = _mcs_table(mcs_table)
    path = f"sys/bler_tables/PDSCH_table{mcs_table}.json"
    raw = load_sionna_table(path)["category"][_PDSCH_CATEGORY]["index"][str(mcs_table)]["MCS"]
    cbs = np.array(sorted({int(c) for e in raw.values() for c in e["CBS"]}), dtype=np.float64)

    snr: dict[int, FloatArray] = {}
    logs: dict[int, FloatArray] = {}
    mins: dict[int, float] = {}
    for key, entry in raw.items():
        m = int(key)
        own_cbs = np.array([int(c) for c in entry["CBS"]], dtype=np.float64)
        order = np.argsort(own_cbs)
        # [n_cbs_own, n_snr]; running minimum along SNR removes Monte-Carlo upticks.
        bler = np.array([entry["CBS"][c]["BLER"] for c in entry["CBS"]], np.float64)[order]
        bler = np.minimum.accumulate(np.clip(bler, 0.0, 1.0), axis=1)
        nonzero = bler > 0
        if not nonzero.any():
            log = np.full(bler.shape, _LOG_FLOOR)
            min_log = _LOG_FLOOR + 1.0
        else:
            with np.errstate(divide="ignore"):
                log = np.log10(bler)
            min_log = float(log[nonzero].min())
            log[~nonzero] = min_log - 2.0  # Sionna's zero replacement
        if own_cbs.size != cbs.size or np.any(own_cbs[order] != cbs):
            # Resample onto the table's common CBS axis (linear in CBS, clamped).
            log = np.array([np.interp(cbs, own_cbs[order], col) for col in log.T]).T
        snr[m] = np.asarray(entry["SNR_db"], np.float64)
        logs[m] = log
        mins[m] = min_log
    if not snr:
        raise ValueError(f"{path} holds no BLER curve for MCS table {mcs_table}")

    tabulated = np.array(sorted(snr), dtype=np.int64)
    se = tab.spectral_efficiency
    snr_out: list[FloatArray] = []
    log_out: list[FloatArray] = []
    min_out = np.empty(tab.n_mcs)
    source = np.empty(tab.n_mcs, dtype=np.int64)
    for m in range(tab.n_mcs):
        if m in snr:
            r, shift = m, 0.0
        else:
            # Same modulation, nearest spectral efficiency; constant gap to capacity.
            same = tabulated[tab.qm[tabulated] == tab.qm[m]]
            pool = same if same.size else tabulated
            r = int(pool[np.argmin(np.abs(se[pool] - se[m]))])
            shift = _shannon_snr_db(float(se[m])) - _shannon_snr_db(float(se[r]))
        snr_out.append(snr[r] + shift)
        log_out.append(logs[r])
        min_out[m] = mins[r]
        source[m] = r
    return _CbCurves(cbs, tuple(snr_out), tuple(log_out), min_out, source)


def _log_curves_at(curves: _CbCurves, mcs: int, sinr_db: FloatArray) -> FloatArray:
    """log10(BLER) of every tabulated CBS of one MCS at arbitrary SINRs.

    Linear in SNR inside the table; outside it, the end segments' slopes (capped at 0) are
    continued and the result is clipped to [_LOG_FLOOR, 0].

    Args:
        curves: Prepared table.
        mcs: MCS index.
        sinr_db: SINR, shape [...], dB.

    Returns:
        log10(BLER), shape [n_cbs, ...].
    """
    s = curves.snr_db[mcs]
    out = np.empty((curves.cbs_bits.size, *np.shape(sinr_db)))
    below = sinr_db < s[0]
    above = sinr_db > s[-1]
    for c, row in enumerate(curves.log_bler[mcs]):
        v = np.interp(sinr_db, s, row)
        k0 = min(0.0, (row[1] - row[0]) / (s[1] - s[0]))
        kn = min(0.0, (row[-1] - row[-2]) / (s[-1] - s[-2]))
        v = np.where(below, row[0] + k0 * (sinr_db - s[0]), v)
        v = np.where(above, row[-1] + kn * (sinr_db - s[-1]), v)
        out[c] = v
    return np.clip(out, _LOG_FLOOR, 0.0)


def _cbs_weights(cbs_axis: FloatArray, cbs_bits: IntArray) -> tuple[IntArray, FloatArray]:
    """Lower bracket index and weight of the upper bracket for linear interpolation in CBS."""
    k = np.clip(np.asarray(cbs_bits, np.float64), cbs_axis[0], cbs_axis[-1])
    i = np.clip(np.searchsorted(cbs_axis, k, side="right") - 1, 0, max(cbs_axis.size - 2, 0))
    if cbs_axis.size == 1:
        return i.astype(np.int64), np.zeros_like(k)
    w = (k - cbs_axis[i]) / (cbs_axis[i + 1] - cbs_axis[i])
    return i.astype(np.int64), np.clip(w, 0.0, 1.0)


def _to_bler(log_bler: FloatArray, min_log: FloatArray | float) -> FloatArray:
    """10^log with Sionna's rule: values below the smallest tabulated nonzero BLER become 0."""
    return np.where(log_bler < min_log, 0.0, np.exp(log_bler * np.log(10.0)))


def code_block_bler(
    mcs_index: int,
    code_block_bits: IntArray | int,
    sinr_db: FloatArray | float,
    *,
    mcs_table: int = 1,
) -> FloatArray:
    """AWGN BLER of one LDPC code block from Sionna's PDSCH tables (see the module notes).

    Args:
        mcs_index: MCS index of ``mcs_table``.
        code_block_bits: Code-block size K' (TS 38.212 §5.2.2, CRC included), any shape, bits;
            clamped to the tabulated 24..2000.
        sinr_db: (Effective) SINR, broadcastable with ``code_block_bits``, dB.
        mcs_table: TS 38.214 MCS table 1..3.

    Returns:
        Code-block error probability, broadcast shape.

    Raises:
        ValueError: If the MCS does not exist.
        FileNotFoundError: If Sionna's JSON table cannot be found.
    """
    if not 0 <= mcs_index < _mcs_table(mcs_table).n_mcs:
        raise ValueError(f"mcs_index {mcs_index!r} is not an MCS of table {mcs_table}")
    curves = _cb_curves(mcs_table)
    k, s = np.broadcast_arrays(np.asarray(code_block_bits), np.asarray(sinr_db, np.float64))
    logs = _log_curves_at(curves, mcs_index, s)  # [n_cbs, ...]
    i, w = _cbs_weights(curves.cbs_bits, k)
    lo = np.take_along_axis(logs, i[None], axis=0)[0]
    hi = np.take_along_axis(logs, np.minimum(i + 1, curves.cbs_bits.size - 1)[None], axis=0)[0]
    return _to_bler((1.0 - w) * lo + w * hi, float(curves.min_log[mcs_index]))


# ------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------
def _highest_true(ok: BoolArray, axis: int) -> tuple[IntArray, BoolArray]:
    """Index of the last True along ``axis`` and whether there is any."""
    n = ok.shape[axis]
    last = n - 1 - np.argmax(np.flip(ok, axis=axis), axis=axis)
    return last.astype(np.int64), np.asarray(ok.any(axis=axis), dtype=np.bool_)


# At most 8 kept: one table of 273 PRBs is ~38 MB.
@lru_cache(maxsize=8)
def build_link_tables(
    *,
    n_prb_max: int,
    n_symbols: int,
    mcs_table: int = 1,
    cqi_table: int = 1,
    n_layers: int = 1,
    dmrs_re_per_prb: int = 12,
    overhead_re_per_prb: int = 0,
    bler_target: float = 0.1,
    sinr_min_db: float = -15.0,
    sinr_max_db: float = 45.0,
    step_db: float = 0.1,
) -> LinkTables:
    """Tabulate TBS, TBLER, MCS selection and CQI mapping for one cell configuration.

    TBS per TS 38.214 §5.1.3.2, code blocks per TS 38.212 §5.2.2, TBLER = 1 − (1 − BLER_cb)^C,
    CQI per TS 38.214 §5.2.2.1 (see :class:`LinkTables`). About 0.1 s and 38 MB (``tbler`` in
    float64) for 273 PRBs × 29 MCS × 601 SINRs.

    Args:
        n_prb_max: PRBs of the carrier (rows 0..n_prb_max).
        n_symbols: PDSCH symbols per slot, 1..14.
        mcs_table: TS 38.214 MCS table 1..3.
        cqi_table: TS 38.214 CQI table 1..3.
        n_layers: MIMO layers ν.
        dmrs_re_per_prb: DM-RS REs per PRB per slot.
        overhead_re_per_prb: xOverhead REs per PRB.
        bler_target: TBLER target of the MCS selection, in (0, 1).
        sinr_min_db: First SINR grid point, dB.
        sinr_max_db: Last SINR grid point (rounded to the step), dB.
        step_db: SINR grid step, dB.

    Returns:
        The tables.

    Raises:
        ValueError: On an out-of-range argument.
        FileNotFoundError: If Sionna's JSON tables cannot be found.
    """
    if mcs_table not in (1, 2, 3):
        raise ValueError(f"mcs_table must be 1, 2 or 3 (got {mcs_table!r})")
    if n_prb_max < 1:
        raise ValueError(f"n_prb_max must be >= 1 (got {n_prb_max!r})")
    if not 0.0 < bler_target < 1.0:
        raise ValueError(f"bler_target must be in (0, 1) (got {bler_target!r})")
    if not step_db > 0.0 or not sinr_max_db > sinr_min_db:
        raise ValueError("need step_db > 0 and sinr_max_db > sinr_min_db")
    mcs = _mcs_table(mcs_table)
    cqi = _cqi_table(cqi_table)
    n_mcs = mcs.n_mcs
    n_sinr = round((sinr_max_db - sinr_min_db) / step_db) + 1
    grid = sinr_min_db + step_db * np.arange(n_sinr, dtype=np.float64)

    # --- TBS and code blocks per (n_prb, MCS) ------------------------------------------------
    tbs = tbs_table(
        n_prb_max,
        n_symbols,
        mcs_table=mcs_table,
        n_layers=n_layers,
        dmrs_re_per_prb=dmrs_re_per_prb,
        overhead_re_per_prb=overhead_re_per_prb,
    )
    # [n_prb_max, n_mcs] for 1..n_prb_max PRBs
    n_cb, k_cb = code_block_segmentation(tbs[1:], mcs.code_rate[None, :])

    # --- code-block log-BLER on the grid, per MCS and tabulated CBS -----------------------
    curves = _cb_curves(mcs_table)
    n_cbs = curves.cbs_bits.size
    # [n_mcs, n_cbs, n_sinr]
    log_grid = np.stack([_log_curves_at(curves, m, grid) for m in range(n_mcs)])
    i_cbs, w_cbs = _cbs_weights(curves.cbs_bits, k_cb)  # [n_prb_max, n_mcs]
    i_hi = np.minimum(i_cbs + 1, n_cbs - 1)
    mcs_idx = np.arange(n_mcs)[None, :]
    min_log = curves.min_log[None, :, None]

    # --- TBLER = 1 − (1 − BLER_cb)^C, in row chunks --------------------------------------------
    tbler = np.empty((n_prb_max + 1, n_mcs, n_sinr))
    tbler[0] = 1.0  # no PRB: nothing can be decoded
    for start in range(0, n_prb_max, _ROW_CHUNK):
        rows = slice(start, min(start + _ROW_CHUNK, n_prb_max))
        w = w_cbs[rows][..., None]
        # [rows, n_mcs, n_sinr]
        log_cb = (1.0 - w) * log_grid[mcs_idx, i_cbs[rows]] + w * log_grid[mcs_idx, i_hi[rows]]
        bler_cb = _to_bler(log_cb, min_log)
        with np.errstate(divide="ignore"):
            log_ok = np.log1p(-bler_cb)
        tbler[start + 1 : rows.stop + 1] = -np.expm1(n_cb[rows][..., None] * log_ok)

    # --- MCS selection ------------------------------------------------------------------
    best, any_ok = _highest_true(tbler <= bler_target, axis=1)  # [n_prb_max + 1, n_sinr]
    best_mcs = np.where(any_ok, best, 0)
    se_at_target = np.where(any_ok[n_prb_max], mcs.spectral_efficiency[best_mcs[n_prb_max]], 0.0)

    # --- CQI (TS 38.214 §5.2.2.1) ---------------------------------------------------------
    # Equivalent MCS of CQI q: the highest MCS whose efficiency is ≤ the CQI's (MCS 0 if none).
    fits = mcs.spectral_efficiency[None, :] <= cqi.exact_efficiency[1:, None] + 1e-12
    eq_mcs, has_eq = _highest_true(fits, axis=1)
    eq_mcs = np.where(has_eq, eq_mcs, 0)  # [15]
    cqi_target = _CQI_BLER_TARGET[cqi_table]
    ok_cqi = tbler[n_prb_max, eq_mcs, :] <= cqi_target  # [15, n_sinr]
    top, any_cqi = _highest_true(ok_cqi, axis=0)
    cqi_of_sinr = np.where(any_cqi, top + 1, 0).astype(np.int64)
    first = np.searchsorted(cqi_of_sinr, np.arange(16), side="left")  # cqi_of_sinr is sorted
    sinr_of_cqi_db = grid[np.minimum(first, n_sinr - 1)]

    tables = LinkTables(
        mcs_table=mcs_table,
        n_mcs=n_mcs,
        sinr_min_db=float(sinr_min_db),
        step_db=float(step_db),
        n_sinr=n_sinr,
        bler_target=float(bler_target),
        eesm_beta=eesm_beta(mcs_table),
        tbs_bits=tbs,
        tbler=tbler,
        best_mcs=best_mcs.astype(np.int64),
        se_at_target=se_at_target.astype(np.float64),
        cqi_of_sinr=cqi_of_sinr,
        sinr_of_cqi_db=sinr_of_cqi_db,
        cqi_table=cqi_table,
        cqi_bler_target=cqi_target,
    )
    # Cached and shared by every cell built with the same arguments (a batch of 256 cells, or
    # every episode of an env, builds them once): read-only so no user can alter another's.
    for value in vars(tables).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return tables
