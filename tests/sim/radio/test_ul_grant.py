"""Uplink grant timing: SR (TS 38.213 §9.2.4), K2 (TS 38.214 §6.1.2.1), BSR (TS 38.321 §5.4.5)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.radio.link import tbs_bits
from edgetwin.sim.radio.tdd import SlotPattern, TddConfig
from edgetwin.sim.radio.ul_grant import (
    UlGrantConfig,
    UplinkTimeline,
    check_ul_grant,
    default_k2_slots,
    resolved_k2_slots,
    ul_delivery_timeline,
)


def _pattern(letters: str = "DDDSU", special: str = "10:2:2", mu: int = 1) -> SlotPattern:
    return SlotPattern.from_config(TddConfig(pattern=letters, special_symbols=special), mu)


def test_default_k2_is_table_a() -> None:
    # TS 38.214 Table 6.1.2.1.1-2 rows use K2 ∈ {j, j+1, j+2, j+3}; Table 6.1.2.1.1-4:
    # j = 1, 1, 2, 3 for μ = 0, 1, 2, 3.
    assert default_k2_slots(0) == (1, 2, 3, 4)
    assert default_k2_slots(1) == (1, 2, 3, 4)
    assert default_k2_slots(2) == (2, 3, 4, 5)
    assert default_k2_slots(3) == (3, 4, 5, 6)
    assert resolved_k2_slots(UlGrantConfig(k2_slots=(4, 2)), 1) == (2, 4)


def test_worked_example_single_ue_static_channel() -> None:
    """The issue's §6 check: delivery slot of a message computed by hand.

    Carrier: μ = 1 (0.5 ms slots), 20 MHz → 51 PRBs, TDD 'DDDSU' with S = 10:2:2, so U slots
    are 4, 9, 14, 19, 24, … (the S slot's 2 UL symbols take no PUSCH: pusch_min_symbols = 14).
    TBS (TS 38.214 §6.1.4.2 → §5.1.3.2), 51 PRBs × 14 symbols, 12 DM-RS REs/PRB, MCS 9 of
    table 1 (Q_m = 2, R = 679/1024):
      N_RE = min(156, 12·14 − 12)·51 = 156·51 = 7956
      N_info = 7956 · 679/1024 · 2 = 10550.4 > 3824
      n = ⌊log2(10550.4 − 24)⌋ − 5 = 13 − 5 = 8; N'_info = 2^8·round(10526.4 / 256) = 10496
      C = ⌈(10496 + 24) / 8424⌉ = 2; TBS = 8·C·⌈(10496 + 24) / (8·C)⌉ − 24 = 16·658 − 24 = 10504
    SR: period 10 slots, offset 4 → SR occasions 4, 14, 24, … (all on U slots).
    gNB processing 1 slot; K2 ∈ {1, 2, 3, 4} (default table A, μ = 1); BSR 16 bits.
    Message B = 4096 bytes = 32768 bits, arriving in slot 5:
      SR at slot 14 (first occasion ≥ 5; U slot 9 is no SR occasion)
      grant in slot 15 (first DL slot ≥ 14 + 1); smallest K2 landing on a U slot: 4 → PUSCH 19
      PUSCH 19 carries BSR + 10504 − 16 = 10488 bits; 32768 − 10488 = 22280 left
      the gNB knows the buffer from slot 20: grants 20 → 24, 25 → 29, 30 → 34
      PUSCH 24: 10504, PUSCH 29: 10504 (1272 left), PUSCH 34: 1272 bits
    Delivered at the end of slot 34: 34 + 1 − 5 = 30 slots = 15 ms after arrival.
    """
    tbs = tbs_bits(51, 14, 9, dmrs_re_per_prb=12)
    assert tbs == 10504
    p = _pattern("DDDSU", "10:2:2", mu=1)
    cfg = UlGrantConfig(sr_period_slots=10, sr_offset_slots=4, gnb_processing_slots=1)
    tl = ul_delivery_timeline(32768, 5, tbs, p, cfg)
    assert tl.sr_slot == 14
    assert tl.pusch_slots.tolist() == [19, 24, 29, 34]
    assert tl.grant_slots.tolist() == [15, 20, 25, 30]
    assert tl.message_bits.tolist() == [10488, 10504, 10504, 1272]
    assert tl.bsr_slot == 19
    assert tl.delivery_slot == 34
    assert tl.latency_slots == 30
    assert tl.latency_slots * 0.5e-3 == pytest.approx(15e-3)
    assert int(tl.message_bits.sum()) == 32768
    # Every grant obeys the K2 rule of the TDD helper (TS 38.214 §6.1.2.1).
    k2 = resolved_k2_slots(cfg, 1)
    assert (p.pusch_slot(tl.grant_slots, k2) == tl.pusch_slots).all()


def test_message_that_fits_the_first_tb_cancels_the_bsr() -> None:
    # TS 38.321 §5.4.5: a triggered BSR is cancelled when the grant holds all pending data but
    # not the BSR MAC CE too — the message goes in the first PUSCH either way.
    p = _pattern()
    cfg = UlGrantConfig()
    for b in (1, 1000 - 16, 1000 - 5, 1000):
        tl = ul_delivery_timeline(b, 5, 1000, p, cfg)
        assert tl.pusch_slots.tolist() == [19]
        assert tl.bsr_slot == -1
        assert tl.message_bits.tolist() == [b]
    # One bit more and the BSR takes 16 bits of the first TB: 1001 − 984 = 17 bits later.
    tl = ul_delivery_timeline(1001, 5, 1000, p, cfg)
    assert tl.message_bits.tolist() == [984, 17]
    assert tl.pusch_slots.tolist() == [19, 24]


def test_sr_occasion_in_special_slot_when_pucch_fits() -> None:
    # SR offset 3 → slots 3, 13, 23 are S slots with 2 UL symbols: valid for a 1–2 symbol
    # PUCCH (format 0), never for a 4-symbol one (TS 38.213 §11.1: no PUCCH on DL symbols).
    p = _pattern()
    ok = UlGrantConfig(sr_offset_slots=3, sr_pucch_symbols=2)
    tl = ul_delivery_timeline(100, 0, 1000, p, ok)
    # SR at 3, gNB from slot 4 (U: no PDCCH) → DCI at 5, K2 = 4 → PUSCH 9.
    assert (tl.sr_slot, tl.grant_slots[0], tl.delivery_slot) == (3, 5, 9)
    with pytest.raises(ValueError, match=r"ul_grant\.sr_offset_slots=3 .* offsets that do: 4, 9"):
        check_ul_grant(UlGrantConfig(sr_offset_slots=3, sr_pucch_symbols=4), p)


def test_fdd_every_slot() -> None:
    # FDD μ = 0: SR period 5 offset 0, arrival 2 → SR 5, DCI 6, K2 = 1 → PUSCH 7 (BSR).
    # 3000 bits, TBS 1000: 984 in slot 7; BSR known from slot 8, whose DCIs (K2 = 1, 2, 3)
    # grant PUSCH 9, 10 (1000 bits each) and 11 (the last 16 bits).
    p = SlotPattern.from_config(TddConfig(duplex="fdd"), 0)
    cfg = UlGrantConfig(sr_period_slots=5, sr_offset_slots=0)
    tl = ul_delivery_timeline(3000, 2, 1000, p, cfg)
    assert tl.sr_slot == 5
    assert tl.pusch_slots.tolist() == [7, 9, 10, 11]
    assert tl.grant_slots.tolist() == [6, 8, 8, 8]
    assert tl.message_bits.tolist() == [984, 1000, 1000, 16]


def test_two_ul_slots_granted_from_one_special_slot() -> None:
    # 'DDDDDDDSUU': SR at 8 (period 10, offset 8); a slow gNB (9 slots) can first grant in the
    # S slot 17 → PUSCH 18 (K2 = 1). BSR known from 27 (S): K2 = 1 → 28 and K2 = 2 → 29.
    p = _pattern("DDDDDDDSUU")
    cfg = UlGrantConfig(sr_offset_slots=8, gnb_processing_slots=9)
    tl = ul_delivery_timeline(2000, 0, 1000, p, cfg)
    assert tl.sr_slot == 8
    assert tl.pusch_slots.tolist() == [18, 28, 29]
    assert tl.grant_slots.tolist() == [17, 27, 27]
    assert tl.message_bits.tolist() == [984, 1000, 16]


def test_configured_grant_skips_the_sr() -> None:
    # Configured grant every 5 slots on U slot 4 (TS 38.321 §5.8.2): arrival 5 → first
    # occasion 9 (BSR + 1984 bits), then 14 and 19 — 10 slots earlier than with an SR (29).
    p = _pattern()
    cg = UlGrantConfig(configured_grant_period_slots=5, configured_grant_offset_slots=4)
    tl = ul_delivery_timeline(5000, 5, 2000, p, cg)
    assert tl.sr_slot == -1
    assert tl.pusch_slots.tolist() == [9, 14, 19]
    assert tl.grant_slots.tolist() == [-1, -1, -1]
    assert tl.message_bits.tolist() == [1984, 2000, 1016]
    dyn = ul_delivery_timeline(5000, 5, 2000, p, UlGrantConfig())
    assert dyn.delivery_slot == 29


def test_configured_grant_plus_dynamic_grants() -> None:
    # 'DDDDDDDSUU', configured occasions on slot 8 of each period only; after the BSR (slot 8)
    # the gNB adds dynamic grants on slot 9 of each period: 18 (CG), 19 (DCI 15), 28 (CG),
    # 29 (DCI 25). 4000 bits, TBS 1000: 984 + 1000 + 1000 + 1000 + 16.
    p = _pattern("DDDDDDDSUU")
    cfg = UlGrantConfig(
        sr_offset_slots=8, configured_grant_period_slots=10, configured_grant_offset_slots=8
    )
    tl = ul_delivery_timeline(4000, 0, 1000, p, cfg)
    assert tl.pusch_slots.tolist() == [8, 18, 19, 28, 29]
    assert tl.grant_slots.tolist() == [-1, -1, 15, -1, 25]
    assert tl.message_bits.tolist() == [984, 1000, 1000, 1000, 16]


def test_tbs_per_pattern_slot_with_pusch_in_special_slot() -> None:
    # 'DDDSU' with a 6:4:4 special slot and pusch_min_symbols = 4: the S slot carries a small
    # PUSCH (TBS 300) and the U slot a full one (TBS 1000); K2 {1..4} reaches both.
    p = _pattern("DDDSU", "6:4:4")
    cfg = UlGrantConfig(pusch_min_symbols=4, sr_offset_slots=4)
    tbs = np.array([0, 0, 0, 300, 1000])
    tl = ul_delivery_timeline(2000, 0, tbs, p, cfg)
    # SR 4 → DCI 5, smallest K2 landing on a >= 4-UL-symbol slot: 3 → PUSCH 8 (S): 300 − 16.
    # BSR known from 9; earliest DCI reaching each slot: 13 (S) ← 10, 14 (U) ← 10,
    # 18 (S) ← 15, 19 (U) ← 15. Bits: 284, 300, 1000, 300, 2000 − 1884 = 116.
    assert tl.pusch_slots.tolist() == [8, 13, 14, 18, 19]
    assert tl.grant_slots.tolist() == [5, 10, 10, 15, 15]
    assert tl.message_bits.tolist() == [284, 300, 1000, 300, 116]


def _reference(
    b: int, t: int, tbs: int, p: SlotPattern, cfg: UlGrantConfig
) -> tuple[list[int], list[int]]:
    """Slot-by-slot gNB: each DL slot grants, smallest K2 first, every reachable free PUSCH slot."""
    per, k2 = p.period_slots, resolved_k2_slots(cfg, p.mu)
    dl, ul = p.dl_symbols, p.ul_symbols
    k = t
    while (k - cfg.sr_offset_slots) % cfg.sr_period_slots or ul[k % per] < cfg.sr_pucch_symbols:
        k += 1
    n = k + cfg.gnb_processing_slots
    while True:
        cands = [n + x for x in k2 if ul[(n + x) % per] >= cfg.pusch_min_symbols]
        if dl[n % per] > 0 and cands:
            break
        n += 1
    first, first_dci = cands[0], n
    left = b - (tbs - cfg.bsr_bits) if b > tbs else 0
    n = first + cfg.gnb_processing_slots
    granted: dict[int, int] = {}  # PUSCH slot -> DCI slot
    while left > 0:
        if dl[n % per] > 0:
            for x in k2:
                u = n + x
                if left > 0 and ul[u % per] >= cfg.pusch_min_symbols and u not in granted:
                    granted[u] = n
                    left -= tbs
        n += 1
    us = sorted(granted)
    return [first, *us], [first_dci] + [granted[u] for u in us]


def test_matches_slot_by_slot_reference() -> None:
    rng = np.random.default_rng(11)
    patterns = [("DDDSU", 1), ("DDDDDDDSUU", 1), ("DSUU", 2), ("DDSUDDSUUU", 1), ("DU", 1)]
    n_checked = 0
    for _ in range(300):
        letters, mu = patterns[rng.integers(len(patterns))]
        p = _pattern(letters, "10:2:2", mu)
        lo = int(rng.integers(0, 3))
        k2 = tuple(range(lo, lo + int(rng.integers(1, 6))))  # contiguous sets, as in table A
        period = int(rng.choice([1, 2, 5, 10, 20]))
        good = [o for o in range(period) if _sr_lands(p, period, o)]
        cfg = UlGrantConfig(
            sr_period_slots=period,  # type: ignore[arg-type]
            sr_offset_slots=int(rng.choice(good)),
            gnb_processing_slots=int(rng.integers(1, 5)),
            k2_slots=k2,
        )
        try:
            check_ul_grant(cfg, p)
        except ValueError:
            continue  # e.g. K2 = {0} on a pattern without DL+UL slots
        b, t = int(rng.integers(1, 20000)), int(rng.integers(0, 50))
        tbs = int(rng.integers(100, 3000))
        tl = ul_delivery_timeline(b, t, tbs, p, cfg)
        ref_slots, ref_dci = _reference(b, t, tbs, p, cfg)
        assert tl.pusch_slots.tolist() == ref_slots, (letters, cfg, b, t, tbs)
        assert tl.grant_slots.tolist() == ref_dci, (letters, cfg, b, t, tbs)
        n_checked += 1
    assert n_checked > 200


def _sr_lands(p: SlotPattern, period: int, offset: int) -> bool:
    """Whether an SR with this period and offset ever falls on a slot with UL symbols."""
    k = np.arange(int(np.lcm(period, p.period_slots)))
    return bool((((k - offset) % period == 0) & p.carries_ul(k)).any())


def test_delivery_monotone_in_message_size() -> None:
    p = _pattern("DDDDDDDSUU")
    cfg = UlGrantConfig(sr_offset_slots=9)
    sizes = np.arange(1, 40000, 997)
    slots = [ul_delivery_timeline(int(b), 3, 1500, p, cfg).delivery_slot for b in sizes]
    assert np.all(np.diff(slots) >= 0)
    # Number of PUSCHs: ⌈(B + BSR) / TBS⌉ once the message spills over the first TB.
    for b in sizes[sizes > 1500]:
        tl = ul_delivery_timeline(int(b), 3, 1500, p, cfg)
        assert tl.pusch_slots.size == -(-(int(b) + 16) // 1500)


def test_large_message_is_fast_and_exact() -> None:
    # 1 MB over 1000-bit TBs on 'DDDSU' (one U slot per 5): 8389 PUSCHs, one per period once
    # the BSR is known: the last PUSCH is 5 slots after the previous one.
    p = _pattern()
    b = 8 * 2**20
    tl = ul_delivery_timeline(b, 0, 1000, p, UlGrantConfig())
    assert isinstance(tl, UplinkTimeline)
    assert tl.pusch_slots.size == -(-(b + 16) // 1000)
    assert np.all(np.diff(tl.pusch_slots) == 5)
    assert int(tl.message_bits.sum()) == b


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"sr_period_slots": 3}, "sr_period_slots", "1, 2, 4, 5, 8, 10"),
        ({"sr_offset_slots": 10}, "", "sr_offset_slots=10 must be in 0..9"),
        ({"k2_slots": (1, 40)}, "k2_slots", "0..32"),
        ({"k2_slots": (2, 2)}, "k2_slots", "distinct"),
        ({"k2_slots": ()}, "k2_slots", "1..16"),
        ({"gnb_processing_slots": 0}, "gnb_processing_slots", "greater than or equal to 1"),
        ({"bsr_bits": -8}, "bsr_bits", "greater than or equal to 0"),
        ({"configured_grant_period_slots": 5, "configured_grant_offset_slots": 5}, "", "0..4"),
        ({"sr_pucch_symbols": True}, "sr_pucch_symbols", "valid integer"),
    ],
)
def test_bad_config_one_clear_line(kwargs: dict[str, object], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as e:
        UlGrantConfig(**kwargs)  # type: ignore[arg-type]
    errs = e.value.errors()
    assert len(errs) == 1
    assert ".".join(str(x) for x in errs[0]["loc"]) == field
    assert needle in errs[0]["msg"]
    assert "\n" not in errs[0]["msg"]


def test_config_against_pattern_errors() -> None:
    p = _pattern()  # DDDSU, μ = 1
    with pytest.raises(ValueError, match=r"offsets that do: 3, 4$"):
        check_ul_grant(UlGrantConfig(sr_period_slots=5, sr_offset_slots=0), p)
    with pytest.raises(ValueError, match=r"sr_period_slots=320 exceeds 160 slots \(80 ms\)"):
        check_ul_grant(UlGrantConfig(sr_period_slots=320, sr_offset_slots=4), p)
    # K2 = 5 maps every DL slot onto a DL slot of the 5-slot pattern.
    with pytest.raises(ValueError, match=r"k2_slots=\(5,\) reach no slot"):
        check_ul_grant(UlGrantConfig(k2_slots=(5,)), p)
    with pytest.raises(ValueError, match="configured_grant_offset_slots=1"):
        check_ul_grant(
            UlGrantConfig(configured_grant_period_slots=5, configured_grant_offset_slots=1), p
        )
    with pytest.raises(ValueError, match="tbs_bits must exceed bsr_bits=16"):
        ul_delivery_timeline(100, 0, 16, p, UlGrantConfig())
    with pytest.raises(ValueError, match=r"scalar or shape \[5\]"):
        ul_delivery_timeline(100, 0, np.array([1000, 1000]), p, UlGrantConfig())
    with pytest.raises(ValueError, match="message_bits > 0"):
        ul_delivery_timeline(0, 0, 1000, p, UlGrantConfig())
