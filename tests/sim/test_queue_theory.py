"""The server model against queueing theory (Pollaczek–Khinchine; Kleinrock, Queueing Systems
Vol. 1, 1975, §5.6).

With ``max_num_seqs = 1`` the replica is a single FCFS server. A request of 1 prompt token
and k output tokens takes k iterations (one prefill that emits the first token, then k−1
decodes); with ``LinearCostModel(a_s=tau)`` each iteration lasts tau, so the service time is
S = k·tau and the wait before the first iteration (``queueing_s``) is the M/G/1 wait
W = λ·E[S²] / (2(1 − ρ)), ρ = λ·E[S]. Deterministic S = tau gives M/D/1: W = ρ·tau / (2(1 − ρ)).

Waits are autocorrelated, so the fast tests use a batch-means standard error (20 batches,
after a warm-up) and accept |mean − W| < 4 SE (a ≈ 1e-4 false-alarm rate for a normal batch
mean); the slow test runs long enough for a fixed 3 % tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.compute.cost_model import (
    CostModel,
    ExponentialServiceCostModel,
    LinearCostModel,
)
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.engine import Simulation
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.arrivals import poisson_arrivals
from edgetwin.sim.workload.lengths import fixed_lengths, geometric_lengths
from edgetwin.sim.workload.request import make_requests
from edgetwin.sim.workload.source import WorkloadSource


def _waits(
    seed: int, rate: float, tau: float, outputs: np.ndarray, cost: CostModel | None = None
) -> np.ndarray:
    n = outputs.size
    arr = poisson_arrivals(RandomStreams(seed).get("arrivals"), rate, n=n)
    # long enough for the last request to finish (the test checks that all did)
    sim = Simulation(seed=seed, horizon_s=float(arr[-1] + 1000 * tau * outputs.max()))
    cfg = ServerConfig(max_num_seqs=1, max_num_batched_tokens=64, block_size=16, n_blocks=4096)
    server = LLMServer(sim.env, cfg, cost if cost is not None else LinearCostModel(a_s=tau))
    sim.add(server)
    sim.add(
        WorkloadSource(sim.env, make_requests(arr, fixed_lengths(n, 1), outputs), server.submit)
    )
    sim.run()
    req = sim.results().tables["requests"]
    assert req["completion_s"].notna().all()
    assert (req["generated_tokens"] == req["output_tokens"]).all()
    return req.sort_values("arrival_s")["queueing_s"].to_numpy()


def _batch_mean(w: np.ndarray, warmup: int, n_batches: int = 20) -> tuple[float, float]:
    b = w[warmup:]
    b = b[: b.size - b.size % n_batches].reshape(n_batches, -1).mean(axis=1)
    return float(b.mean()), float(b.std(ddof=1) / np.sqrt(n_batches))


def test_md1_wait_fast() -> None:
    tau, rho = 0.01, 0.5
    w = _waits(1, rho / tau, tau, fixed_lengths(100_000, 1))
    expected = rho * tau / (2 * (1 - rho))
    mean, se = _batch_mean(w, warmup=2_000)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    assert abs(mean - expected) / expected < 0.08


def test_mg1_wait_geometric_service_fast() -> None:
    tau, m = 0.01, 4.0
    rho = 0.6
    rate = rho / (m * tau)
    rng = np.random.default_rng(7)
    k = geometric_lengths(rng, m, 30_000)
    p = 1.0 / m
    es2 = tau**2 * (2 - p) / p**2  # E[k²] = (2 − p)/p² for k ~ Geometric(p) on {1, 2, ...}
    expected = rate * es2 / (2 * (1 - rho))
    w = _waits(2, rate, tau, k)
    mean, se = _batch_mean(w, warmup=2_000)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


@pytest.mark.slow
def test_md1_wait_within_3_percent() -> None:
    tau, rho = 0.01, 0.7
    w = _waits(3, rho / tau, tau, fixed_lengths(400_000, 1))
    expected = rho * tau / (2 * (1 - rho))
    mean = float(w[10_000:].mean())
    assert abs(mean - expected) / expected < 0.03, (mean, expected)


def _mm1(seed: int, rho: float, n: int) -> tuple[np.ndarray, float]:
    """Waits of an M/M/1 queue (1/μ = 10 ms) and Kleinrock's W_q = ρ/(μ − λ)."""
    tau = 0.01
    mu, lam = 1.0 / tau, rho / tau
    cost = ExponentialServiceCostModel(tau, RandomStreams(seed).get("service"))
    w = _waits(seed, lam, tau, fixed_lengths(n, 1), cost)
    # exactly one draw per iteration = per request: the stream advanced by n variates
    ref = RandomStreams(seed).get("service")
    ref.exponential(tau, n)
    assert cost.rng.bit_generator.state == ref.bit_generator.state
    return w, rho / (mu - lam)


def test_mm1_wait_fast() -> None:
    # M/M/1 (Kleinrock 1975, §3.2): each request is one Exp(10 ms) iteration.
    w, expected = _mm1(4, 0.5, 100_000)
    mean, se = _batch_mean(w, warmup=2_000)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    assert abs(mean - expected) / expected < 0.1


@pytest.mark.slow
def test_mm1_wait_within_3_percent() -> None:
    w, expected = _mm1(5, 0.7, 1_000_000)
    mean = float(w[10_000:].mean())
    assert abs(mean - expected) / expected < 0.03, (mean, expected)
