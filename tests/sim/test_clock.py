import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetwin.sim.clock import SlotClock


def test_no_drift_after_ten_million_slots():
    # Accumulating 0.5 ms 10^7 times drifts; t_k = k * slot_s does not (SimPy "Time and
    # Scheduling": float accumulation makes close events collide).
    clock = SlotClock(0.5e-3)
    k = 10**7
    assert clock.time_of(k) == k * 0.5e-3
    assert clock.slot_at(clock.time_of(k)) == k
    assert clock.next_slot(clock.time_of(k)) == k


@given(k=st.integers(0, 10**9), mu=st.integers(0, 3))
def test_slot_round_trips(k, mu):
    clock = SlotClock(1e-3 / 2**mu)
    t = clock.time_of(k)
    assert clock.slot_at(t) == k
    assert clock.next_slot(t) == k
    # Any instant strictly inside slot k maps to k and its next slot is k + 1.
    mid = t + clock.slot_s / 2
    assert clock.slot_at(mid) == k
    assert clock.next_slot(mid) == k + 1


def test_n_slots_and_bad_slot():
    clock = SlotClock(0.5e-3)
    assert clock.n_slots(1.0) == 2000
    assert clock.n_slots(1.0 + 1e-4) == 2001
    with pytest.raises(ValueError, match="slot_s"):
        SlotClock(0.0)
    assert math.isclose(clock.time_of(3), 1.5e-3)
