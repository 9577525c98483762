"""NR numerology (TS 38.211 §4) and channel bandwidth → PRBs (TS 38.101-1 / -2)."""

from __future__ import annotations

from typing import Final, Literal

import numpy as np

from edgetwin.sim.types import FloatArray

__all__ = [
    "FrequencyRange",
    "frequency_range_of",
    "n_prb_for_bandwidth",
    "prb_bandwidth_hz",
    "prb_center_offsets_hz",
    "slot_duration_s",
    "subcarrier_spacing_hz",
]

FrequencyRange = Literal["FR1", "FR2"]

#: Upper edge of FR1 (TS 38.104 Table 5.1-1: 410 MHz – 7125 MHz).
FR1_MAX_HZ: Final = 7.125e9

# Maximum transmission bandwidth configuration N_RB, keyed by μ then channel bandwidth in MHz.
# TS 38.101-1 Table 5.3.2-1 (FR1, Rel-17: SCS 15/30/60 kHz).
_N_RB_FR1: Final[dict[int, dict[int, int]]] = {
    0: {3: 15, 5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242,
        50: 270},
    1: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133,
        60: 162, 70: 189, 80: 217, 90: 245, 100: 273},
    2: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 35: 44, 40: 51, 45: 58, 50: 65, 60: 79,
        70: 93, 80: 107, 90: 121, 100: 135},
}  # fmt: skip
# TS 38.101-2 Table 5.3.2-1 (FR2: SCS 60/120 kHz).
_N_RB_FR2: Final[dict[int, dict[int, int]]] = {
    2: {50: 66, 100: 132, 200: 264},
    3: {50: 32, 100: 66, 200: 132, 400: 264},
}
_N_RB: Final[dict[str, dict[int, dict[int, int]]]] = {"FR1": _N_RB_FR1, "FR2": _N_RB_FR2}


def _check_mu(mu: int) -> None:
    if mu not in (0, 1, 2, 3):
        raise ValueError(f"numerology μ must be 0, 1, 2 or 3 (got {mu!r})")


def subcarrier_spacing_hz(mu: int) -> float:
    """Subcarrier spacing 15 kHz · 2^μ (TS 38.211 §4.2), μ in 0..3.

    Raises:
        ValueError: If ``mu`` is not 0, 1, 2 or 3.
    """
    _check_mu(mu)
    return 15e3 * 2.0**mu


def slot_duration_s(mu: int) -> float:
    """Slot duration 1 ms / 2^μ (TS 38.211 §4.3.2, 14 symbols, normal CP).

    Raises:
        ValueError: If ``mu`` is not 0, 1, 2 or 3.
    """
    _check_mu(mu)
    return 1e-3 / 2.0**mu


def prb_bandwidth_hz(mu: int) -> float:
    """Bandwidth of one PRB, 12 subcarriers · SCS (TS 38.211 §4.4.4.1).

    Raises:
        ValueError: If ``mu`` is not 0, 1, 2 or 3.
    """
    return 12.0 * subcarrier_spacing_hz(mu)


def frequency_range_of(carrier_hz: float) -> FrequencyRange:
    """Frequency range of a carrier: FR1 up to 7.125 GHz, FR2 above (TS 38.104 Table 5.1-1).

    Carriers between FR1 and FR2 proper (7.125–24.25 GHz) are treated as FR2, whose numerology
    and bandwidths are the closest fit for centimetre-wave studies.

    Raises:
        ValueError: If ``carrier_hz`` is not positive.
    """
    if not carrier_hz > 0:
        raise ValueError(f"carrier_hz must be > 0 (got {carrier_hz!r})")
    return "FR1" if carrier_hz <= FR1_MAX_HZ else "FR2"


def _allowed_mhz(mu: int) -> str:
    parts = [
        f"{fr}: {', '.join(str(b) for b in table[mu])} MHz"
        for fr, table in _N_RB.items()
        if mu in table
    ]
    return "; ".join(parts)


def n_prb_for_bandwidth(
    bandwidth_hz: float, mu: int, *, frequency_range: FrequencyRange | None = None
) -> int:
    """Maximum transmission bandwidth N_RB (TS 38.101-1 Table 5.3.2-1; FR2 38.101-2 Table 5.3.2-1).

    Args:
        bandwidth_hz: Channel bandwidth, Hz (must match a tabulated value to within 1 Hz).
        mu: Numerology μ (SCS = 15 kHz · 2^μ).
        frequency_range: ``"FR1"`` or ``"FR2"``; ``None`` looks the pair up in FR1 first, then
            in FR2 (the only overlap is μ = 2 at 50 and 100 MHz, where FR1 wins).

    Returns:
        Number of PRBs of the carrier.

    Raises:
        ValueError: naming the allowed bandwidths for this μ when the pair is not in the tables.
    """
    _check_mu(mu)
    if frequency_range is not None and frequency_range not in _N_RB:
        raise ValueError(f"frequency_range must be 'FR1', 'FR2' or None (got {frequency_range!r})")
    bw_mhz = round(bandwidth_hz / 1e6)
    ranges = (frequency_range,) if frequency_range is not None else ("FR1", "FR2")
    if abs(bandwidth_hz - bw_mhz * 1e6) <= 1.0:
        for fr in ranges:
            n_rb = _N_RB[fr].get(mu, {}).get(bw_mhz)
            if n_rb is not None:
                return n_rb
    where = frequency_range or "FR1/FR2"
    raise ValueError(
        f"bandwidth_hz={bandwidth_hz:g} ({bandwidth_hz / 1e6:g} MHz) is not a channel bandwidth "
        f"of {where} for μ={mu} (SCS {subcarrier_spacing_hz(mu) / 1e3:g} kHz); allowed "
        f"bandwidths for μ={mu}: {_allowed_mhz(mu)}"
    )


def prb_center_offsets_hz(n_prb: int, mu: int) -> FloatArray:
    """Centre frequency of each PRB relative to the carrier centre, shape [n_prb], Hz.

    The PRBs are laid out contiguously and symmetrically about the carrier centre
    (PRB k spans subcarriers 12k..12k+11 of the grid, TS 38.211 §4.4.4); the half-subcarrier
    shift of the grid and the guard-band asymmetry are below the resolution of a PRB-level
    channel model and are ignored.

    Raises:
        ValueError: If ``n_prb`` < 1 or ``mu`` is not 0..3.
    """
    if n_prb < 1:
        raise ValueError(f"n_prb must be >= 1 (got {n_prb!r})")
    return (np.arange(n_prb, dtype=np.float64) - (n_prb - 1) / 2.0) * prb_bandwidth_hz(mu)
