"""Link abstraction as pure functions: MCS/CQI tables, TBS, EESM (TS 38.214, TS 38.212).

The TBS follows TS 38.214 §5.1.3.2 bit-exactly (integer arithmetic, no float rounding), the
code-block segmentation TS 38.212 §5.2.2 with the LDPC base graph of §7.2.2. EESM β values and
(in :mod:`edgetwin.sim.radio.bler`) the AWGN code-block BLER curves are Sionna's calibrated JSON
tables, read from the installed ``sionna`` package without importing it (importing it pulls in
torch, ~5 s).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from edgetwin.sim.radio.nr_tables import TBS_SMALL_TABLE_BITS
from edgetwin.sim.radio.nr_tables import cqi_table as _cqi_table
from edgetwin.sim.radio.nr_tables import mcs_table as _mcs_table
from edgetwin.sim.types import FloatArray, IntArray

__all__ = [
    "code_block_segmentation",
    "cqi_spectral_efficiency",
    "eesm_beta",
    "eesm_effective_sinr_db",
    "effective_sinr_db",
    "load_sionna_table",
    "mcs_spectral_efficiency",
    "tbs_bits",
    "tbs_table",
]

# N_info ≤ 3824 uses Table 5.1.3.2-1 (TS 38.214 §5.1.3.2 step 3).
_SMALL_TBS_MAX = 3824
# All N_info arithmetic is done on 2048·N_info, an exact integer (R·1024 can be a half-integer).
_SCALE = 2048


# ------------------------------------------------------------------------------------------
# Sionna data files
# ------------------------------------------------------------------------------------------
def _sionna_data_dirs() -> list[Path]:
    """Candidate folders holding Sionna's ``sys/`` data, most trusted first."""
    dirs: list[Path] = []
    spec = importlib.util.find_spec("sionna")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        dirs.append(Path(next(iter(spec.submodule_search_locations))))
    # Fallback: the project's shared data copy next to the repository checkout.
    dirs.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "sionna")
    return dirs


@cache
def load_sionna_table(relative_path: str) -> dict[str, Any]:
    """Load one of Sionna's JSON data files, e.g. ``"sys/esm_params/eesm_beta_table.json"``.

    Looked up in the installed ``sionna`` package first, then in ``shared/data/sionna`` next to
    the repository. The parsed JSON is cached; treat it as read-only.

    Raises:
        FileNotFoundError: naming every place searched when none holds the file.
    """
    tried = [d / relative_path for d in _sionna_data_dirs()]
    for path in tried:
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                table: dict[str, Any] = json.load(f)
            return table
    raise FileNotFoundError(
        f"Sionna data file {relative_path!r} not found; looked in: "
        + ", ".join(str(p) for p in tried)
        + " (install sionna, or provide shared/data/sionna)"
    )


# ------------------------------------------------------------------------------------------
# Spectral efficiency
# ------------------------------------------------------------------------------------------
def _check_mcs(mcs_index: int, table: int) -> None:
    n_mcs = _mcs_table(table).n_mcs
    if not 0 <= mcs_index < n_mcs:
        raise ValueError(f"mcs_index must be in 0..{n_mcs - 1} for MCS table {table}")


def mcs_spectral_efficiency(mcs_index: int, mcs_table: int = 1) -> float:
    """Qm·R/1024 of an MCS (TS 38.214 Tables 5.1.3.1-1..3), bits per RE per layer.

    Raises:
        ValueError: If the table or the (non-reserved) MCS index does not exist.
    """
    _check_mcs(mcs_index, mcs_table)
    return float(_mcs_table(mcs_table).spectral_efficiency[mcs_index])


def cqi_spectral_efficiency(cqi: int, cqi_table: int = 1) -> float:
    """Efficiency of a CQI (TS 38.214 Tables 5.2.2.1-2..4); CQI 0 (out of range) → 0.

    Returns the efficiency column as the standard lists it (4 decimals).

    Raises:
        ValueError: If the table does not exist or ``cqi`` is not in 0..15.
    """
    if not 0 <= cqi <= 15:
        raise ValueError(f"cqi must be in 0..15 (got {cqi!r})")
    return float(_cqi_table(cqi_table).efficiency[cqi])


# ------------------------------------------------------------------------------------------
# Transport block size, TS 38.214 §5.1.3.2
# ------------------------------------------------------------------------------------------
def _floor_log2(x: IntArray) -> IntArray:
    """floor(log2(x)) of positive integers < 2^53, exactly (frexp: x = m·2^e, m in [0.5, 1))."""
    _, e = np.frexp(x.astype(np.float64))
    return e.astype(np.int64) - 1


def _ceil_div(a: IntArray, b: IntArray | int) -> IntArray:
    return -(-a // b)


def _tbs_from_scaled_ninfo(x: IntArray, r_x2048: IntArray) -> IntArray:
    """TBS from 2048·N_info (exact integers) and R·2048, elementwise (TS 38.214 §5.1.3.2).

    Args:
        x: 2048·N_info = 2048·N_RE·R·Q_m·ν, any shape, integers ≥ 0.
        r_x2048: 2048·R, broadcastable to ``x``.

    Returns:
        TBS in bits, shape of ``x``; 0 where ``x`` is 0.
    """
    x, r_x2048 = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(r_x2048, np.int64))
    safe = np.maximum(x, 1)

    # --- step 3: N_info ≤ 3824 -> quantize, then Table 5.1.3.2-1 --------------------------
    n = np.maximum(3, _floor_log2(safe) - 11 - 6)  # floor(log2(N_info)) = floor(log2 x) - 11
    n_info_q = np.maximum(24, (safe // (_SCALE << n)) << n)
    idx = np.minimum(np.searchsorted(TBS_SMALL_TABLE_BITS, n_info_q), TBS_SMALL_TABLE_BITS.size - 1)
    tbs_small = TBS_SMALL_TABLE_BITS[idx]

    # --- step 4: N_info > 3824 -> quantize, then the C formulas -----------------------------
    y = np.maximum(safe - 24 * _SCALE, 1)  # 2048·(N_info - 24)
    n = np.maximum(_floor_log2(y) - 11 - 5, 0)
    d = _SCALE << n
    # round() with ties towards the next larger integer (TS 38.214 §5.1.3.2 step 4).
    n_info_q = np.maximum(3840, ((2 * y + d) // (2 * d)) << n)
    a = n_info_q + 24
    c = np.where(
        r_x2048 <= _SCALE // 4,  # R ≤ 1/4
        _ceil_div(a, 3816),
        np.where(n_info_q > 8424, _ceil_div(a, 8424), 1),
    )
    tbs_large = 8 * c * _ceil_div(a, 8 * c) - 24

    tbs = np.where(x <= _SMALL_TBS_MAX * _SCALE, tbs_small, tbs_large)
    return np.where(x > 0, tbs, 0).astype(np.int64)


def _re_per_prb(n_symbols: int, dmrs_re_per_prb: int, overhead_re_per_prb: int) -> int:
    """min(156, N'_RE) with N'_RE = 12·N_symb − N_DMRS − N_oh (TS 38.214 §5.1.3.2 step 1)."""
    if not 1 <= n_symbols <= 14:
        raise ValueError(f"n_symbols must be in 1..14 (got {n_symbols!r})")
    if dmrs_re_per_prb < 0 or overhead_re_per_prb < 0:
        raise ValueError("dmrs_re_per_prb and overhead_re_per_prb must be >= 0")
    n_re_prime = 12 * n_symbols - dmrs_re_per_prb - overhead_re_per_prb
    if n_re_prime <= 0:
        raise ValueError(
            f"12·n_symbols - dmrs_re_per_prb - overhead_re_per_prb must be > 0 "
            f"(got 12·{n_symbols} - {dmrs_re_per_prb} - {overhead_re_per_prb} = {n_re_prime})"
        )
    return min(156, n_re_prime)


def tbs_bits(
    n_prb: int,
    n_symbols: int,
    mcs_index: int,
    *,
    mcs_table: int = 1,
    n_layers: int = 1,
    dmrs_re_per_prb: int = 12,
    overhead_re_per_prb: int = 0,
) -> int:
    """Transport block size exactly per TS 38.214 §5.1.3.2.

    N'_RE = 12·N_symb^sh − N_DMRS^PRB − N_oh^PRB; N_RE = min(156, N'_RE)·n_PRB;
    N_info = N_RE·R·Q_m·ν; N_info ≤ 3824 → quantized N_info looked up in Table 5.1.3.2-1,
    otherwise the code-block-aligned formulas of step 4.

    Args:
        n_prb: Allocated PRBs (0 gives 0).
        n_symbols: PDSCH symbols N_symb^sh, 1..14.
        mcs_index: MCS index I_MCS (non-reserved rows of the table).
        mcs_table: TS 38.214 MCS table 1..4 (Tables 5.1.3.1-1..4).
        n_layers: MIMO layers ν of the codeword.
        dmrs_re_per_prb: DM-RS REs per PRB in the slot, N_DMRS^PRB.
        overhead_re_per_prb: xOverhead N_oh^PRB (0, 6, 12 or 18).

    Returns:
        TBS in bits.

    Raises:
        ValueError: On an out-of-range argument.
    """
    if n_prb < 0 or n_layers < 1:
        raise ValueError(f"need n_prb >= 0 and n_layers >= 1 (got {n_prb!r}, {n_layers!r})")
    _check_mcs(mcs_index, mcs_table)
    table = _mcs_table(mcs_table)
    n_re = _re_per_prb(n_symbols, dmrs_re_per_prb, overhead_re_per_prb) * n_prb
    x = np.int64(n_re) * table.qm[mcs_index] * n_layers * table.r_x2048[mcs_index]
    return int(_tbs_from_scaled_ninfo(np.asarray(x), table.r_x2048[mcs_index]))


def tbs_table(
    n_prb_max: int,
    n_symbols: int,
    *,
    mcs_table: int = 1,
    n_layers: int = 1,
    dmrs_re_per_prb: int = 12,
    overhead_re_per_prb: int = 0,
) -> IntArray:
    """TBS for every (number of PRBs, MCS), vectorized :func:`tbs_bits` (TS 38.214 §5.1.3.2).

    Args:
        n_prb_max: Largest allocation, PRBs.
        n_symbols: PDSCH symbols N_symb^sh, 1..14.
        mcs_table: TS 38.214 MCS table 1..4.
        n_layers: MIMO layers ν of the codeword.
        dmrs_re_per_prb: DM-RS REs per PRB in the slot, N_DMRS^PRB.
        overhead_re_per_prb: xOverhead N_oh^PRB.

    Returns:
        TBS in bits, shape [n_prb_max + 1, n_mcs]; row p is p PRBs (row 0 is 0).

    Raises:
        ValueError: On an out-of-range argument.
    """
    if n_prb_max < 0 or n_layers < 1:
        raise ValueError("need n_prb_max >= 0 and n_layers >= 1")
    table = _mcs_table(mcs_table)
    re_per_prb = _re_per_prb(n_symbols, dmrs_re_per_prb, overhead_re_per_prb)
    # [n_prb_max + 1, 1] · [n_mcs] -> [n_prb_max + 1, n_mcs]
    n_re = (np.arange(n_prb_max + 1, dtype=np.int64) * re_per_prb)[:, None]
    x = n_re * (table.qm * n_layers * table.r_x2048)[None, :]
    return _tbs_from_scaled_ninfo(x, table.r_x2048[None, :])


# ------------------------------------------------------------------------------------------
# Code-block segmentation, TS 38.212 §5.2.2 and §7.2.2
# ------------------------------------------------------------------------------------------
def code_block_segmentation(
    tbs_bits: IntArray | int, code_rate: FloatArray | float
) -> tuple[IntArray, IntArray]:
    """Number of LDPC code blocks C and bits per code block K' of a transport block.

    TB CRC L = 16 bits if TBS ≤ 3824 else 24 (TS 38.212 §7.2.1); LDPC base graph 2 if
    TBS ≤ 292, or TBS ≤ 3824 and R ≤ 0.67, or R ≤ 0.25, else base graph 1 (TS 38.212 §7.2.2);
    segmentation with K_cb = 8448 (BG1) / 3840 (BG2) and a 24-bit CRC per code block when
    C > 1 (TS 38.212 §5.2.2): C = ⌈B / (K_cb − 24)⌉, K' = B'/C with B' = B + 24·C.
    K' (CRC bits included, filler bits excluded) is the code-block size at which the Sionna
    BLER tables are indexed (Sionna's ``calculate_tb_size`` ``cb_size``). For a TBS not produced
    by TS 38.214, B'/C is rounded up.

    Args:
        tbs_bits: Transport block size A, any shape, bits (> 0).
        code_rate: Target code rate R (0..1), broadcastable to ``tbs_bits``.

    Returns:
        ``(n_code_blocks, code_block_bits)``, each int64 of the broadcast shape.
    """
    a, r = np.broadcast_arrays(np.asarray(tbs_bits, np.int64), np.asarray(code_rate, np.float64))
    b = a + np.where(a > _SMALL_TBS_MAX, 24, 16)
    bg2 = (a <= 292) | ((a <= _SMALL_TBS_MAX) & (r <= 0.67)) | (r <= 0.25)
    k_cb = np.where(bg2, 3840, 8448)
    c = np.where(b <= k_cb, 1, _ceil_div(b, k_cb - 24))
    b_prime = b + np.where(c > 1, 24 * c, 0)
    return c.astype(np.int64), _ceil_div(b_prime, c).astype(np.int64)


# ------------------------------------------------------------------------------------------
# EESM
# ------------------------------------------------------------------------------------------
@cache
def _eesm_beta_cached(table: int) -> FloatArray:
    betas = load_sionna_table("sys/esm_params/eesm_beta_table.json")["index"]
    tab = _mcs_table(table)
    if str(table) in betas:
        beta = np.asarray(betas[str(table)], dtype=np.float64)
        if beta.size != tab.n_mcs:
            raise ValueError(f"EESM β table {table} has {beta.size} entries, expected {tab.n_mcs}")
    else:
        # Tables without calibrated β (3): take the β of the calibrated (Q_m, R) closest in R
        # with the same modulation — β depends mostly on the modulation and rises with R.
        ref_qm = np.concatenate([_mcs_table(int(k)).qm for k in betas])
        ref_r = np.concatenate([_mcs_table(int(k)).r_x1024 for k in betas])
        ref_beta = np.concatenate([np.asarray(v, np.float64) for v in betas.values()])
        beta = np.empty(tab.n_mcs)
        for m in range(tab.n_mcs):
            same = np.flatnonzero(ref_qm == tab.qm[m])
            if same.size == 0:
                raise ValueError(
                    f"no EESM β for MCS table {table} (no calibrated {tab.qm[m]}-bit modulation)"
                )
            beta[m] = ref_beta[same[np.argmin(np.abs(ref_r[same] - tab.r_x1024[m]))]]
    beta.setflags(write=False)
    return beta


def eesm_beta(mcs_table: int) -> FloatArray:
    """EESM β per MCS index, shape [n_mcs] (Sionna ``sys/esm_params/eesm_beta_table.json``).

    Tables 1 and 2 are Sionna's calibrated values; table 3 reuses the β of the same modulation
    and nearest code rate from tables 1/2 (identical (Q_m, R) pairs get identical β).

    Raises:
        ValueError: For a table whose modulations have no calibrated β (table 4's 1024QAM).
        FileNotFoundError: If Sionna's JSON table cannot be found.
    """
    return _eesm_beta_cached(mcs_table)


def eesm_effective_sinr_db(sinr_db: FloatArray, beta: FloatArray | float) -> FloatArray:
    """EESM effective SINR over the last axis, vectorized.

    γ_eff = −β·ln(mean_k exp(−γ_k/β)) on linear SINRs γ_k (Brueninghaus et al., PIMRC 2005;
    Sionna ``sys.EESM``), evaluated as γ_min − β·ln(mean exp(−(γ_k − γ_min)/β)) so that high
    SINRs do not underflow.

    Args:
        sinr_db: Per-RE/PRB SINR, shape [..., n], dB.
        beta: EESM β, shape broadcastable to [...] (linear SINR units).

    Returns:
        Effective SINR, shape [...], dB.
    """
    gamma = 10.0 ** (np.asarray(sinr_db, np.float64) / 10.0)
    b = np.asarray(beta, np.float64)[..., None]
    g_min = gamma.min(axis=-1, keepdims=True)
    eff = g_min - b * np.log(np.mean(np.exp(-(gamma - g_min) / b), axis=-1, keepdims=True))
    with np.errstate(divide="ignore"):
        return np.asarray(10.0 * np.log10(eff[..., 0]), dtype=np.float64)


def effective_sinr_db(sinr_db: FloatArray, mcs_index: int, *, mcs_table: int = 1) -> float:
    """EESM effective SINR over the last axis with the MCS's calibrated β.

    γ_eff = −β·ln(mean exp(−γ/β)) on linear SINR, β from :func:`eesm_beta`
    (Brueninghaus et al., PIMRC 2005; Sionna ``sys.EESM``). Unlike Sionna, the result is not
    clipped to [−30, 30] dB.

    Args:
        sinr_db: SINR of each RE / PRB of the allocation, shape [n], dB. For batches use
            :func:`eesm_effective_sinr_db` with ``eesm_beta(mcs_table)[mcs]``.
        mcs_index: MCS index whose β calibrates the mapping.
        mcs_table: TS 38.214 MCS table 1..3.

    Returns:
        Effective SINR, dB.

    Raises:
        ValueError: If ``sinr_db`` is not one-dimensional and non-empty, or the MCS is invalid.
    """
    arr = np.asarray(sinr_db, np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"sinr_db must have shape [n] with n >= 1 (got {arr.shape}); "
            "use eesm_effective_sinr_db for batches"
        )
    _check_mcs(mcs_index, mcs_table)
    return float(eesm_effective_sinr_db(arr, float(eesm_beta(mcs_table)[mcs_index])))
