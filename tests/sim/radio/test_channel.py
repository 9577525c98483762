"""Statistical channel backend: the ChannelBatch contract and the fading statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import j0

from edgetwin.sim.radio.channel import (
    ChannelBatch,
    ChannelConfig,
    StatisticalChannel,
    exponential_tap_profile,
    make_channel,
    rms_delay_spread_s,
    sum_of_sinusoids,
)
from edgetwin.sim.radio.geometry import TopologyConfig, antenna_gain_db, build_layout
from edgetwin.sim.radio.mobility import MobilityConfig, make_mobility
from edgetwin.sim.radio.pathloss import los_probability, pathloss_db
from edgetwin.sim.units import SPEED_OF_LIGHT_MPS

FC = 3.5e9
SLOT_S = 5e-4
PRB_HZ = (np.arange(51) - 25) * 360e3  # 30 kHz SCS, 12 subcarriers per PRB


def _channel(
    topo: dict[str, object] | None = None,
    mob: dict[str, object] | None = None,
    seed: int = 0,
    **cfg: object,
) -> StatisticalChannel:
    lay = build_layout(TopologyConfig(**(topo or {})), np.random.default_rng(11))  # type: ignore[arg-type]
    mobility = make_mobility(MobilityConfig(**(mob or {})), lay, np.random.default_rng(12))  # type: ignore[arg-type]
    ch = make_channel(
        ChannelConfig(**cfg),  # type: ignore[arg-type]
        lay,
        mobility,
        carrier_hz=FC,
        prb_frequencies_hz=PRB_HZ,
        slot_s=SLOT_S,
        bs_antenna_gain_dbi=8.0,
        rng=np.random.default_rng(seed),
    )
    assert isinstance(ch, StatisticalChannel)
    return ch


def _fading(batch: ChannelBatch) -> np.ndarray:
    """Small-scale power gain alone, [n_slot, n_cell, n_ue, n_prb]."""
    c = np.arange(batch.large_scale_gain.shape[0])
    serving = batch.large_scale_gain[c, :, c]
    return batch.gain / serving[None, :, :, None]


MANY_LINKS = {"kind": "hex", "n_sites": 7, "sectors_per_site": 3, "ues_per_cell": 50}


def test_batch_contract() -> None:
    ch = _channel({"kind": "hex", "n_sites": 7, "sectors_per_site": 3, "ues_per_cell": 4})
    assert (ch.n_cell, ch.n_ue, ch.n_prb) == (21, 4, 51)
    for k in range(3):
        b = ch.next_batch()
        assert b.first_slot == 100 * k
        assert b.n_slot == 100
        assert b.gain.shape == (100, 21, 4, 51)
        assert b.gain.dtype == np.float64
        assert b.large_scale_gain.shape == (21, 4, 21)
        assert b.pathloss_db.shape == (21, 4)
        assert b.los.shape == (21, 4)
        assert b.los.dtype == np.bool_
        assert np.all(np.isfinite(b.gain))
        assert np.all(b.gain > 0)
        assert np.all(b.large_scale_gain > 0)
    # The serving link is, on average, much stronger than the interferers.
    c = np.arange(21)
    serving_db = 10 * np.log10(b.large_scale_gain[c, :, c])
    assert np.median(serving_db) > np.median(10 * np.log10(b.large_scale_gain)) + 10


def test_mean_fading_gain_is_one() -> None:
    # 1050 links; PRBs 10 apart (3.6 MHz >> coherence bandwidth ~ 1/(5 DS) = 0.55 MHz) are
    # nearly independent: ~6300 unit-mean, unit-variance samples, std of the mean 0.013 ->
    # tolerance 0.05 (4σ).
    f = _fading(_channel(MANY_LINKS).next_batch())
    samples = f[0, :, :, ::10]
    assert samples.mean() == pytest.approx(1.0, abs=0.05)
    assert f.mean() == pytest.approx(1.0, abs=0.05)
    # Rayleigh: P(|h|² < 0.1) = 1 − e^−0.1 = 0.095 (binomial std 0.004 -> tolerance 0.02).
    assert np.mean(samples < 0.1) == pytest.approx(1 - np.exp(-0.1), abs=0.02)


def test_tap_process_autocorrelation_matches_j0() -> None:
    # 4000 independent taps, 16 sinusoids, 2π f_D T = 0.5 rad per slot.
    rng = np.random.default_rng(3)
    m, n, x = 16, 4000, 0.5
    theta = rng.uniform(0, 2 * np.pi, (m, n))
    d_theta = x * np.cos(rng.uniform(0, 2 * np.pi, (m, n)))
    h = sum_of_sinusoids(theta, d_theta, 60).astype(np.complex128)  # [n_slot, n]
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.03)
    for k in range(1, 11):
        r = np.mean(h[k:] * np.conj(h[:-k]))
        # The estimate averages 4000 independent products: std ≈ 1/sqrt(4000) = 0.016.
        assert r.real == pytest.approx(j0(k * x), abs=0.05), k
        assert abs(r.imag) < 0.05


def test_channel_power_autocorrelation_matches_j0_squared() -> None:
    # Flat fading at 30 m/s: f_D = 350 Hz, 2π f_D T = 1.10 rad. For a Rayleigh process the
    # normalized autocovariance of |h|² is |R(k)|² = J0(2π f_D k T)².
    ch = _channel(MANY_LINKS, {"kind": "static", "speed_mps": 30.0}, n_taps=1)
    p = _fading(ch.next_batch())[:, :, :, 0].reshape(100, -1)  # [n_slot, n_link]
    p = (p - p.mean()) / p.std()
    x = 2 * np.pi * 30.0 * FC / SPEED_OF_LIGHT_MPS * SLOT_S
    for k in range(1, 6):
        rho = np.mean(p[k:] * p[:-k])
        assert rho == pytest.approx(j0(k * x) ** 2, abs=0.06), k


def test_frequency_correlation_decreases_with_prb_separation() -> None:
    ch = _channel(MANY_LINKS, delay_spread_s=100e-9)
    f = _fading(ch.next_batch())[::20].reshape(5, -1, 51)  # 5 nearly independent slots
    f = (f - f.mean()) / f.std()
    # Expected power correlation |Σ_l P_l e^{−j2π Δf τ_l}|², averaged over the links.
    rhos = []
    for sep in (1, 4, 16):
        rho = np.mean(f[:, :, sep:] * f[:, :, :-sep])
        r = (ch.tap_power * np.exp(-2j * np.pi * sep * 360e3 * ch.tap_delay_s)).sum(axis=1)
        assert rho == pytest.approx(np.mean(np.abs(r) ** 2), abs=0.07), sep
        rhos.append(rho)
    assert rhos[0] > rhos[1] > rhos[2]
    assert rhos[2] < 0.5 * rhos[0]


def test_same_seed_gives_identical_batches() -> None:
    topo = {"kind": "hex", "n_sites": 7, "sectors_per_site": 3, "ues_per_cell": 3}
    mob = {"kind": "linear", "speed_mps": 10.0}
    a, b, c = _channel(topo, mob, seed=5), _channel(topo, mob, seed=5), _channel(topo, mob, seed=6)
    for _ in range(3):
        ba, bb, bc = a.next_batch(), b.next_batch(), c.next_batch()
        np.testing.assert_array_equal(ba.gain, bb.gain)
        np.testing.assert_array_equal(ba.large_scale_gain, bb.large_scale_gain)
        np.testing.assert_array_equal(ba.los, bb.los)
        assert not np.array_equal(ba.gain, bc.gain)


def test_batches_are_continuous() -> None:
    # 5 m/s: the lag-1 correlation of |h|² is J0(0.183)² = 0.983 within and across batches.
    ch = _channel(MANY_LINKS, {"kind": "static", "speed_mps": 5.0}, n_taps=1, batch_slots=50)
    b0, b1 = _fading(ch.next_batch())[..., 0], _fading(ch.next_batch())[..., 0]
    p = np.concatenate([b0, b1]).reshape(100, -1)
    p = (p - p.mean()) / p.std()
    pairs = np.mean(p[1:50] * p[:49], axis=1)  # 49 single-pair estimates inside batch 0
    across = np.mean(p[50] * p[49])  # the pair that straddles the boundary
    assert pairs.mean() > 0.95
    # The boundary pair is just another pair: within the spread of the in-batch estimates
    # (a restart of the fading process would give ~0).
    assert abs(across - pairs.mean()) < 4 * pairs.std() + 0.02
    # The gains are close, not just correlated: as close as between two slots inside a batch.
    jump_across = np.median(np.abs(np.log(b1[0] / b0[-1])))
    jump_within = np.median(np.abs(np.log(b0[1:] / b0[:-1])))
    assert jump_across < 3 * jump_within


def test_large_scale_follows_the_pathloss_model() -> None:
    ch = _channel({"kind": "single", "ues_per_cell": 30}, los="los", shadowing=False, fading="none")
    b = ch.next_batch()
    lay = ch.layout
    d = np.hypot(lay.ue_position_m[0, :, 0], lay.ue_position_m[0, :, 1])
    pl = pathloss_db("uma", d, fc_hz=FC, h_bs_m=25.0, h_ut_m=1.5, los=True)
    np.testing.assert_allclose(b.pathloss_db[0], pl)
    np.testing.assert_allclose(10 * np.log10(b.large_scale_gain[0, :, 0]), 8.0 - pl)
    np.testing.assert_array_equal(
        b.gain, np.broadcast_to(b.large_scale_gain[0, :, 0, None], b.gain.shape)
    )
    assert b.los.all()


def test_shadowing_and_shared_site_states() -> None:
    ch = _channel(MANY_LINKS, los="nlos", fading="none")
    b = ch.next_batch()
    lay = ch.layout
    g_ant = antenna_gain_db(lay, lay.ue_position_m, max_gain_dbi=8.0)
    sf_db = 10 * np.log10(b.large_scale_gain) - g_ant + ch.large_scale(lay.ue_position_m)[1]
    # σ_SF = 6 dB (UMa NLOS); 1050 UE-site draws: std of the sample std ≈ 6/sqrt(2100) = 0.13.
    assert sf_db[:, :, ::3].std() == pytest.approx(6.0, abs=0.6)
    # Co-sited sectors share the shadowing and LOS state of a UE-site link.
    np.testing.assert_allclose(sf_db[:, :, 0], sf_db[:, :, 1])
    np.testing.assert_allclose(sf_db[:, :, 0], sf_db[:, :, 2])


def test_los_fraction_follows_los_probability() -> None:
    ch = _channel(MANY_LINKS)
    lay = ch.layout
    c = np.arange(lay.n_cell)
    d = np.hypot(*(lay.ue_position_m[..., :2] - lay.bs_position_m[:, None, :2]).transpose(2, 0, 1))
    p = los_probability("uma", d)
    # 1050 Bernoulli draws: std of the mean <= 0.5/sqrt(1050) = 0.015.
    assert ch.next_batch().los.mean() == pytest.approx(p.mean(), abs=0.06)
    assert ch._los[c, :, c].shape == (lay.n_cell, lay.n_ue)


def test_moving_ues_update_the_large_scale_gains() -> None:
    ch = _channel({"kind": "single", "ues_per_cell": 5}, {"kind": "linear", "speed_mps": 30.0})
    first = ch.next_batch()
    for _ in range(20):  # 1 s later: each UE moved 30 m
        last = ch.next_batch()
    assert np.all(first.pathloss_db != last.pathloss_db)
    np.testing.assert_array_equal(first.los, last.los)  # LOS states are per link, fixed


def test_indoor_ues_get_o2i_penetration() -> None:
    indoor = _channel({"kind": "single", "ues_per_cell": 400, "indoor_fraction": 1.0}, los="los")
    lay = indoor.layout
    d = np.hypot(lay.ue_position_m[0, :, 0], lay.ue_position_m[0, :, 1])
    extra = indoor.next_batch().pathloss_db[0] - pathloss_db(
        "uma", d, fc_hz=FC, h_bs_m=25.0, h_ut_m=1.5, los=True
    )
    # Low-loss model at 3.5 GHz: mean 12.70 + 0.5·25/3 = 16.86 dB, std 4.85 dB -> ±1 dB.
    assert extra.mean() == pytest.approx(16.86, abs=1.0)


@pytest.mark.parametrize("n_taps", [1, 2, 8, 32])
def test_tap_profile_has_the_requested_delay_spread(n_taps: int) -> None:
    ds = np.array([30e-9, 100e-9, 363e-9])
    delay, power = exponential_tap_profile(ds, n_taps, np.random.default_rng(0))
    assert delay.shape == power.shape == (3, n_taps)
    np.testing.assert_allclose(power.sum(axis=1), 1.0)
    expected = np.zeros(3) if n_taps == 1 else ds
    np.testing.assert_allclose(rms_delay_spread_s(delay, power), expected, rtol=1e-6, atol=1e-15)
    assert np.all(np.diff(delay, axis=1) > 0)


def test_no_fading_and_zero_speed() -> None:
    frozen = _channel({"ues_per_cell": 3}, {"kind": "static", "speed_mps": 0.0})
    b = frozen.next_batch()
    np.testing.assert_allclose(b.gain, np.broadcast_to(b.gain[:1], b.gain.shape), rtol=1e-6)
    # Still frequency-selective.
    assert not np.allclose(b.gain[0, 0, 0], b.gain[0, 0, 0, :1], rtol=1e-3, atol=0)
