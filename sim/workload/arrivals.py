"""Arrival processes as pre-generated, sorted arrival-time arrays (pure functions of an rng).

Renewal processes: gaps are i.i.d.; exactly one of ``n`` (number of arrivals) or ``horizon_s``
(all arrivals in ``[0, horizon_s)``) must be given. The first arrival is one gap after 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edgetwin.sim.types import FloatArray


def _renewal(
    draw: Callable[[int], FloatArray], rate_rps: float, n: int | None, horizon_s: float | None
) -> FloatArray:
    if (n is None) == (horizon_s is None):
        raise ValueError("give exactly one of n and horizon_s")
    if n is not None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return np.cumsum(draw(n))
    assert horizon_s is not None
    if not horizon_s > 0:
        raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
    mean_n = rate_rps * horizon_s
    chunk = int(mean_n + 6.0 * np.sqrt(mean_n) + 16)
    parts: list[FloatArray] = []
    t_end = 0.0
    while t_end < horizon_s:
        t = t_end + np.cumsum(draw(chunk))
        parts.append(t)
        t_end = float(t[-1])
    out = np.concatenate(parts)
    return out[out < horizon_s]


def poisson_arrivals(
    rng: np.random.Generator,
    rate_rps: float,
    *,
    n: int | None = None,
    horizon_s: float | None = None,
) -> FloatArray:
    """Poisson process: exponential gaps of mean ``1/rate_rps``.

    Args:
        rng: Random generator (e.g. ``sim.streams.get("arrivals")``).
        rate_rps: Arrival rate λ in requests per second, > 0.
        n: Number of arrivals.
        horizon_s: Or: every arrival before this time.

    Returns:
        Arrival times in seconds, non-decreasing, shape [n_req].
    """
    if not rate_rps > 0:
        raise ValueError(f"rate_rps must be > 0, got {rate_rps}")
    return _renewal(lambda k: rng.exponential(1.0 / rate_rps, k), rate_rps, n, horizon_s)


def gamma_arrivals(
    rng: np.random.Generator,
    rate_rps: float,
    cv: float,
    *,
    n: int | None = None,
    horizon_s: float | None = None,
) -> FloatArray:
    """Gamma renewal process: bursty (cv > 1) or regular (cv < 1) arrivals at mean rate λ.

    Gaps ~ Gamma(shape k = 1/cv², scale = 1/(λk)): mean 1/λ, coefficient of variation cv
    (cv = 1 is Poisson). BurstGPT (Wang et al., KDD'25) and ServeGen fit Gamma gaps.

    Args:
        rng: Random generator.
        rate_rps: Mean arrival rate λ in requests per second, > 0.
        cv: Coefficient of variation of the gaps, > 0.
        n: Number of arrivals.
        horizon_s: Or: every arrival before this time.

    Returns:
        Arrival times in seconds, non-decreasing, shape [n_req].
    """
    if not rate_rps > 0 or not cv > 0:
        raise ValueError(f"rate_rps and cv must be > 0, got {rate_rps} and {cv}")
    shape = 1.0 / cv**2
    scale = 1.0 / (rate_rps * shape)
    return _renewal(lambda k: rng.gamma(shape, scale, k), rate_rps, n, horizon_s)


def trace_arrivals(
    timestamps_s: npt.ArrayLike, *, time_scale: float = 1.0, start_s: float = 0.0
) -> FloatArray:
    """Arrival times replayed from a trace, relative to its first timestamp.

    Args:
        timestamps_s: Trace timestamps in seconds (any origin), shape [n_req].
        time_scale: Multiplies the gaps (0.5 replays the trace at twice its rate).
        start_s: Time of the first arrival.

    Returns:
        ``start_s + time_scale * (t - t[0])`` after a stable sort, shape [n_req].
    """
    if not time_scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale}")
    t = np.sort(np.asarray(timestamps_s, dtype=np.float64), kind="stable")
    if t.size == 0:
        return t
    return start_s + time_scale * (t - t[0])
