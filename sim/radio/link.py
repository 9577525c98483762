"""Link abstraction as pure functions: MCS/CQI tables, TBS, EESM (TS 38.214, TS 38.212).

CONTRACT (filled in by the link work): keep these names and signatures (the README documents
them and users call them).
"""

from __future__ import annotations

from edgetwin.sim.types import FloatArray


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
    """Transport block size exactly per TS 38.214 §5.1.3.2."""
    raise NotImplementedError


def mcs_spectral_efficiency(mcs_index: int, mcs_table: int = 1) -> float:
    """Qm·R/1024 of an MCS (TS 38.214 Tables 5.1.3.1-1..3), bits per RE per layer."""
    raise NotImplementedError


def cqi_spectral_efficiency(cqi: int, cqi_table: int = 1) -> float:
    """Efficiency of a CQI (TS 38.214 Tables 5.2.2.1-2..4); CQI 0 (out of range) → 0."""
    raise NotImplementedError


def effective_sinr_db(sinr_db: FloatArray, mcs_index: int, *, mcs_table: int = 1) -> float:
    """EESM effective SINR over the last axis with the MCS's calibrated β."""
    raise NotImplementedError
