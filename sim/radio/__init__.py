"""NR radio access: numerology, geometry, channels, link abstraction, HARQ, OLLA, cells.

The public pure functions are re-exported here (README "Public functions"); the cell process
lives in ``edgetwin.sim.radio.cell``.
"""

from edgetwin.sim.radio.link import (
    cqi_spectral_efficiency,
    effective_sinr_db,
    mcs_spectral_efficiency,
    tbs_bits,
)
from edgetwin.sim.radio.numerology import n_prb_for_bandwidth, slot_duration_s
from edgetwin.sim.radio.pathloss import los_probability, pathloss_db

__all__ = [
    "cqi_spectral_efficiency",
    "effective_sinr_db",
    "los_probability",
    "mcs_spectral_efficiency",
    "n_prb_for_bandwidth",
    "pathloss_db",
    "slot_duration_s",
    "tbs_bits",
]
