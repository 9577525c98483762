"""TS 38.214 lookup tables: PDSCH MCS tables, CQI tables and the small-TBS table.

Values are transcribed from TS 38.214 (Rel-17) and cross-checked in the tests against the
project's CSV copies (``shared/data/3gpp_nr_tables``) and against Sionna's ``decode_mcs_index``.
Reserved rows (MCS 29..31 of tables 1/3, 28..31 of table 2, 27..31 of table 4) are left out, so
row ``i`` is MCS index ``i``.

Code rates are stored as R·1024 exactly as the standard lists them (two entries of table 2 and
four of table 4 are half-integers, e.g. 682.5), and also as the integer R·2048 so that the TBS
arithmetic of TS 38.214 §5.1.3.2 can be done without rounding.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from edgetwin.sim.types import FloatArray, IntArray

__all__ = [
    "CQI_TABLES",
    "MCS_TABLES",
    "TBS_SMALL_TABLE_BITS",
    "CqiTable",
    "McsTable",
    "cqi_table",
    "mcs_table",
]


class McsTable:
    """One PDSCH MCS table (TS 38.214 Table 5.1.3.1-x) without its reserved rows.

    Attributes:
        index: Table number (1..4).
        qm: Modulation order Q_m per MCS index, shape [n_mcs], bits per symbol.
        r_x1024: Target code rate R·1024 per MCS index, shape [n_mcs].
        r_x2048: Target code rate R·2048 per MCS index (exact integers), shape [n_mcs].
        code_rate: R per MCS index, shape [n_mcs].
        spectral_efficiency: Q_m·R per MCS index, shape [n_mcs], bits per RE per layer.
    """

    __slots__ = ("code_rate", "index", "qm", "r_x1024", "r_x2048", "spectral_efficiency")

    def __init__(self, index: int, rows: tuple[tuple[int, float], ...]) -> None:
        self.index = index
        self.qm: IntArray = np.array([q for q, _ in rows], dtype=np.int64)
        self.r_x1024: FloatArray = np.array([r for _, r in rows], dtype=np.float64)
        self.r_x2048: IntArray = np.rint(2.0 * self.r_x1024).astype(np.int64)
        self.code_rate: FloatArray = self.r_x1024 / 1024.0
        self.spectral_efficiency: FloatArray = self.qm * self.code_rate
        for arr in (self.qm, self.r_x1024, self.r_x2048, self.code_rate, self.spectral_efficiency):
            arr.setflags(write=False)

    @property
    def n_mcs(self) -> int:
        """Number of (non-reserved) MCS indices."""
        return int(self.qm.size)


class CqiTable:
    """One CQI table (TS 38.214 Table 5.2.2.1-x); row 0 is "out of range" (Q_m = 0, R = 0).

    Attributes:
        index: Table number (1..3).
        qm: Modulation order per CQI, shape [16].
        r_x1024: Code rate R·1024 per CQI, shape [16].
        efficiency: Efficiency as listed in the standard (4 decimals), shape [16], bits per RE.
        exact_efficiency: Q_m·R/1024 without the standard's rounding, shape [16], bits per RE.
    """

    __slots__ = ("efficiency", "exact_efficiency", "index", "qm", "r_x1024")

    def __init__(self, index: int, rows: tuple[tuple[int, int, float], ...]) -> None:
        self.index = index
        self.qm: IntArray = np.array([0] + [q for q, _, _ in rows], dtype=np.int64)
        self.r_x1024: FloatArray = np.array([0.0] + [r for _, r, _ in rows], dtype=np.float64)
        self.efficiency: FloatArray = np.array([0.0] + [e for _, _, e in rows], dtype=np.float64)
        self.exact_efficiency: FloatArray = self.qm * self.r_x1024 / 1024.0
        for arr in (self.qm, self.r_x1024, self.efficiency, self.exact_efficiency):
            arr.setflags(write=False)


# (Q_m, R·1024) per MCS index.
# TS 38.214 Table 5.1.3.1-1: MCS index table 1 for PDSCH (up to 64QAM).
_MCS_1: Final = (
    (2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526),
    (2, 602), (2, 679), (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616),
    (4, 658), (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719),
    (6, 772), (6, 822), (6, 873), (6, 910), (6, 948),
)  # fmt: skip
# TS 38.214 Table 5.1.3.1-2: MCS index table 2 for PDSCH (up to 256QAM).
_MCS_2: Final = (
    (2, 120), (2, 193), (2, 308), (2, 449), (2, 602), (4, 378), (4, 434), (4, 490),
    (4, 553), (4, 616), (4, 658), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666),
    (6, 719), (6, 772), (6, 822), (6, 873), (8, 682.5), (8, 711), (8, 754), (8, 797),
    (8, 841), (8, 885), (8, 916.5), (8, 948),
)  # fmt: skip
# TS 38.214 Table 5.1.3.1-3: MCS index table 3 for PDSCH (low spectral efficiency, 64QAM).
_MCS_3: Final = (
    (2, 30), (2, 40), (2, 50), (2, 64), (2, 78), (2, 99), (2, 120), (2, 157),
    (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526), (2, 602), (4, 340),
    (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (6, 438), (6, 466), (6, 517),
    (6, 567), (6, 616), (6, 666), (6, 719), (6, 772),
)  # fmt: skip
# TS 38.214 Table 5.1.3.1-4: MCS index table 4 for PDSCH (up to 1024QAM).
_MCS_4: Final = (
    (2, 120), (2, 193), (2, 449), (4, 378), (4, 490), (4, 616), (6, 466), (6, 517),
    (6, 567), (6, 616), (6, 666), (6, 719), (6, 772), (6, 822), (6, 873), (8, 682.5),
    (8, 711), (8, 754), (8, 797), (8, 841), (8, 885), (8, 916.5), (8, 948), (10, 805.5),
    (10, 853), (10, 900.5), (10, 948),
)  # fmt: skip

# (Q_m, R·1024, efficiency) per CQI index 1..15.
# TS 38.214 Table 5.2.2.1-2: 4-bit CQI table 1.
_CQI_1: Final = (
    (2, 78, 0.1523), (2, 120, 0.2344), (2, 193, 0.3770), (2, 308, 0.6016), (2, 449, 0.8770),
    (2, 602, 1.1758), (4, 378, 1.4766), (4, 490, 1.9141), (4, 616, 2.4063), (6, 466, 2.7305),
    (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234), (6, 873, 5.1152), (6, 948, 5.5547),
)  # fmt: skip
# TS 38.214 Table 5.2.2.1-3: 4-bit CQI table 2.
_CQI_2: Final = (
    (2, 78, 0.1523), (2, 193, 0.3770), (2, 449, 0.8770), (4, 378, 1.4766), (4, 490, 1.9141),
    (4, 616, 2.4063), (6, 466, 2.7305), (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234),
    (6, 873, 5.1152), (8, 711, 5.5547), (8, 797, 6.2266), (8, 885, 6.9141), (8, 948, 7.4063),
)  # fmt: skip
# TS 38.214 Table 5.2.2.1-4: 4-bit CQI table 3.
_CQI_3: Final = (
    (2, 30, 0.0586), (2, 50, 0.0977), (2, 78, 0.1523), (2, 120, 0.2344), (2, 193, 0.3770),
    (2, 308, 0.6016), (2, 449, 0.8770), (2, 602, 1.1758), (4, 378, 1.4766), (4, 490, 1.9141),
    (4, 616, 2.4063), (6, 466, 2.7305), (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234),
)  # fmt: skip

#: MCS tables by number (TS 38.214 Tables 5.1.3.1-1..4).
MCS_TABLES: Final[dict[int, McsTable]] = {
    i: McsTable(i, rows) for i, rows in ((1, _MCS_1), (2, _MCS_2), (3, _MCS_3), (4, _MCS_4))
}
#: CQI tables by number (TS 38.214 Tables 5.2.2.1-2..4).
CQI_TABLES: Final[dict[int, CqiTable]] = {
    i: CqiTable(i, rows) for i, rows in ((1, _CQI_1), (2, _CQI_2), (3, _CQI_3))
}

#: TS 38.214 Table 5.1.3.2-1: TBS for N_info ≤ 3824 (93 values), bits.
TBS_SMALL_TABLE_BITS: Final[IntArray] = np.array(
    [
        24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168,
        176, 184, 192, 208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432,
        456, 480, 504, 528, 552, 576, 608, 640, 672, 704, 736, 768, 808, 848, 888, 928, 984,
        1032, 1064, 1128, 1160, 1192, 1224, 1256, 1288, 1320, 1352, 1416, 1480, 1544, 1608,
        1672, 1736, 1800, 1864, 1928, 2024, 2088, 2152, 2216, 2280, 2408, 2472, 2536, 2600,
        2664, 2728, 2792, 2856, 2976, 3104, 3240, 3368, 3496, 3624, 3752, 3824,
    ],
    dtype=np.int64,
)  # fmt: skip
TBS_SMALL_TABLE_BITS.setflags(write=False)


def mcs_table(index: int) -> McsTable:
    """MCS table ``index`` (TS 38.214 Tables 5.1.3.1-1..4).

    Raises:
        ValueError: If ``index`` is not 1, 2, 3 or 4.
    """
    try:
        return MCS_TABLES[index]
    except KeyError:
        raise ValueError(f"mcs_table must be 1, 2, 3 or 4 (got {index!r})") from None


def cqi_table(index: int) -> CqiTable:
    """CQI table ``index`` (TS 38.214 Tables 5.2.2.1-2..4).

    Raises:
        ValueError: If ``index`` is not 1, 2 or 3.
    """
    try:
        return CQI_TABLES[index]
    except KeyError:
        raise ValueError(f"cqi_table must be 1, 2 or 3 (got {index!r})") from None
