import numpy as np
import pytest

from edgetwin.sim.radio.olla import olla_step_down_db, olla_update
from edgetwin.sim.radio.traffic import FullBufferTraffic, PoissonTraffic, TrafficSource


def test_olla_step_down_formula():
    # Δ_down = Δ_up · t / (1 − t): 0.5 dB up at 10 % target → 0.0556 dB down.
    assert olla_step_down_db(0.5, 0.1) == pytest.approx(0.5 / 9)


def test_olla_update_and_bounds():
    assert olla_update(0.0, True, 0.5, 0.1, 20.0) == pytest.approx(0.5)
    assert olla_update(0.0, False, 0.5, 0.1, 20.0) == pytest.approx(-0.1)
    assert olla_update(19.9, True, 0.5, 0.1, 20.0) == 20.0
    assert olla_update(-19.95, False, 0.5, 0.1, 20.0) == -20.0


def test_poisson_traffic_rate_and_next_arrival():
    cfg = PoissonTraffic(packet_rate_hz=100.0, packet_bits=1000)
    src = TrafficSource(cfg, 2, 3, 1e-3, 50, np.random.default_rng(0))
    total = sum((a.sum() if (a := src.arrivals(k)) is not None else 0.0) for k in range(5000))
    # 6 UEs × 100 pkt/s × 5 s × 1000 bit = 3e6 bits; Poisson count sd ≈ sqrt(3000) ≈ 1.8 %.
    assert total == pytest.approx(3e6, rel=0.06)
    sparse = PoissonTraffic(packet_rate_hz=0.5, packet_bits=1000)
    k = TrafficSource(sparse, 1, 2, 1e-3, 50, np.random.default_rng(1)).next_arrival_slot(0, 10**5)
    src2 = TrafficSource(sparse, 1, 2, 1e-3, 50, np.random.default_rng(1))
    first = next(k2 for k2 in range(10**5) if src2.arrivals(k2) is not None)
    assert k == first
    assert k > 50  # the answer came from a later batch than the first


def test_full_buffer_never_arrives_and_is_finite():
    src = TrafficSource(FullBufferTraffic(), 1, 2, 1e-3, 10, np.random.default_rng(0))
    assert src.arrivals(5) is None
    assert np.isfinite(src.initial_buffer_bits()).all()
    assert src.next_arrival_slot(0, 100) == 100


def test_an_external_wakeup_may_ask_for_slots_a_look_ahead_passed() -> None:
    # The cell sleeps to the next arrival (a look-ahead over many batches); an enqueue wakes it
    # earlier, and it then asks for slots of batches the look-ahead already dropped: those
    # slots had no arrivals, and the arrivals after them are unchanged.
    sparse = PoissonTraffic(packet_rate_hz=0.5, packet_bits=100)
    ref = TrafficSource(sparse, 1, 2, 1e-3, 50, np.random.default_rng(7))
    first = ref.next_arrival_slot(0, 10**5)
    assert first > 200  # several batches ahead
    src = TrafficSource(sparse, 1, 2, 1e-3, 50, np.random.default_rng(7))
    assert src.next_arrival_slot(1, 10**5) == first
    for k in (60, 61, 130):  # woken by an enqueue: slots inside dropped batches
        assert src.arrivals(k) is None
    assert src.next_arrival_slot(131, 10**5) == first  # the look-ahead resumes where it was
    np.testing.assert_array_equal(src.arrivals(first), ref.arrivals(first))
