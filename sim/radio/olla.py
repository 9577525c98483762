"""Outer-loop link adaptation (OLLA), vectorized over UEs."""

from __future__ import annotations

import numpy as np

from edgetwin.sim.types import BoolArray, FloatArray


def olla_step_down_db(step_up_db: float, bler_target: float) -> float:
    """Offset decrease on ACK, Δ_down = Δ_up · target / (1 − target).

    Reference: Pedersen et al., "Frequency domain scheduling for OFDMA with limited and noisy
    channel feedback", VTC 2007 (the stationary point makes the long-run BLER equal the target).
    """
    return step_up_db * bler_target / (1.0 - bler_target)


def olla_update(
    offset_db: FloatArray,
    nack: BoolArray,
    *,
    step_up_db: float,
    step_down_db: float,
    max_offset_db: float,
) -> FloatArray:
    """Return the updated SINR back-off after one HARQ feedback per entry.

    The link adapter uses ``sinr_db - offset_db``: a NACK raises the back-off by ``step_up_db``,
    an ACK lowers it by ``step_down_db``.

    Args:
        offset_db: Current back-off of the UEs that got feedback, shape [n], dB.
        nack: HARQ feedback (True = NACK), shape [n].
        step_up_db: Increase on NACK, dB.
        step_down_db: Decrease on ACK, dB.
        max_offset_db: Bound on |offset|, dB.
    """
    new = offset_db + np.where(nack, step_up_db, -step_down_db)
    return np.clip(new, -max_offset_db, max_offset_db)
