"""NR numerology (TS 38.211 §4) and N_RB per channel bandwidth (TS 38.101-1 / -2 Table 5.3.2-1)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.radio.numerology import (
    frequency_range_of,
    n_prb_for_bandwidth,
    prb_bandwidth_hz,
    prb_center_offsets_hz,
    slot_duration_s,
    subcarrier_spacing_hz,
)


@pytest.mark.parametrize(
    ("mu", "scs_hz", "slot_s"),
    # TS 38.211 Table 4.2-1 (Δf = 2^μ·15 kHz) and §4.3.2 (2^μ slots per 1 ms subframe).
    [(0, 15e3, 1e-3), (1, 30e3, 0.5e-3), (2, 60e3, 0.25e-3), (3, 120e3, 0.125e-3)],
)
def test_scs_and_slot(mu: int, scs_hz: float, slot_s: float) -> None:
    assert subcarrier_spacing_hz(mu) == scs_hz
    assert slot_duration_s(mu) == slot_s
    assert prb_bandwidth_hz(mu) == 12 * scs_hz


@pytest.mark.parametrize("mu", [-1, 4, 7])
def test_bad_mu(mu: int) -> None:
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        subcarrier_spacing_hz(mu)
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        n_prb_for_bandwidth(20e6, mu)


@pytest.mark.parametrize(
    ("bw_hz", "mu", "fr", "n_rb"),
    [
        # TS 38.101-1 Table 5.3.2-1 (FR1)
        (3e6, 0, None, 15),
        (5e6, 0, None, 25),
        (20e6, 0, None, 106),
        (35e6, 0, None, 188),
        (50e6, 0, None, 270),
        (5e6, 1, None, 11),
        (20e6, 1, None, 51),
        (35e6, 1, None, 92),
        (100e6, 1, None, 273),
        (10e6, 2, None, 11),
        (100e6, 2, None, 135),
        (100e6, 2, "FR1", 135),
        # TS 38.101-2 Table 5.3.2-1 (FR2)
        (100e6, 2, "FR2", 132),
        (200e6, 2, None, 264),
        (50e6, 3, None, 32),
        (400e6, 3, "FR2", 264),
    ],
)
def test_n_rb_reference(bw_hz: float, mu: int, fr: str | None, n_rb: int) -> None:
    assert n_prb_for_bandwidth(bw_hz, mu, frequency_range=fr) == n_rb  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bw_hz", "mu", "fr", "guard_khz"),
    # Minimum guardband (BW·1000 − N_RB·SCS·12)/2 − SCS/2, compared with the values listed in
    # TS 38.101-1 Table 5.3.3-1 and TS 38.101-2 Table 5.3.3-1: an independent check of N_RB.
    [
        (5e6, 0, "FR1", 242.5),
        (20e6, 0, "FR1", 452.5),
        (50e6, 0, "FR1", 692.5),
        (20e6, 1, "FR1", 805.0),
        (100e6, 1, "FR1", 845.0),
        (100e6, 2, "FR1", 1370.0),
        (50e6, 2, "FR2", 1210.0),
        (400e6, 3, "FR2", 9860.0),
    ],
)
def test_guardband_matches_spec(bw_hz: float, mu: int, fr: str, guard_khz: float) -> None:
    n_rb = n_prb_for_bandwidth(bw_hz, mu, frequency_range=fr)  # type: ignore[arg-type]
    scs_khz = subcarrier_spacing_hz(mu) / 1e3
    assert (bw_hz / 1e3 - n_rb * 12 * scs_khz) / 2 - scs_khz / 2 == pytest.approx(guard_khz)


def test_bad_bandwidth_names_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70") as e:
        n_prb_for_bandwidth(12e6, 1)
    assert "MHz" in str(e.value)
    assert "μ=1" in str(e.value)
    # 15 kHz has no 60 MHz carrier; 120 kHz exists only in FR2.
    with pytest.raises(ValueError, match="FR1: 3, 5, 10"):
        n_prb_for_bandwidth(60e6, 0)
    with pytest.raises(ValueError, match="FR2: 50, 100, 200, 400 MHz"):
        n_prb_for_bandwidth(20e6, 3)
    with pytest.raises(ValueError, match="FR1"):
        n_prb_for_bandwidth(400e6, 3, frequency_range="FR1")
    with pytest.raises(ValueError, match="frequency_range"):
        n_prb_for_bandwidth(20e6, 1, frequency_range="FR3")  # type: ignore[arg-type]


def test_frequency_range() -> None:
    # TS 38.104 Table 5.1-1: FR1 410–7125 MHz, FR2 24.25–52.6 (71) GHz.
    assert frequency_range_of(3.5e9) == "FR1"
    assert frequency_range_of(7.125e9) == "FR1"
    assert frequency_range_of(7.2e9) == "FR2"
    assert frequency_range_of(28e9) == "FR2"
    with pytest.raises(ValueError, match="carrier_hz"):
        frequency_range_of(0.0)


def test_prb_center_offsets() -> None:
    off = prb_center_offsets_hz(51, 1)
    assert off.shape == (51,)
    np.testing.assert_allclose(np.diff(off), 360e3)
    np.testing.assert_allclose(off, -off[::-1])  # symmetric about the carrier centre
    assert off[25] == 0.0
    assert off[-1] - off[0] + 360e3 == pytest.approx(51 * 360e3)  # occupied bandwidth
    even = prb_center_offsets_hz(4, 0)
    np.testing.assert_allclose(even, [-270e3, -90e3, 90e3, 270e3])
    with pytest.raises(ValueError, match="n_prb"):
        prb_center_offsets_hz(0, 1)
