"""The wired link: hand-computed timing, queueing theory, conservation, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from pydantic import ValidationError

from edgetwin.sim.net import JitterConfig, LinkConfig, Message, WiredLink
from edgetwin.sim.rng import RandomStreams


def _link(env: simpy.Environment, seed: int = 0, **cfg: object) -> WiredLink:
    return WiredLink(env, "wan", LinkConfig(**cfg), RandomStreams(seed).get("link.wan"))


def _feed(env: simpy.Environment, link: WiredLink, times: np.ndarray, bits: np.ndarray) -> None:
    """Send message i at times[i] (s) with bits[i] bits."""

    def source() -> simpy.events.ProcessGenerator:
        for t, b in zip(times, bits, strict=True):
            yield env.timeout(float(t) - env.now)
            link.send(Message(int(b), "edge", "cloud", env.now))

    env.process(source())


def test_one_message_hand_computed() -> None:
    # 12,000 bits at 1 Mbit/s: 12 ms serialization, then 30 ms latency
    env = simpy.Environment()
    link = _link(env, latency_s=0.030, bandwidth_bps=1e6)
    env.run(until=1.0)
    msg = Message(12_000, "gnb", "cloud", env.now)
    done = link.send(msg)
    env.run(done)
    assert env.now == pytest.approx(1.0 + 0.012 + 0.030)
    hop = msg.hops[0]
    assert (hop.queueing_s, hop.transmission_s) == (0.0, pytest.approx(0.012))
    assert hop.propagation_s == pytest.approx(0.030)
    assert msg.t_delivered_s == pytest.approx(1.042)


def test_fifo_waits_behind_earlier_messages() -> None:
    # three 8,000-bit messages at t = 0 on 1 Mbit/s: they leave at 8, 16, 24 ms
    env = simpy.Environment()
    link = _link(env, latency_s=0.005, bandwidth_bps=1e6)
    msgs = [Message(8_000, "a", "b", 0.0) for _ in range(3)]
    for m in msgs:
        link.send(m)
    env.run()
    assert [m.hops[0].t_tx_end_s for m in msgs] == pytest.approx([0.008, 0.016, 0.024])
    assert [m.hops[0].queueing_s for m in msgs] == pytest.approx([0.0, 0.008, 0.016])
    assert [m.t_delivered_s for m in msgs] == pytest.approx([0.013, 0.021, 0.029])


def _poisson_run(service: str, rho: float, n: int, seed: int) -> dict[str, float]:
    """n Poisson arrivals at rate 1/s, mean service time rho s (exponential or constant)."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0, n))
    bw = 1e6
    mean_bits = rho * bw
    bits = rng.exponential(mean_bits, n) if service == "exp" else np.full(n, mean_bits)
    bits = np.maximum(np.rint(bits), 1)
    env = simpy.Environment()
    link = _link(env, bandwidth_bps=bw)
    _feed(env, link, times, bits)
    env.run(until=float(times[-1]) + 1e-9)
    s = link.summary(env.now)
    s["lambda"] = n / env.now
    s["mean_service_s"] = float(bits.mean()) / bw
    s["mean_service_sq_s2"] = float(((bits / bw) ** 2).mean())
    return s


def test_mm1_mean_waiting_time() -> None:
    # M/M/1 (Kleinrock 1975, §3.2): W_q = ρ / (μ - λ); with λ = 1: W_q = ρ² / (1 - ρ)
    rho = 0.7
    s = _poisson_run("exp", rho, 200_000, seed=1)
    expected = rho**2 / (1 - rho)
    assert s["mean_queueing_s"] == pytest.approx(expected, rel=0.05)
    assert s["mean_sojourn_s"] == pytest.approx(rho / (1 - rho), rel=0.05)
    assert s["utilization"] == pytest.approx(rho, rel=0.02)


def test_md1_mean_waiting_time_pollaczek_khinchine() -> None:
    # M/D/1 by Pollaczek–Khinchine (Kleinrock 1975, eq. 5.73): W_q = λ E[S²] / (2 (1 - ρ))
    rho = 0.8
    s = _poisson_run("det", rho, 200_000, seed=2)
    expected = s["lambda"] * s["mean_service_sq_s2"] / (2 * (1 - rho))
    assert s["mean_queueing_s"] == pytest.approx(expected, rel=0.05)
    assert expected == pytest.approx(rho**2 / (2 * (1 - rho)), rel=0.02)


def test_littles_law_on_the_transmitter() -> None:
    # L = λ W (Little 1961): the time-average occupancy against arrivals × mean sojourn
    s = _poisson_run("exp", 0.6, 50_000, seed=3)
    assert s["mean_in_link"] == pytest.approx(s["lambda"] * s["mean_sojourn_s"], rel=0.02)


def test_in_order_delivery_under_jitter() -> None:
    env = simpy.Environment()
    jitter = {"kind": "exponential", "scale_s": 0.02}
    ordered = _link(env, seed=5, latency_s=0.01, bandwidth_bps=1e7, jitter=jitter)
    free = WiredLink(
        env,
        "free",
        LinkConfig(latency_s=0.01, bandwidth_bps=1e7, jitter=jitter, in_order=False),
        RandomStreams(5).get("link.wan"),
    )
    a = [Message(1_000, "a", "b", 0.0) for _ in range(200)]
    b = [Message(1_000, "a", "b", 0.0) for _ in range(200)]
    for ma, mb in zip(a, b, strict=True):
        ordered.send(ma)
        free.send(mb)
    env.run()
    ta = np.array([m.t_delivered_s for m in a])
    tb = np.array([m.t_delivered_s for m in b])
    assert (np.diff(ta) >= 0).all()
    assert (np.diff(tb) < 0).any()  # without ordering, jitter overtakes
    assert (ta >= tb - 1e-15).all()  # waiting for the one ahead never delivers earlier


def test_drop_tail_conserves_messages() -> None:
    # 100 messages of 1,000 bytes at once into a 10,000-byte buffer: 10 fit, 90 are lost;
    # every message is delivered or counted lost, and every delivery event fires
    env = simpy.Environment()
    link = _link(env, bandwidth_bps=1e6, buffer_bytes=10_000)
    msgs = [Message(8_000, "a", "b", 0.0) for _ in range(100)]
    events = [link.send(m) for m in msgs]
    env.run()
    assert all(e.processed for e in events)
    s = link.summary(env.now)
    assert (s["sent"], s["lost"], s["delivered"], s["in_flight"]) == (100, 90, 10, 0)
    assert sum(1 for m in msgs if m.lost == "buffer overflow") == 90
    assert all(math.isnan(m.t_delivered_s) for m in msgs if m.lost)


def test_same_seed_same_jitter_and_other_seed_differs() -> None:
    def delays(seed: int) -> list[float]:
        env = simpy.Environment()
        link = _link(env, seed, jitter={"kind": "uniform", "scale_s": 0.01})
        msgs = [Message(100, "a", "b", 0.0) for _ in range(50)]
        for m in msgs:
            link.send(m)
        env.run()
        return [m.t_delivered_s for m in msgs]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


def test_table_has_one_row_per_accepted_message() -> None:
    env = simpy.Environment()
    link = _link(env, latency_s=0.001, bandwidth_bps=1e6)
    for bits in (100, 200, 300):
        link.send(Message(bits, "a", "b", 0.0))
    env.run()
    df = link.table()
    assert df["size_bits"].tolist() == [100, 200, 300]
    delay = (df["t_delivered_s"] - df["t_enqueued_s"]).to_numpy()
    np.testing.assert_allclose(delay, [0.0011, 0.0013, 0.0016])


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        ({"latency_s": -1}, "latency_s"),
        ({"bandwidth_bps": 0}, "bandwidth_bps"),
        ({"bandwidth_bps": True}, "bandwidth_bps"),
        ({"buffer_bytes": 0}, "buffer_bytes"),
        ({"jitter": {"kind": "pareto"}}, "kind"),
        ({"jitter": {"kind": "uniform", "scale_s": -0.1}}, "scale_s"),
        ({"latency": 0.1}, "latency"),
    ],
)
def test_bad_link_configs_are_refused(cfg: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        LinkConfig(**cfg)


@pytest.mark.parametrize("bits", [0, -5, 1.5, True])
def test_bad_message_sizes_are_refused(bits: object) -> None:
    with pytest.raises(ValueError, match="size_bits"):
        Message(bits, "a", "b", 0.0)  # type: ignore[arg-type]


def test_jitter_draws_are_non_negative_with_the_stated_mean() -> None:
    rng = np.random.default_rng(0)
    for kind, mean in (("uniform", 0.005), ("exponential", 0.01), ("halfnormal", 0.01 * 0.7979)):
        j = JitterConfig(kind=kind, scale_s=0.01)
        x = np.array([j.draw(rng) for _ in range(20_000)])
        assert (x >= 0).all()
        # half-normal mean σ·sqrt(2/π) = 0.7979 σ (Leone et al. 1961)
        assert x.mean() == pytest.approx(mean, rel=0.03)
