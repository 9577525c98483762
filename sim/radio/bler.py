"""Precomputed link tables for the slot loop: TBS, code-block BLER, MCS selection, CQI.

CONTRACT (filled in by the link work): keep these names and shapes; the cell indexes these
arrays directly in its hot loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetwin.sim.types import FloatArray, IntArray


@dataclass(frozen=True)
class LinkTables:
    """Lookup tables for one cell configuration (all O(1) indexing in the slot loop).

    SINR axes are the uniform grid ``sinr_grid_db = sinr_min_db + step_db * arange(n_sinr)``;
    a SINR is mapped to its grid index with :meth:`sinr_index` (clipped to the grid).

    Attributes:
        mcs_table: TS 38.214 MCS table (1, 2 or 3).
        n_mcs: Number of MCS indices (28 for table 1/3 without reserved, 27 for table 2).
        sinr_min_db: First SINR grid point.
        step_db: SINR grid step.
        n_sinr: Number of grid points.
        eesm_beta: EESM β per MCS, shape [n_mcs].
        tbs_bits: TBS per (number of PRBs, MCS), shape [n_prb_max + 1, n_mcs]; row 0 is 0.
        tbler: Transport-block BLER per (number of PRBs, MCS, SINR grid index), shape
            [n_prb_max + 1, n_mcs, n_sinr] — code-block BLER from Sionna's PHY-abstraction
            tables at the code-block size TS 38.212 segmentation gives for that TBS, combined
            over the C code blocks as 1 - (1 - BLER_cb)^C.
        best_mcs: Highest MCS whose TBLER ≤ ``bler_target`` per (n_prb, SINR index), shape
            [n_prb_max + 1, n_sinr]; 0 when none qualifies.
        se_at_target: Spectral efficiency (bits/RE) of ``best_mcs`` at a full-band allocation,
            shape [n_sinr] (used for per-PRB achievable-rate estimates).
        cqi_of_sinr: CQI index (0..15) per SINR grid index, shape [n_sinr]: the highest CQI whose
            equivalent MCS meets TBLER ≤ 0.1 (TS 38.214 §5.2.2.1).
        sinr_of_cqi_db: SINR the gNB assumes for a reported CQI (the lower edge of its interval),
            shape [16].
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

    def sinr_index(self, sinr_db: FloatArray) -> IntArray:
        """Grid index of each SINR (rounded, clipped to the grid), same shape as the input."""
        raise NotImplementedError


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
    """Tabulate TBS, TBLER, MCS selection and CQI mapping for one cell configuration."""
    raise NotImplementedError
