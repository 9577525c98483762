"""PUSCH transmit power of the UEs: TS 38.213 §7.1.1, vectorized over UEs.

P_PUSCH = min(P_CMAX, P_O_PUSCH + 10·log10(2^μ·M_RB) + α·PL + Δ_TF + f)  [dBm]

with the open-loop part (P0, α, pathloss), the transport-format term Δ_TF (``deltaMCS``) and
the closed-loop adjustment state f driven by TPC commands (:class:`PuschClosedLoop`). One
PUSCH power control adjustment state (l = 0) and one parameter set j per UE: the dynamic-grant
set (j = 2); a configured-grant or Msg3 set is just another ``p0_dbm`` / ``alpha`` argument.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from pydantic import Field, field_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

__all__ = [
    "ALPHA_VALUES",
    "TPC_ABSOLUTE_DB",
    "TPC_ACCUMULATED_DB",
    "PuschClosedLoop",
    "UplinkPowerConfig",
    "delta_tf_db",
    "pusch_power_dbm",
]

#: Pathloss compensation factors α a cell can configure (TS 38.331 ``Alpha``).
ALPHA_VALUES: Final = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: δ_PUSCH of the 2-bit TPC command field 0..3, accumulated mode, dB (TS 38.213 Table 7.1.1-1).
TPC_ACCUMULATED_DB: Final = np.array([-1.0, 0.0, 1.0, 3.0])
#: δ_PUSCH of the 2-bit TPC command field 0..3, absolute mode, dB (TS 38.213 Table 7.1.1-1).
TPC_ABSOLUTE_DB: Final = np.array([-4.0, -1.0, 1.0, 4.0])
TPC_ACCUMULATED_DB.setflags(write=False)
TPC_ABSOLUTE_DB.setflags(write=False)


class UplinkPowerConfig(StrictConfig):
    """PUSCH power control parameters of a cell's UEs (TS 38.213 §7.1.1, TS 38.331)."""

    p0_dbm: float = Field(
        -90.0,
        ge=-218,
        le=39,
        description="P_O_PUSCH = p0-NominalWithGrant (−202..24) + P0-PUSCH-AlphaSet p0 (−16..15).",
    )
    alpha: float = Field(
        0.8, description="Pathloss compensation α (TS 38.331 Alpha: alpha0, alpha04 … alpha1)."
    )
    p_cmax_dbm: float = Field(
        23.0, ge=-40, le=40, description="UE configured max output power (power class 3: 23 dBm)."
    )
    p_min_dbm: float = Field(
        -40.0, ge=-60, le=0, description="UE minimum output power (TS 38.101-1 §6.3.1, FR1)."
    )
    delta_mcs: bool = Field(
        False, description="deltaMCS: Δ_TF with K_s = 1.25 (else K_s = 0, Δ_TF = 0)."
    )
    tpc_accumulation: bool = Field(
        True,
        description="Accumulate TPC commands (tpc-Accumulation 'disabled' → absolute).",
    )

    @field_validator("alpha")
    @classmethod
    def _check_alpha(cls, v: float) -> float:
        if v not in ALPHA_VALUES:
            raise ValueError(
                f"alpha={v:g} is not an Alpha of TS 38.331; allowed: "
                + ", ".join(f"{a:g}" for a in ALPHA_VALUES)
            )
        return v


def pusch_power_dbm(
    pathloss_db: FloatArray | float,
    n_prb: IntArray | int,
    *,
    p0_dbm: FloatArray | float,
    alpha: FloatArray | float,
    mu: int,
    p_cmax_dbm: FloatArray | float,
    delta_tf_db: FloatArray | float = 0.0,
    f_db: FloatArray | float = 0.0,
) -> FloatArray:
    """PUSCH transmit power per UE, dBm.

    P = min(P_CMAX, P0 + 10·log10(2^μ·M_RB) + α·PL + Δ_TF + f)  (TS 38.213 §7.1.1).

    All arguments broadcast against each other (typically shape [n_ue] or [n_cell, n_ue]).

    Args:
        pathloss_db: Downlink pathloss estimate PL (referenceSignalPower − filtered RSRP), dB.
        n_prb: Allocated PRBs M_RB of the PUSCH; 0 means no transmission.
        p0_dbm: P_O_PUSCH(j), the target received power per PRB at 15 kHz, dBm.
        alpha: Pathloss compensation α(j), 0..1.
        mu: Numerology μ of the UL BWP (SCS 15·2^μ kHz).
        p_cmax_dbm: Configured maximum output power P_CMAX, dBm.
        delta_tf_db: Transport-format term Δ_TF (see :func:`delta_tf_db`), dB.
        f_db: Closed-loop adjustment state f(i, l) (see :class:`PuschClosedLoop`), dB.

    Returns:
        Transmit power, dBm, broadcast shape; ``-inf`` where ``n_prb`` is 0.

    Raises:
        ValueError: If ``mu`` is not 0..3 or an ``alpha`` is outside [0, 1].
    """
    if mu not in (0, 1, 2, 3):
        raise ValueError(f"numerology μ must be 0, 1, 2 or 3 (got {mu!r})")
    a = np.asarray(alpha, dtype=np.float64)
    if np.any((a < 0) | (a > 1)):
        raise ValueError("alpha must be in [0, 1] (TS 38.213 §7.1.1, α ∈ {0, 0.4, …, 1})")
    m = np.asarray(n_prb, dtype=np.float64)
    with np.errstate(divide="ignore"):
        bw_db = 10.0 * np.log10(2.0**mu * m)  # -inf for M_RB = 0
    p = (
        np.asarray(p0_dbm, np.float64)
        + bw_db
        + a * np.asarray(pathloss_db, np.float64)
        + np.asarray(delta_tf_db, np.float64)
        + np.asarray(f_db, np.float64)
    )
    return np.asarray(np.minimum(np.asarray(p_cmax_dbm, np.float64), p), dtype=np.float64)


def delta_tf_db(
    bits_per_re: FloatArray | float,
    *,
    k_s: float = 1.25,
    beta_offset: FloatArray | float = 1.0,
) -> FloatArray:
    """Transport-format power offset Δ_TF = 10·log10((2^(BPRE·K_s) − 1)·β_offset^PUSCH), dB.

    TS 38.213 §7.1.1; Δ_TF = 0 for K_s = 0 (deltaMCS not provided) and for PUSCH over more than
    one layer (the caller passes 0 then).

    Args:
        bits_per_re: BPRE = Σ_r K_r / N_RE (code-block bits incl. CRC over the PUSCH's data REs,
            DM-RS excluded), any shape, bits/RE (> 0).
        k_s: 1.25 with deltaMCS, else 0.
        beta_offset: β_offset^PUSCH: 1 for UL-SCH data, broadcastable.

    Returns:
        Δ_TF in dB, broadcast shape.
    """
    bpre = np.asarray(bits_per_re, dtype=np.float64)
    if k_s == 0:
        return np.zeros_like(bpre)
    return np.asarray(
        10.0 * np.log10((2.0 ** (bpre * k_s) - 1.0) * np.asarray(beta_offset, np.float64)),
        dtype=np.float64,
    )


class PuschClosedLoop:
    """Closed-loop PUSCH power control adjustment state f(i, l = 0) of n_ue UEs.

    Accumulated mode (TS 38.213 §7.1.1, no ``tpc-Accumulation``):
    f(i) = f(i − i0) + Σ δ_PUSCH over the TPC commands received since the previous PUSCH
    occasion, except that the sum is not applied when it is ≥ 0 and the UE was at maximum
    power at the previous occasion, or ≤ 0 and it was at minimum power (anti wind-up).
    Absolute mode (``tpc-Accumulation`` provided): f(i) = δ_PUSCH of the latest command.
    δ values from the 2-bit TPC field per TS 38.213 Table 7.1.1-1.

    Use per slot: :meth:`receive_tpc` for the DCIs sent, then :meth:`transmit` for the UEs
    that send a PUSCH.

    Args:
        n_ue: Number of UEs.
        accumulation: Accumulated (True, default) or absolute (False) TPC commands.
    """

    def __init__(self, n_ue: int, *, accumulation: bool = True) -> None:
        if n_ue < 0:
            raise ValueError(f"n_ue must be >= 0 (got {n_ue!r})")
        self.accumulation = accumulation
        self.f_db = np.zeros(n_ue)  # [n_ue] state f(i − i0), dB
        self._pending_db = np.zeros(n_ue)  # [n_ue] Σδ (accumulated) or latest δ (absolute)
        self._has_pending = np.zeros(n_ue, dtype=bool)  # [n_ue]
        self.at_max = np.zeros(n_ue, dtype=bool)  # [n_ue] previous occasion was at P_CMAX
        self.at_min = np.zeros(n_ue, dtype=bool)  # [n_ue] previous occasion was at P_min

    def receive_tpc(self, tpc_field: IntArray) -> None:
        """Take the TPC command of each UE's DCI.

        Args:
            tpc_field: 2-bit TPC command field per UE, shape [n_ue], values 0..3; -1 = none.

        Raises:
            ValueError: If a field is outside -1..3.
        """
        t = np.asarray(tpc_field, dtype=np.int64)
        if np.any((t < -1) | (t > 3)):
            raise ValueError("tpc_field must be 0..3 (TS 38.213 Table 7.1.1-1) or -1 for none")
        got = t >= 0
        table = TPC_ACCUMULATED_DB if self.accumulation else TPC_ABSOLUTE_DB
        delta = table[np.where(got, t, 0)]
        if self.accumulation:
            self._pending_db = self._pending_db + np.where(got, delta, 0.0)
        else:
            self._pending_db = np.where(got, delta, self._pending_db)
        self._has_pending |= got

    def transmit(
        self,
        ue_mask: BoolArray,
        open_loop_dbm: FloatArray,
        p_cmax_dbm: FloatArray | float,
        p_min_dbm: FloatArray | float = -40.0,
    ) -> FloatArray:
        """Advance f for the UEs sending a PUSCH now and return their transmit power.

        Args:
            ue_mask: UEs with a PUSCH occasion in this slot, shape [n_ue].
            open_loop_dbm: P0 + 10·log10(2^μ·M_RB) + α·PL + Δ_TF per UE, shape [n_ue], dBm
                (:func:`pusch_power_dbm` with ``p_cmax_dbm=inf``).
            p_cmax_dbm: P_CMAX, scalar or [n_ue], dBm.
            p_min_dbm: UE minimum output power (TS 38.101-1 §6.3.1), scalar or [n_ue], dBm;
                only used to detect "reached minimum power".

        Returns:
            min(P_CMAX, open loop + f) per UE, shape [n_ue], dBm; NaN for UEs not in the mask.
        """
        mask = np.asarray(ue_mask, dtype=bool)
        pend = self._pending_db
        apply = mask & self._has_pending
        if self.accumulation:
            # TS 38.213 §7.1.1: no accumulation past the limits reached at the last occasion.
            hold = (self.at_max & (pend >= 0)) | (self.at_min & (pend <= 0))
            self.f_db = np.where(apply & ~hold, self.f_db + pend, self.f_db)
            self._pending_db = np.where(mask, 0.0, pend)
        else:
            self.f_db = np.where(apply, pend, self.f_db)
        self._has_pending = self._has_pending & ~mask
        want = np.asarray(open_loop_dbm, np.float64) + self.f_db
        p_cmax = np.broadcast_to(np.asarray(p_cmax_dbm, np.float64), want.shape)
        p_min = np.broadcast_to(np.asarray(p_min_dbm, np.float64), want.shape)
        self.at_max = np.where(mask, want >= p_cmax, self.at_max)
        self.at_min = np.where(mask, want <= p_min, self.at_min)
        return np.asarray(np.where(mask, np.minimum(p_cmax, want), np.nan), dtype=np.float64)

    def reset(self, ue_mask: BoolArray) -> None:
        """Set f = 0 for the masked UEs: P_O_UE_PUSCH or α reconfigured (TS 38.213 §7.1.1).

        Args:
            ue_mask: UEs to reset, shape [n_ue].
        """
        mask = np.asarray(ue_mask, dtype=bool)
        self.f_db = np.where(mask, 0.0, self.f_db)
        self._pending_db = np.where(mask, 0.0, self._pending_db)
        self._has_pending &= ~mask
        self.at_max &= ~mask
        self.at_min &= ~mask
