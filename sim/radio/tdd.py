"""TDD slot pattern (TS 38.213 §11.1) and FDD: which slots carry downlink and uplink symbols.

A TDD carrier repeats a pattern of slots: ``D`` (14 downlink symbols), ``U`` (14 uplink
symbols) and ``S`` (special: DL symbols, then flexible guard symbols, then UL symbols). The
``tdd-UL-DL-ConfigurationCommon`` patterns of TS 38.213 §11.1 read as strings ``D…DSU…U``
(one pattern, e.g. ``DDDSU``) or two of them back to back (``DDDSUDDSUU``); other orders
correspond to ``tdd-UL-DL-ConfigurationDedicated`` overrides of flexible symbols and are
accepted too. FDD has a separate uplink carrier: every slot carries both directions.

All per-slot helpers of :class:`SlotPattern` are vectorized over integer slot indices (any
shape); slot ``k`` of the carrier is slot ``k mod period_slots`` of the pattern (the pattern
starts at slot 0, the start of an even frame, TS 38.213 §11.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from edgetwin.sim.configbase import StrictConfig
from edgetwin.sim.types import BoolArray, IntArray

__all__ = [
    "ALLOWED_PERIODS_MS",
    "SYMBOLS_PER_SLOT",
    "SlotPattern",
    "TddConfig",
    "allowed_period_slots",
    "check_tdd_numerology",
]

#: OFDM symbols per slot, normal cyclic prefix (TS 38.211 §4.3.2).
SYMBOLS_PER_SLOT: Final = 14
#: dl-UL-TransmissionPeriodicity values of pattern1 (TS 38.213 §11.1, TS 38.331), ms.
ALLOWED_PERIODS_MS: Final = (0.5, 0.625, 1.0, 1.25, 2.0, 2.5, 5.0, 10.0)


def allowed_period_slots(mu: int) -> tuple[int, ...]:
    """Pattern lengths in slots allowed for numerology μ (TS 38.213 §11.1).

    A period P ms holds P·2^μ slots, which must be an integer: this reproduces the clause's
    restrictions (0.625 ms only for μ = 3, 1.25 ms for μ ≥ 2, 2.5 ms for μ ≥ 1) and rules
    out 0.5 ms at μ = 0 (half a slot).

    Raises:
        ValueError: If ``mu`` is not 0..3.
    """
    if mu not in (0, 1, 2, 3):
        raise ValueError(f"numerology μ must be 0, 1, 2 or 3 (got {mu!r})")
    out = []
    for p_ms in ALLOWED_PERIODS_MS:
        n = p_ms * 2**mu
        if n == int(n):
            out.append(int(n))
    return tuple(out)


class TddConfig(StrictConfig):
    """Duplexing of a cell's carrier: a TDD slot pattern, or FDD (paired UL carrier)."""

    duplex: Literal["tdd", "fdd"] = Field(
        "tdd", description="'tdd': one carrier shared in time; 'fdd': separate UL carrier."
    )
    pattern: str = Field(
        "DDDSU",
        min_length=1,
        max_length=80,
        description="Slots of one period over {D, S, U}, e.g. 'DDDSU', 'DDDDDDDSUU' (TDD only).",
    )
    special_symbols: tuple[int, int, int] = Field(
        (10, 2, 2),
        description="Special slot 'DL:guard:UL' symbols, summing to 14 (e.g. '10:2:2').",
    )

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, v: str) -> str:
        bad = sorted(set(v) - set("DSU"))
        if bad:
            raise ValueError(
                f"pattern {v!r} has {', '.join(map(repr, bad))}; allowed slot letters: "
                "'D' (downlink), 'S' (special), 'U' (uplink)"
            )
        return v

    @field_validator("special_symbols", mode="before")
    @classmethod
    def _parse_special(cls, v: Any) -> Any:
        # YAML-friendly "10:2:2" as well as [10, 2, 2].
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
                raise ValueError(
                    f"special_symbols {v!r} must read 'DL:guard:UL' with three integers "
                    "summing to 14, e.g. '10:2:2'"
                )
            return tuple(int(p) for p in parts)
        return v

    @field_validator("special_symbols")
    @classmethod
    def _check_special(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 0 or sum(v) != SYMBOLS_PER_SLOT:
            raise ValueError(
                f"special_symbols {v[0]}:{v[1]}:{v[2]} must be three integers >= 0 "
                f"(DL:guard:UL) summing to {SYMBOLS_PER_SLOT}, e.g. 10:2:2"
            )
        return v

    @model_validator(mode="after")
    def _check_directions(self) -> TddConfig:
        if self.duplex == "fdd":
            given = sorted({"pattern", "special_symbols"} & self.model_fields_set)
            if given:
                raise ValueError(
                    f"{', '.join(given)} applies to duplex='tdd' only (FDD has every slot in "
                    "both directions); drop it or set duplex: tdd"
                )
            return self
        dl_s, _, ul_s = self.special_symbols
        has_dl = "D" in self.pattern or ("S" in self.pattern and dl_s > 0)
        has_ul = "U" in self.pattern or ("S" in self.pattern and ul_s > 0)
        if not (has_dl and has_ul):
            raise ValueError(
                f"pattern {self.pattern!r} (special {dl_s}:{self.special_symbols[1]}:{ul_s}) "
                "needs at least one slot with downlink symbols and one with uplink symbols"
            )
        return self


def check_tdd_numerology(cfg: TddConfig, mu: int, *, field: str = "tdd.pattern") -> None:
    """Check the pattern's period against the numerology (TS 38.213 §11.1).

    Meant for the validator of the config that knows both (the cell's ``numerology``).

    Raises:
        ValueError: One line naming ``field``, the period found and the allowed ones.
    """
    if cfg.duplex == "fdd":
        allowed_period_slots(mu)  # still checks μ
        return
    allowed = allowed_period_slots(mu)
    n = len(cfg.pattern)
    if n not in allowed:
        slot_ms = 2.0**-mu
        raise ValueError(
            f"{field} {cfg.pattern!r} spans {n} slots = {n * slot_ms:g} ms at μ={mu}; the "
            f"period must be one of {', '.join(f'{p:g}' for p in ALLOWED_PERIODS_MS)} ms "
            f"(TS 38.213 §11.1), i.e. {', '.join(map(str, allowed))} slots at μ={mu}"
        )


def _next_true_offset(mask: BoolArray) -> IntArray:
    """Per phase p of a periodic mask [n], the distance d ≥ 0 to the next phase with True.

    Returns -1 for every phase when the mask has no True.
    """
    n = mask.size
    if not mask.any():
        return np.full(n, -1, dtype=np.int64)
    # [n, n]: distance from phase p forward to phase q, wrapping once.
    d = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
    d = np.where(mask[None, :], d, n)
    return np.asarray(d.min(axis=1), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class SlotPattern:
    """A validated slot pattern: DL/UL symbols of each slot of one period.

    Build it with :meth:`from_config`. ``dl_symbols`` / ``ul_symbols`` have shape
    [period_slots] (symbols per slot, 0..14); they are read-only.
    """

    mu: int
    letters: str
    dl_symbols: IntArray
    ul_symbols: IntArray

    @classmethod
    def from_config(cls, cfg: TddConfig, mu: int) -> SlotPattern:
        """Pattern of ``cfg`` at numerology ``mu`` (FDD: one slot with 14 DL and 14 UL symbols).

        Raises:
            ValueError: If the period is not allowed for ``mu`` (:func:`check_tdd_numerology`).
        """
        check_tdd_numerology(cfg, mu)
        if cfg.duplex == "fdd":
            dl = np.array([SYMBOLS_PER_SLOT], dtype=np.int64)
            ul = dl.copy()
            letters = "F"
        else:
            dl_s, _, ul_s = cfg.special_symbols
            per = {"D": (SYMBOLS_PER_SLOT, 0), "S": (dl_s, ul_s), "U": (0, SYMBOLS_PER_SLOT)}
            dl = np.array([per[c][0] for c in cfg.pattern], dtype=np.int64)
            ul = np.array([per[c][1] for c in cfg.pattern], dtype=np.int64)
            letters = cfg.pattern
        dl.setflags(write=False)
        ul.setflags(write=False)
        return cls(mu=mu, letters=letters, dl_symbols=dl, ul_symbols=ul)

    # ------------------------------------------------------------------------------------
    # Period and duty
    # ------------------------------------------------------------------------------------
    @property
    def period_slots(self) -> int:
        """Slots per pattern period (1 for FDD)."""
        return int(self.dl_symbols.size)

    @property
    def period_s(self) -> float:
        """Pattern period in seconds (slot 1 ms / 2^μ, TS 38.211 §4.3.2)."""
        return self.period_slots * 1e-3 / 2**self.mu

    @property
    def is_fdd(self) -> bool:
        """True for a paired (FDD) carrier."""
        return self.letters == "F"

    @property
    def dl_fraction(self) -> float:
        """Share of the carrier's symbols that are downlink (TDD: guard excluded; FDD: 1)."""
        return float(self.dl_symbols.sum()) / (SYMBOLS_PER_SLOT * self.period_slots)

    @property
    def ul_fraction(self) -> float:
        """Share of the carrier's symbols that are uplink (FDD: 1, the UL carrier's own)."""
        return float(self.ul_symbols.sum()) / (SYMBOLS_PER_SLOT * self.period_slots)

    # ------------------------------------------------------------------------------------
    # Per-slot queries, vectorized over slot indices
    # ------------------------------------------------------------------------------------
    def dl_symbols_in(self, slot: IntArray | int) -> IntArray:
        """Downlink symbols of each slot, shape of ``slot`` (slot indices ≥ 0)."""
        return np.asarray(self.dl_symbols[np.asarray(slot) % self.period_slots], dtype=np.int64)

    def ul_symbols_in(self, slot: IntArray | int) -> IntArray:
        """Uplink symbols of each slot, shape of ``slot`` (slot indices ≥ 0)."""
        return np.asarray(self.ul_symbols[np.asarray(slot) % self.period_slots], dtype=np.int64)

    def carries_dl(self, slot: IntArray | int, min_symbols: int = 1) -> BoolArray:
        """True where the slot has at least ``min_symbols`` DL symbols, shape of ``slot``."""
        return np.asarray(self.dl_symbols_in(slot) >= min_symbols)

    def carries_ul(self, slot: IntArray | int, min_symbols: int = 1) -> BoolArray:
        """True where the slot has at least ``min_symbols`` UL symbols, shape of ``slot``."""
        return np.asarray(self.ul_symbols_in(slot) >= min_symbols)

    def _next(self, mask: BoolArray, slot: IntArray | int, what: str) -> IntArray:
        step = _next_true_offset(mask)
        if step[0] < 0:
            raise ValueError(f"pattern {self.letters!r} has no {what} slot")
        s = np.asarray(slot, dtype=np.int64)
        return np.asarray(s + step[s % self.period_slots], dtype=np.int64)

    def next_ul_slot(self, slot: IntArray | int, min_symbols: int = 1) -> IntArray:
        """First slot at or after ``slot`` with at least ``min_symbols`` UL symbols, same shape.

        Raises:
            ValueError: If no slot of the pattern has ``min_symbols`` UL symbols.
        """
        return self._next(self.ul_symbols >= min_symbols, slot, f">= {min_symbols}-UL-symbol")

    def next_dl_slot(self, slot: IntArray | int, min_symbols: int = 1) -> IntArray:
        """First slot at or after ``slot`` with at least ``min_symbols`` DL symbols, same shape.

        Raises:
            ValueError: If no slot of the pattern has ``min_symbols`` DL symbols.
        """
        return self._next(self.dl_symbols >= min_symbols, slot, f">= {min_symbols}-DL-symbol")

    def pusch_slot(
        self,
        grant_slot: IntArray | int,
        k2_slots: Sequence[int],
        min_ul_symbols: int = SYMBOLS_PER_SLOT,
    ) -> IntArray:
        """PUSCH slot of an UL grant sent in DL slot n: n + K2 (TS 38.214 §6.1.2.1).

        The gNB picks, among the configured K2 values (the k2 of the
        ``pusch-TimeDomainAllocationList`` rows, TS 38.331), the smallest one that lands on a
        slot with at least ``min_ul_symbols`` UL symbols: a PUSCH may not overlap DL symbols
        (TS 38.213 §11.1), so a K2 landing on a D slot is never signalled, and the smallest
        valid K2 is the lowest latency. Same numerology for PDCCH and PUSCH (no
        ⌊n·2^μPUSCH/2^μPDCCH⌋ scaling).

        Args:
            grant_slot: Slot n of the DCI, any shape, slot indices ≥ 0.
            k2_slots: Configured K2 values, slots (≥ 0).
            min_ul_symbols: UL symbols a slot needs to carry the PUSCH (14: U slots only).

        Returns:
            PUSCH slot, shape of ``grant_slot``; -1 where ``grant_slot`` has no DL symbol or no
            K2 of the set lands on a slot that can carry the PUSCH.
        """
        n = np.asarray(grant_slot, dtype=np.int64)
        k2 = np.sort(np.asarray(k2_slots, dtype=np.int64))
        # [n_k2, *n.shape]: candidate PUSCH slots, ascending K2 along axis 0.
        cand = n[None, ...] + k2.reshape((-1,) + (1,) * n.ndim)
        ok = self.carries_ul(cand, min_ul_symbols)
        first = np.argmax(ok, axis=0)
        out = np.take_along_axis(cand, first[None, ...], axis=0)[0]
        valid = ok.any(axis=0) & self.carries_dl(n)
        return np.asarray(np.where(valid, out, -1), dtype=np.int64)
