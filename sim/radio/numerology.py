"""NR numerology (TS 38.211 §4) and channel bandwidth → PRBs (TS 38.101-1 / -2).

CONTRACT (filled in by the link work): keep these names.
"""

from __future__ import annotations


def subcarrier_spacing_hz(mu: int) -> float:
    """Subcarrier spacing 15 kHz · 2^μ (TS 38.211 §4.2), μ in 0..3."""
    raise NotImplementedError


def slot_duration_s(mu: int) -> float:
    """Slot duration 1 ms / 2^μ (TS 38.211 §4.3.2, 14 symbols, normal CP)."""
    raise NotImplementedError


def n_prb_for_bandwidth(bandwidth_hz: float, mu: int) -> int:
    """Maximum transmission bandwidth N_RB (TS 38.101-1 Table 5.3.2-1; FR2 38.101-2 Table 5.3.2-1).

    Raises:
        ValueError: naming the allowed bandwidths for this μ when the pair is not in the tables.
    """
    raise NotImplementedError
