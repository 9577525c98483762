"""Uplink scheduling timing: SR → grant → PUSCH with BSR → grants (TS 38.213/38.214/38.321).

A UE whose buffer becomes non-empty has no uplink resource: it sends a scheduling request (SR)
on its next SR occasion, the gNB decodes it and grants a PUSCH K2 slots after the DCI; that
first PUSCH carries a buffer status report (BSR), from which the gNB knows the buffer and
grants the rest. With a configured grant the UE skips the SR and sends on its next
configured-grant occasion.

Decisions where the standards leave the choice to the network (documented, tested):

* SR occasions: slot k with (k − offset) mod period = 0 (TS 38.213 §9.2.4); an occasion is
  valid only where the SR's PUCCH (``sr_pucch_symbols`` long, at the end of the slot) fits in
  the slot's UL symbols, since a UE does not transmit PUCCH on DL symbols (TS 38.213 §11.1). So
  a U slot, or an S slot with enough UL symbols (PUCCH format 0 has 1–2 symbols), can carry it;
  invalid occasions are skipped.
* The gNB can send a DCI from the first slot ``gnb_processing_slots`` after the slot in which it
  received the SR (or the PUSCH with the BSR), on a slot with DL symbols.
* A PUSCH is sent on a slot with at least ``pusch_min_symbols`` UL symbols (default 14: U slots
  only), K2 slots after its DCI with K2 from the configured set (TS 38.214 §6.1.2.1). The gNB
  serves a known buffer on the earliest PUSCH slots it can still reach, each granted from the
  earliest DL slot that reaches it; for a contiguous K2 set (the default table A) this is the
  same as "grant in the next DL slot with the smallest K2 that lands on a PUSCH slot"
  (:meth:`SlotPattern.pusch_slot`).
* Between the SR grant and the BSR the gNB knows nothing of the buffer and grants nothing more.
* The first PUSCH carries the BSR (``bsr_bits``, e.g. 16 bits: Short BSR MAC CE + its
  subheader, TS 38.321 §6.1.3.1) and TBS − ``bsr_bits`` message bits, unless the whole message
  fits in the TB: then the BSR is cancelled (TS 38.321 §5.4.5) and the message goes at once.
* Configured grants (type 1): occasions every P slots from an offset (TS 38.321 §5.8.2), no SR
  (``logicalChannelSR-Mask``, TS 38.321 §5.4.5); after the BSR on the first occasion the gNB
  adds dynamic grants to the remaining occasions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.radio.tdd import SlotPattern
from edgetwin.sim.types import BoolArray, IntArray

__all__ = [
    "SR_PERIODS_SLOTS",
    "UlGrantConfig",
    "UplinkTimeline",
    "check_ul_grant",
    "default_k2_slots",
    "resolved_k2_slots",
    "ul_delivery_timeline",
]

#: SR periodicities in slots (TS 38.331 SchedulingRequestResourceConfig ``periodicityAndOffset``
#: sl1..sl640; the sub-slot sym2 / sym6or7 are not modelled).
SR_PERIODS_SLOTS: Final = (1, 2, 4, 5, 8, 10, 16, 20, 40, 80, 160, 320, 640)
# j of the default PUSCH time domain table A per μ (TS 38.214 Table 6.1.2.1.1-4).
_J: Final = (1, 1, 2, 3)


def default_k2_slots(mu: int) -> tuple[int, ...]:
    """K2 values of the default PUSCH table A: j, j+1, j+2, j+3 (TS 38.214 Table 6.1.2.1.1-2).

    j = 1, 1, 2, 3 for μ = 0, 1, 2, 3 (TS 38.214 Table 6.1.2.1.1-4).

    Raises:
        ValueError: If ``mu`` is not 0..3.
    """
    if mu not in (0, 1, 2, 3):
        raise ValueError(f"numerology μ must be 0, 1, 2 or 3 (got {mu!r})")
    j = _J[mu]
    return (j, j + 1, j + 2, j + 3)


class UlGrantConfig(StrictConfig):
    """SR, grant and configured-grant timing of a cell's uplink (slots of the UL numerology)."""

    sr_period_slots: Literal[1, 2, 4, 5, 8, 10, 16, 20, 40, 80, 160, 320, 640] = Field(
        10, description="SR periodicity (TS 38.331 periodicityAndOffset sl1..sl640)."
    )
    sr_offset_slots: int = Field(
        4, ge=0, le=639, description="SR offset, 0..sr_period_slots − 1 (TS 38.213 §9.2.4)."
    )
    sr_pucch_symbols: int = Field(
        1, ge=1, le=14, description="Symbols of the SR's PUCCH (format 0: 1–2; format 1: 4–14)."
    )
    gnb_processing_slots: int = Field(
        1,
        ge=1,
        le=32,
        description="Slots from receiving an SR / BSR to the first DCI it can drive.",
    )
    k2_slots: tuple[int, ...] | None = Field(
        None,
        description="Configured K2 values (0..32, TS 38.331); None: default table A of μ.",
    )
    pusch_min_symbols: int = Field(
        14, ge=1, le=14, description="UL symbols a slot needs to carry a PUSCH (14: U slots only)."
    )
    bsr_bits: int = Field(
        16,
        ge=0,
        le=2048,
        description="BSR MAC CE + subheader bits in the first PUSCH (Short BSR: 16).",
    )
    configured_grant_period_slots: int | None = Field(
        None,
        ge=1,
        le=5120,
        description="Configured grant period (TS 38.331 periodicityExt); None: off.",
    )
    configured_grant_offset_slots: int = Field(
        0, ge=0, le=5119, description="Configured grant timeDomainOffset, slots."
    )

    @field_validator("k2_slots")
    @classmethod
    def _check_k2(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is None:
            return v
        if not 1 <= len(v) <= 16 or len(set(v)) != len(v) or not all(0 <= k <= 32 for k in v):
            raise ValueError(
                f"k2_slots {v} must be 1..16 distinct integers in 0..32 "
                "(TS 38.331 PUSCH-TimeDomainResourceAllocation k2), or null for the default"
            )
        return tuple(sorted(v))

    @model_validator(mode="after")
    def _check_offsets(self) -> UlGrantConfig:
        if self.sr_offset_slots >= self.sr_period_slots:
            raise ValueError(
                f"sr_offset_slots={self.sr_offset_slots} must be in 0..{self.sr_period_slots - 1} "
                f"(below sr_period_slots={self.sr_period_slots})"
            )
        p_cg = self.configured_grant_period_slots
        if p_cg is not None and self.configured_grant_offset_slots >= p_cg:
            raise ValueError(
                f"configured_grant_offset_slots={self.configured_grant_offset_slots} must be in "
                f"0..{p_cg - 1} (below configured_grant_period_slots={p_cg})"
            )
        return self


def resolved_k2_slots(cfg: UlGrantConfig, mu: int) -> tuple[int, ...]:
    """The K2 set in use: ``cfg.k2_slots`` or the default table A of ``mu``, ascending."""
    return cfg.k2_slots if cfg.k2_slots is not None else default_k2_slots(mu)


def _occasions(pattern: SlotPattern, period: int, offset: int, min_ul: int) -> BoolArray:
    """Valid periodic occasions over one hyper-period lcm(period, pattern period), [n_hyper]."""
    n = math.lcm(period, pattern.period_slots)
    k = np.arange(n, dtype=np.int64)
    return np.asarray(((k - offset) % period == 0) & pattern.carries_ul(k, min_ul))


def _reach_phases(pattern: SlotPattern, k2: tuple[int, ...], min_ul: int) -> BoolArray:
    """Pattern phases a dynamic grant can reach in steady state, [period_slots]."""
    u = np.arange(pattern.period_slots, dtype=np.int64) + pattern.period_slots * (1 + max(k2))
    n = u[None, :] - np.asarray(k2, np.int64)[:, None]
    return np.asarray(pattern.carries_ul(u, min_ul) & pattern.carries_dl(n).any(axis=0))


def check_ul_grant(cfg: UlGrantConfig, pattern: SlotPattern, *, field: str = "ul_grant") -> None:
    """Check the grant timing against the slot pattern and numerology.

    Meant for the validator of the config that holds both (the cell's config).

    Raises:
        ValueError: One line naming the field and the values that would work.
    """
    mu = pattern.mu
    max_sr = 80 * 2**mu
    if cfg.sr_period_slots > max_sr:
        raise ValueError(
            f"{field}.sr_period_slots={cfg.sr_period_slots} exceeds {max_sr} slots (80 ms) at "
            f"μ={mu} (TS 38.331 SchedulingRequestResourceConfig)"
        )
    sr = _occasions(pattern, cfg.sr_period_slots, cfg.sr_offset_slots, cfg.sr_pucch_symbols)
    if not sr.any():
        good = [
            o
            for o in range(cfg.sr_period_slots)
            if _occasions(pattern, cfg.sr_period_slots, o, cfg.sr_pucch_symbols).any()
        ]
        raise ValueError(
            f"{field}.sr_offset_slots={cfg.sr_offset_slots} (period {cfg.sr_period_slots}) never "
            f"falls on a slot with >= {cfg.sr_pucch_symbols} UL symbols of pattern "
            f"{pattern.letters!r} (TS 38.213 §9.2.4, §11.1); offsets that do: "
            f"{', '.join(map(str, good)) or 'none (lower sr_pucch_symbols)'}"
        )
    k2 = resolved_k2_slots(cfg, mu)
    if not _reach_phases(pattern, k2, cfg.pusch_min_symbols).any():
        raise ValueError(
            f"{field}.k2_slots={k2} reach no slot with >= {cfg.pusch_min_symbols} UL symbols "
            f"from a DL slot of pattern {pattern.letters!r} (TS 38.214 §6.1.2.1); widen the set"
        )
    p_cg = cfg.configured_grant_period_slots
    if (
        p_cg is not None
        and not _occasions(
            pattern, p_cg, cfg.configured_grant_offset_slots, cfg.pusch_min_symbols
        ).any()
    ):
        raise ValueError(
            f"{field}.configured_grant_offset_slots={cfg.configured_grant_offset_slots} "
            f"(period {p_cg}) never falls on a slot with >= {cfg.pusch_min_symbols} UL symbols "
            f"of pattern {pattern.letters!r} (TS 38.213 §11.1)"
        )


@dataclass(frozen=True, eq=False)
class UplinkTimeline:
    """When each step of one message's uplink happened, in slot indices.

    Attributes:
        arrival_slot: Slot in which the message entered the empty UE buffer.
        sr_slot: Slot of the SR; -1 with a configured grant.
        pusch_slots: Slots of the PUSCHs carrying the message, ascending, shape [n_pusch].
        grant_slots: DL slot of the DCI granting each PUSCH, shape [n_pusch]; -1 for
            configured-grant occasions.
        message_bits: Message bits carried by each PUSCH (BSR excluded), shape [n_pusch].
        bsr_slot: PUSCH slot that carried the BSR; -1 if the message fitted in the first TB.
    """

    arrival_slot: int
    sr_slot: int
    pusch_slots: IntArray
    grant_slots: IntArray
    message_bits: IntArray
    bsr_slot: int

    @property
    def delivery_slot(self) -> int:
        """Slot of the last PUSCH; the message is received at the end of this slot."""
        return int(self.pusch_slots[-1])

    @property
    def latency_slots(self) -> int:
        """Slots from the start of the arrival slot to the end of the delivery slot."""
        return self.delivery_slot + 1 - self.arrival_slot


def _reach(
    pattern: SlotPattern, k2: IntArray, min_ul: int, ready: int, u: IntArray
) -> tuple[BoolArray, IntArray]:
    """PUSCH slots ``u`` [n] a DCI sent at or after slot ``ready`` can reach, and its earliest slot.

    Returns:
        ``(reachable [n], grant_slot [n])``; grant_slot is -1 where not reachable.
    """
    n = u[None, :] - k2[:, None]  # [n_k2, n] DCI slot for each K2
    ok = (n >= ready) & pattern.carries_dl(n) & pattern.carries_ul(u, min_ul)[None, :]
    earliest = np.where(ok, n, np.iinfo(np.int64).max).min(axis=0)
    reach = ok.any(axis=0)
    return np.asarray(reach), np.asarray(np.where(reach, earliest, -1), dtype=np.int64)


def _serve(
    pattern: SlotPattern,
    cfg: UlGrantConfig,
    tbs: IntArray,
    ready: int,
    start: int,
    bits: int,
    *,
    use_cg: bool,
) -> tuple[IntArray, IntArray, IntArray]:
    """Earliest PUSCH slots ≥ ``start`` (dynamic from ``ready``, or configured) carrying ``bits``.

    Returns:
        ``(pusch_slots, grant_slots, message_bits)``, each [n_pusch].
    """
    k2 = np.asarray(resolved_k2_slots(cfg, pattern.mu), dtype=np.int64)
    per = pattern.period_slots
    p_cg = cfg.configured_grant_period_slots if use_cg else None
    min_tbs = int(tbs[pattern.ul_symbols >= cfg.pusch_min_symbols].min())
    # Window sized for the worst case (one PUSCH slot per period), doubled until enough.
    width = int(k2.max()) + per * (2 + -(-bits // min_tbs))
    if p_cg is not None:
        width += p_cg
    while True:
        u = np.arange(start, start + width, dtype=np.int64)
        reach, grant = _reach(pattern, k2, cfg.pusch_min_symbols, ready, u)
        if p_cg is not None:
            cg = ((u - cfg.configured_grant_offset_slots) % p_cg == 0) & pattern.carries_ul(
                u, cfg.pusch_min_symbols
            )
            grant = np.where(cg, -1, grant)  # a configured occasion needs no DCI
            reach = reach | cg
        cap = np.where(reach, tbs[u % per], 0)  # [width] bits each slot can carry
        total = np.cumsum(cap)
        if total[-1] >= bits:
            break
        width *= 2
    last = int(np.searchsorted(total, bits))  # first index where the cumulative sum ≥ bits
    sel = np.flatnonzero(reach[: last + 1])
    carried = cap[sel].copy()
    carried[-1] -= int(total[last]) - bits  # the last TB is only partly the message
    return u[sel], grant[sel], np.asarray(carried, dtype=np.int64)


def ul_delivery_timeline(
    message_bits: int,
    arrival_slot: int,
    tbs_bits: int | IntArray,
    pattern: SlotPattern,
    cfg: UlGrantConfig,
) -> UplinkTimeline:
    """Uplink timeline of one message of one UE on a static channel, without HARQ errors.

    SR at the first valid SR occasion at or after ``arrival_slot``; first grant from slot
    SR + ``gnb_processing_slots`` on; first PUSCH carries the BSR; the remaining bits go on the
    earliest PUSCH slots the gNB reaches once it has decoded the BSR (see the module docstring
    for every rule and its clause). With ``configured_grant_period_slots`` set, the first
    configured occasion at or after ``arrival_slot`` replaces SR and first grant.

    Args:
        message_bits: Message size B, bits (> 0).
        arrival_slot: Slot in which the message enters the (empty) buffer, ≥ 0.
        tbs_bits: TBS of a PUSCH, bits: a scalar, or shape [period_slots] per pattern slot
            (entries of slots that cannot carry a PUSCH are ignored); must exceed ``bsr_bits``.
        pattern: Slot pattern of the carrier.
        cfg: Grant timing.

    Returns:
        The timeline; ``delivery_slot`` is the slot of the last PUSCH.

    Raises:
        ValueError: On a bad argument, or a config that :func:`check_ul_grant` rejects.
    """
    if message_bits <= 0 or arrival_slot < 0:
        raise ValueError(
            f"need message_bits > 0 and arrival_slot >= 0 (got {message_bits}, {arrival_slot})"
        )
    check_ul_grant(cfg, pattern)
    per = pattern.period_slots
    tbs_in = np.asarray(tbs_bits, dtype=np.int64)
    if tbs_in.ndim > 1 or tbs_in.size not in (1, per):
        raise ValueError(
            f"tbs_bits must be a scalar or shape [{per}] (one per pattern slot), got {tbs_in.shape}"
        )
    tbs = np.broadcast_to(tbs_in.reshape(-1), (per,))
    pusch_phase = pattern.ul_symbols >= cfg.pusch_min_symbols
    if np.any(tbs[pusch_phase] <= cfg.bsr_bits):
        raise ValueError(
            f"tbs_bits must exceed bsr_bits={cfg.bsr_bits} on every PUSCH slot "
            f"(got {tbs[pusch_phase].min()})"
        )
    t = int(arrival_slot)
    d = cfg.gnb_processing_slots

    # --- first PUSCH: after an SR and its grant, or on the first configured occasion -----
    if cfg.configured_grant_period_slots is None:
        occ = _occasions(pattern, cfg.sr_period_slots, cfg.sr_offset_slots, cfg.sr_pucch_symbols)
        phase = t % occ.size
        sr_slot = t + int(np.flatnonzero(np.roll(occ, -phase))[0])
        first, first_grant, _ = _serve(pattern, cfg, tbs, sr_slot + d, sr_slot + d, 1, use_cg=False)
    else:
        sr_slot = -1
        occ = _occasions(
            pattern,
            cfg.configured_grant_period_slots,
            cfg.configured_grant_offset_slots,
            cfg.pusch_min_symbols,
        )
        first = np.array([t + int(np.flatnonzero(np.roll(occ, -(t % occ.size)))[0])])
        first_grant = np.array([-1], dtype=np.int64)
    p1 = int(first[0])
    tb1 = int(tbs[p1 % per])
    if message_bits <= tb1:  # all pending data fits: the BSR is cancelled (TS 38.321 §5.4.5)
        return UplinkTimeline(
            arrival_slot=t,
            sr_slot=sr_slot,
            pusch_slots=np.array([p1], dtype=np.int64),
            grant_slots=first_grant.astype(np.int64),
            message_bits=np.array([message_bits], dtype=np.int64),
            bsr_slot=-1,
        )

    # --- the BSR is known from p1 + d on: the rest on the earliest reachable slots --------
    sent1 = tb1 - cfg.bsr_bits
    slots, grants, bits = _serve(
        pattern, cfg, tbs, p1 + d, p1 + 1, message_bits - sent1, use_cg=True
    )
    return UplinkTimeline(
        arrival_slot=t,
        sr_slot=sr_slot,
        pusch_slots=np.concatenate([[p1], slots]).astype(np.int64),
        grant_slots=np.concatenate([first_grant, grants]).astype(np.int64),
        message_bits=np.concatenate([[sent1], bits]).astype(np.int64),
        bsr_slot=p1,
    )
