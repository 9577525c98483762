"""Outer-loop link adaptation (OLLA): the step rule, compiled so the slot kernel calls it."""

from __future__ import annotations

from edgetwin.sim.jit import njit_cached


def olla_step_down_db(step_up_db: float, bler_target: float) -> float:
    """Offset decrease on ACK, Δ_down = Δ_up · target / (1 − target).

    Reference: Pedersen et al., "Frequency domain scheduling for OFDMA with limited and noisy
    channel feedback", VTC 2007 (the stationary point makes the long-run BLER equal the target).
    """
    return step_up_db * bler_target / (1.0 - bler_target)


@njit_cached()
def olla_update(
    offset_db: float,
    nack: bool,
    step_up_db: float,
    step_down_db: float,
    max_offset_db: float,
) -> float:
    """Return a UE's SINR back-off after one HARQ feedback (compiled; callable from Python).

    The link adapter uses ``sinr_db - offset_db``: a NACK raises the back-off by ``step_up_db``,
    an ACK lowers it by ``step_down_db``; the result is clipped to ``±max_offset_db``.

    Args:
        offset_db: Current back-off, dB.
        nack: HARQ feedback of a first transmission (True = NACK).
        step_up_db: Increase on NACK, dB.
        step_down_db: Decrease on ACK, dB.
        max_offset_db: Bound on |offset|, dB.
    """
    new = offset_db + (step_up_db if nack else -step_down_db)
    return min(max(new, -max_offset_db), max_offset_db)
