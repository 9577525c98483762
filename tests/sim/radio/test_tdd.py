"""TDD slot pattern (TS 38.213 §11.1), FDD, and the K2 rule of TS 38.214 §6.1.2.1."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.radio.tdd import (
    SlotPattern,
    TddConfig,
    allowed_period_slots,
    check_tdd_numerology,
)


def _pattern(letters: str = "DDDSU", special: str = "10:2:2", mu: int = 1) -> SlotPattern:
    return SlotPattern.from_config(TddConfig(pattern=letters, special_symbols=special), mu)


def test_symbols_per_slot_follow_the_letters() -> None:
    # TS 38.213 §11.1: D slots are all-DL, U slots all-UL; the special slot has d_sym DL
    # symbols first and u_sym UL symbols last, flexible (guard) symbols between.
    p = _pattern("DDDSU", "10:2:2")
    assert p.dl_symbols.tolist() == [14, 14, 14, 10, 0]
    assert p.ul_symbols.tolist() == [0, 0, 0, 2, 14]
    assert p.period_slots == 5
    assert p.period_s == pytest.approx(2.5e-3)  # 5 slots of 0.5 ms at μ = 1
    with pytest.raises(ValueError, match="read-only"):
        p.dl_symbols[0] = 0


@pytest.mark.parametrize(
    ("letters", "special", "dl", "ul"),
    [
        # DL: (3·14 + 10) / 70, UL: (14 + 2) / 70 — the guard symbols count for neither.
        ("DDDSU", "10:2:2", 52 / 70, 16 / 70),
        # n78 5 ms pattern: DL (7·14 + 6) / 140, UL (2·14 + 4) / 140.
        ("DDDDDDDSUU", "6:4:4", 104 / 140, 32 / 140),
        ("DSUU", "12:2:0", 26 / 56, 28 / 56),
    ],
)
def test_duty_fractions(letters: str, special: str, dl: float, ul: float) -> None:
    p = _pattern(letters, special, mu=1)
    assert p.dl_fraction == pytest.approx(dl)
    assert p.ul_fraction == pytest.approx(ul)


def test_fdd_every_slot_both_directions() -> None:
    p = SlotPattern.from_config(TddConfig(duplex="fdd"), 0)
    slots = np.arange(7)
    assert p.is_fdd
    assert p.carries_dl(slots).all()
    assert p.carries_ul(slots, 14).all()
    assert (p.dl_fraction, p.ul_fraction) == (1.0, 1.0)
    assert p.next_ul_slot(slots, 14).tolist() == slots.tolist()
    # K2 = 1 lands on the next slot whatever it is (paired carrier).
    assert p.pusch_slot(slots, (1, 2)).tolist() == (slots + 1).tolist()


def test_vectorized_queries_keep_the_shape() -> None:
    p = _pattern("DDDSU")
    slots = np.arange(20).reshape(4, 5)
    assert p.carries_dl(slots).shape == (4, 5)
    assert p.carries_ul(slots, 14)[:, 4].all()
    assert not p.carries_ul(slots, 14)[:, :4].any()
    # The S slot has 2 UL symbols: an UL slot for a 1- or 2-symbol PUCCH, not for 3.
    assert p.carries_ul(slots, 2)[:, 3].all()
    assert not p.carries_ul(slots, 3)[:, 3].any()
    assert int(p.ul_symbols_in(13)) == 2  # slot 13 = pattern slot 3
    assert int(p.dl_symbols_in(13)) == 10


@pytest.mark.parametrize("letters", ["DDDSU", "DDDDDDDSUU", "DSUUU", "DDSUDDSUUU"])
@pytest.mark.parametrize("min_symbols", [1, 2, 14])
def test_next_ul_and_dl_slot_match_a_scan(letters: str, min_symbols: int) -> None:
    p = _pattern(letters, "10:2:2")
    slots = np.arange(3 * p.period_slots)
    nxt_ul = p.next_ul_slot(slots, min_symbols)
    nxt_dl = p.next_dl_slot(slots, min_symbols)
    for s in slots:
        k = s
        while p.ul_symbols[k % p.period_slots] < min_symbols:
            k += 1
        assert nxt_ul[s] == k
        k = s
        while p.dl_symbols[k % p.period_slots] < min_symbols:
            k += 1
        assert nxt_dl[s] == k


def test_next_ul_slot_hand_values() -> None:
    p = _pattern("DDDSU")
    # With a 1-symbol PUCCH the S slot (2 UL symbols) counts; for a PUSCH only U slots do.
    assert p.next_ul_slot(np.arange(6), 1).tolist() == [3, 3, 3, 3, 4, 8]
    assert p.next_ul_slot(np.arange(6), 14).tolist() == [4, 4, 4, 4, 4, 9]
    pp = _pattern("DSUUU", "12:2:0")  # S slot without UL symbols
    with pytest.raises(ValueError, match="no >= 15-UL-symbol slot"):
        pp.next_ul_slot(0, 15)


def test_pusch_slot_smallest_k2_on_an_ul_slot() -> None:
    # TS 38.214 §6.1.2.1: PUSCH in slot n + K2; the gNB uses the smallest configured K2 that
    # lands on a slot able to carry the PUSCH (TS 38.213 §11.1: no PUSCH on DL symbols).
    p = _pattern("DDDSU")
    n = np.arange(10)
    # Default table A at μ = 1: K2 ∈ {1, 2, 3, 4}: every D/S slot reaches the next U slot.
    assert p.pusch_slot(n, (1, 2, 3, 4)).tolist() == [4, 4, 4, 4, -1, 9, 9, 9, 9, -1]
    # K2 = 1 only: just the S slot can grant (n = 3 → 4); a U slot has no PDCCH (-1).
    assert p.pusch_slot(n, (1,)).tolist() == [-1, -1, -1, 4, -1, -1, -1, -1, 9, -1]
    # A PUSCH that fits the S slot's 2 UL symbols: slot 0 reaches slot 3 with K2 = 3.
    assert p.pusch_slot(n[:5], (1, 2, 3, 4), min_ul_symbols=2).tolist() == [3, 3, 3, 4, -1]
    # 10-slot pattern: the S slot (7) grants slot 8 with K2 = 1 and slot 9 with K2 = 2.
    q = _pattern("DDDDDDDSUU")
    assert q.pusch_slot(np.arange(8), (1, 2, 3, 4)).tolist() == [-1, -1, -1, -1, 8, 8, 8, 8]
    assert int(q.pusch_slot(7, (2, 3))) == 9


def test_pusch_slot_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    p = _pattern("DDSUDDSUUU", "6:4:4")
    n = np.arange(40)
    for _ in range(30):
        k2 = tuple(sorted(rng.choice(np.arange(0, 9), size=rng.integers(1, 5), replace=False)))
        got = p.pusch_slot(n, k2)
        for i in n:
            want = -1
            if p.dl_symbols[i % 10] > 0:
                for k in k2:
                    if p.ul_symbols[(i + k) % 10] == 14:
                        want = i + k
                        break
            assert got[i] == want, (k2, i)


@pytest.mark.parametrize(
    ("mu", "slots"),
    # TS 38.213 §11.1: P ∈ {0.5, 0.625, 1, 1.25, 2, 2.5, 5, 10} ms, 0.625 only at μ = 3,
    # 1.25 only at μ ≥ 2, 2.5 only at μ ≥ 1; P·2^μ slots per period.
    [
        (0, (1, 2, 5, 10)),
        (1, (1, 2, 4, 5, 10, 20)),
        (2, (2, 4, 5, 8, 10, 20, 40)),
        (3, (4, 5, 8, 10, 16, 20, 40, 80)),
    ],
)
def test_allowed_periods_per_numerology(mu: int, slots: tuple[int, ...]) -> None:
    assert allowed_period_slots(mu) == slots


@pytest.mark.parametrize(
    ("letters", "mu", "ok"),
    [
        ("DDDSU", 0, True),  # 5 ms
        ("DDDSU", 1, True),  # 2.5 ms
        ("DDDSU", 2, True),  # 1.25 ms
        ("DDDSU", 3, True),  # 0.625 ms
        ("DDDDDDDSUU", 1, True),  # 5 ms
        ("DSU", 0, False),  # 3 ms
        ("DSU", 3, False),  # 0.375 ms
        ("DDDSUDD", 1, False),  # 3.5 ms
        ("DU", 2, True),  # 0.5 ms
        ("U", 0, False),  # no DL: caught by the config itself
    ],
)
def test_period_check(letters: str, mu: int, ok: bool) -> None:
    if letters == "U":
        with pytest.raises(ValidationError, match="downlink symbols"):
            TddConfig(pattern=letters)
        return
    cfg = TddConfig(pattern=letters)
    if ok:
        check_tdd_numerology(cfg, mu)
        assert SlotPattern.from_config(cfg, mu).period_slots == len(letters)
    else:
        with pytest.raises(ValueError, match=r"tdd\.pattern .*\(TS 38\.213 §11\.1\)") as e:
            SlotPattern.from_config(cfg, mu)
        msg = str(e.value)
        assert "\n" not in msg
        assert "0.5, 0.625, 1, 1.25, 2, 2.5, 5, 10 ms" in msg


def test_special_symbols_parsing() -> None:
    assert TddConfig(special_symbols="6:4:4").special_symbols == (6, 4, 4)  # type: ignore[arg-type]
    assert TddConfig(special_symbols=[12, 2, 0]).special_symbols == (12, 2, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"pattern": "DDXSU"}, "pattern", "allowed slot letters: 'D'"),
        ({"pattern": "dddsu"}, "pattern", "allowed slot letters"),
        ({"pattern": ""}, "pattern", "at least 1 character"),
        ({"special_symbols": "10:2:3"}, "special_symbols", "summing to 14"),
        ({"special_symbols": "10-2-2"}, "special_symbols", "'DL:guard:UL'"),
        ({"special_symbols": (15, -1, 0)}, "special_symbols", ">= 0"),
        ({"pattern": "DDDDS", "special_symbols": "14:0:0"}, "", "uplink symbols"),
        ({"duplex": "fdd", "pattern": "DDDSU"}, "", "duplex='tdd' only"),
        ({"duplex": "tdm"}, "duplex", "'tdd' or 'fdd'"),
        ({"pattrn": "DDDSU"}, "pattrn", "Extra inputs"),
    ],
)
def test_bad_config_one_clear_line(kwargs: dict[str, object], field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as e:
        TddConfig(**kwargs)  # type: ignore[arg-type]
    errs = e.value.errors()
    assert len(errs) == 1
    assert ".".join(str(x) for x in errs[0]["loc"]) == field
    assert needle in errs[0]["msg"]
    assert "\n" not in errs[0]["msg"]
