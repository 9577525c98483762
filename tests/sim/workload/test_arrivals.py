from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.workload.arrivals import gamma_arrivals, poisson_arrivals, trace_arrivals
from edgetwin.sim.workload.lengths import (
    empirical_lengths,
    fixed_lengths,
    geometric_lengths,
    lengths_from_array,
)
from edgetwin.sim.workload.request import Request, make_requests


def _cv(x: np.ndarray) -> float:
    return float(x.std() / x.mean())


def test_poisson_rate_and_cv() -> None:
    n, rate = 200_000, 5.0
    t = poisson_arrivals(np.random.default_rng(0), rate, n=n)
    assert t.shape == (n,)
    assert np.all(np.diff(t) >= 0)
    assert t[0] > 0
    gaps = np.diff(np.concatenate([[0.0], t]))
    # mean gap 1/λ within 4 standard errors (SE = (1/λ)/sqrt(n) for exponential gaps)
    assert abs(gaps.mean() - 1 / rate) < 4 * (1 / rate) / np.sqrt(n)
    assert _cv(gaps) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_rate_and_cv(cv: float) -> None:
    n, rate = 200_000, 2.0
    t = gamma_arrivals(np.random.default_rng(1), rate, cv, n=n)
    gaps = np.diff(np.concatenate([[0.0], t]))
    assert gaps.mean() == pytest.approx(1 / rate, rel=4 * cv / np.sqrt(n) + 1e-3)
    assert _cv(gaps) == pytest.approx(cv, rel=0.05)


def test_horizon_mode() -> None:
    rate, horizon = 100.0, 50.0
    t = poisson_arrivals(np.random.default_rng(2), rate, horizon_s=horizon)
    assert t.max() < horizon
    # count ~ Poisson(λT): within 4 sd
    assert abs(t.size - rate * horizon) < 4 * np.sqrt(rate * horizon)
    t2 = gamma_arrivals(np.random.default_rng(2), 1.0, 5.0, horizon_s=1000.0)  # bursty
    assert t2.max() < 1000.0
    assert np.all(np.diff(t2) >= 0)


def test_same_rng_seed_same_arrivals_and_argument_checks() -> None:
    a = poisson_arrivals(np.random.default_rng(3), 1.0, n=10)
    b = poisson_arrivals(np.random.default_rng(3), 1.0, n=10)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="exactly one"):
        poisson_arrivals(np.random.default_rng(0), 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        poisson_arrivals(np.random.default_rng(0), 1.0, n=3, horizon_s=3.0)
    with pytest.raises(ValueError, match="rate_rps"):
        gamma_arrivals(np.random.default_rng(0), 0.0, 1.0, n=3)


def test_trace_arrivals() -> None:
    t = trace_arrivals([105.0, 100.0, 101.0], time_scale=0.5, start_s=2.0)
    np.testing.assert_allclose(t, [2.0, 2.5, 4.5])
    assert trace_arrivals([]).size == 0


def test_lengths() -> None:
    np.testing.assert_array_equal(fixed_lengths(3, 7), [7, 7, 7])
    with pytest.raises(ValueError, match="tokens >= 1"):
        fixed_lengths(3, 0)
    assert lengths_from_array([1.0, 2.0]).dtype == np.int64
    with pytest.raises(ValueError, match="integers >= 1"):
        lengths_from_array([1.5])
    pool = np.array([3, 10, 200])
    x = empirical_lengths(np.random.default_rng(0), pool, 1000)
    assert set(np.unique(x)) <= set(pool)
    g = geometric_lengths(np.random.default_rng(0), 4.0, 100_000)
    assert g.min() >= 1
    assert g.mean() == pytest.approx(4.0, rel=0.02)


def test_make_requests_and_request_metrics() -> None:
    reqs = make_requests([2.0, 1.0], [5, 6], [3, 4], first_id=10)
    assert [r.id for r in reqs] == [10, 11]
    assert [r.prompt_tokens for r in reqs] == [6, 5]
    r = Request(0, 1.0, 10, 3)
    assert np.isnan(r.ttft_s)
    assert np.isnan(r.tpot_s)
    r.first_scheduled_s, r.first_token_s, r.last_token_s, r.completion_s = 1.5, 2.0, 3.0, 3.0
    r.n_generated = 3
    assert r.queueing_s == 0.5
    assert r.ttft_s == 1.0
    assert r.tpot_s == 0.5
    assert r.e2e_s == 2.0
    assert r.finished
    with pytest.raises(ValueError, match=">= 1"):
        Request(0, 0.0, 0, 1)
