"""Unit conversions and physical constants.

Convention (DESIGN.md): quantities carry their unit in their name — ``_s``, ``_ms``, ``_hz``,
``_db``, ``_dbm``, ``_w``, ``_bits``, ``_bytes``, ``_m``, ``_mps``. Everything inside the
simulator is SI (seconds, hertz, watts, metres); dB quantities are named ``_db`` / ``_dbm``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from edgetwin.sim.types import FloatArray

SPEED_OF_LIGHT_MPS = 299_792_458.0
BOLTZMANN_J_PER_K = 1.380649e-23
REFERENCE_TEMPERATURE_K = 290.0
#: Thermal noise power spectral density at 290 K, in dBm/Hz (-173.98).
THERMAL_NOISE_DBM_PER_HZ = float(10.0 * np.log10(BOLTZMANN_J_PER_K * REFERENCE_TEMPERATURE_K * 1e3))

T = TypeVar("T", float, FloatArray)


def db_to_lin(x_db: T) -> T:
    """Convert decibels to a linear power ratio."""
    return (
        10.0 ** (np.asarray(x_db) / 10.0) if isinstance(x_db, np.ndarray) else 10.0 ** (x_db / 10.0)
    )  # type: ignore[return-value]


def lin_to_db(x: T) -> T:
    """Convert a linear power ratio to decibels (``-inf`` for 0)."""
    if isinstance(x, np.ndarray):
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(x)  # type: ignore[return-value]
    return float(10.0 * np.log10(x)) if x > 0 else float("-inf")  # type: ignore[return-value]


def dbm_to_w(x_dbm: T) -> T:
    """Convert dBm to watts."""
    return db_to_lin(x_dbm) * 1e-3  # type: ignore[return-value]


def w_to_dbm(x_w: T) -> T:
    """Convert watts to dBm."""
    return lin_to_db(x_w * 1e3)  # type: ignore[operator]


def thermal_noise_w(bandwidth_hz: float, noise_figure_db: float = 0.0) -> float:
    """Thermal noise power kTB·F over ``bandwidth_hz`` at 290 K, in watts."""
    return float(
        dbm_to_w(THERMAL_NOISE_DBM_PER_HZ + 10.0 * np.log10(bandwidth_hz) + noise_figure_db)
    )
