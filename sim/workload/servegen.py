"""ServeGen client arrival traces: per-client, per-600 s-window renewal processes.

ServeGen (Xiang et al., "ServeGen: Workload Characterization and Generation of Large Language
Model Serving in Production", NSDI 2026; ``alibaba/ServeGen``, Apache-2.0) describes each client
of a model by 600 s windows: request rate, inter-arrival coefficient of variation (CV) and a
fitted inter-arrival distribution (Gamma or Weibull). The workspace copy (MANIFEST A3) merges
the clients of one category into ``<cat>_<model>_client_windows.csv`` with header
``client_id,window_start_s,rate_rps,iat_cv,iat_dist,dist_param1,dist_param2`` and drops
zero-rate windows (no arrivals are generated there).

Parameters. The ServeGen README does not state what the two fitted parameters mean and the
generator source was not available to check. In the data, Gamma rows have
``dist_param1 = 1/iat_cv²`` (correlation 1 − 1e-11) and ``dist_param1·dist_param2·rate_rps``
has median 0.993, i.e. (shape, scale) matched to the moments of the observed gaps; Weibull
rows are not moment-matched (e.g. shape 0.375, scale 0.397 give a mean gap 2× 1/rate). So the
gap distribution of each window is **derived from** ``rate_rps`` **and** ``iat_cv`` only,
keeping the fitted family:

* Gamma: shape k = 1/cv², scale θ = cv²/rate (mean 1/rate, CV cv);
* Weibull: shape k solves cv² + 1 = Γ(1 + 2/k)/Γ(1 + 1/k)², scale λ = 1/(rate·Γ(1 + 1/k)).

Each window is an *equilibrium* (stationary) renewal process (Cox, "Renewal Theory", 1962,
§5.2): the first arrival after the window start is the forward recurrence time
U·L, with U ~ Uniform(0, 1) and L the length-biased gap (density x·f(x)/E[X]), so the expected
count in the window is exactly rate·600 s. (An ordinary renewal process started at the window
start would add ≈ (cv² − 1)/2 arrivals per window: +36 at cv = 8.6.) For Gamma(k, θ) the
length-biased gap is Gamma(k + 1, θ); for Weibull(k, λ) it is λ·G^(1/k), G ~ Gamma(1 + 1/k).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from scipy.special import gammaln

from edgetwin.sim.types import FloatArray, IntArray
from edgetwin.sim.workload.traces import (
    _check_header,
    _choice_column,
    _numeric_column,
    _read_text_csv,
)

#: Length of one ServeGen window (s).
SERVEGEN_WINDOW_S: Final[float] = 600.0

#: Inter-arrival families a window may name (``iat_dist``), as :func:`window_arrivals` draws.
SERVEGEN_DISTS: Final[tuple[str, str]] = ("Gamma", "Weibull")

#: Columns of a ``*_client_windows.csv`` file (MANIFEST A3).
SERVEGEN_COLUMNS: Final[tuple[str, ...]] = (
    "client_id",
    "window_start_s",
    "rate_rps",
    "iat_cv",
    "iat_dist",
    "dist_param1",
    "dist_param2",
)


def weibull_shape_for_cv(cv: float) -> float:
    """Weibull shape k whose coefficient of variation is ``cv``.

    Solves ``log(cv² + 1) = lnΓ(1 + 2/k) − 2·lnΓ(1 + 1/k)`` (decreasing in k) by bisection on
    log k in [1e-3, 1e3] (cv from ≈ 1e-3 to ≈ 1e300); k = 1 at cv = 1 (exponential).

    Args:
        cv: Coefficient of variation, > 0.

    Returns:
        The shape k.
    """
    if not cv > 0:
        raise ValueError(f"cv must be > 0, got {cv}")
    target = float(np.log1p(cv * cv))
    lo, hi = np.log(1e-3), np.log(1e3)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        k = float(np.exp(mid))
        f = float(gammaln(1.0 + 2.0 / k) - 2.0 * gammaln(1.0 + 1.0 / k))
        if f > target:
            lo = mid  # k too small: too variable
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def _gap_params(dist: str, rate: float, cv: float) -> tuple[str, float, float]:
    """(family, shape, scale) of the gaps with mean ``1/rate`` and CV ``cv`` (module docstring)."""
    if not rate > 0 or not cv > 0:
        raise ValueError(f"rate_rps and iat_cv must be > 0, got {rate}, {cv}")
    if dist == "Gamma":
        k = 1.0 / (cv * cv)
        return "Gamma", k, 1.0 / (rate * k)
    if dist == "Weibull":
        k = weibull_shape_for_cv(cv)
        return "Weibull", k, float(1.0 / (rate * np.exp(gammaln(1.0 + 1.0 / k))))
    raise ValueError(f"unknown iat_dist {dist!r}; allowed: {', '.join(SERVEGEN_DISTS)}")


def _draw(rng: np.random.Generator, family: str, k: float, scale: float, n: int) -> FloatArray:
    if family == "Gamma":
        return rng.gamma(k, scale, n)
    return scale * rng.weibull(k, n)


def _first_gap(rng: np.random.Generator, family: str, k: float, scale: float) -> float:
    """Forward recurrence time of the stationary renewal process: U × length-biased gap."""
    if family == "Gamma":
        biased = float(rng.gamma(k + 1.0, scale))
    else:
        biased = scale * float(rng.gamma(1.0 + 1.0 / k)) ** (1.0 / k)
    return float(rng.uniform()) * biased


def window_arrivals(
    rng: np.random.Generator, dist: str, rate_rps: float, iat_cv: float, length_s: float
) -> FloatArray:
    """Arrival times in ``[0, length_s)`` of one stationary renewal window (module docstring).

    Args:
        rng: Random generator.
        dist: ``"Gamma"`` or ``"Weibull"``.
        rate_rps: Mean rate (req/s), > 0.
        iat_cv: Inter-arrival coefficient of variation, > 0.
        length_s: Window length (s).

    Returns:
        Sorted arrival times relative to the window start.
    """
    family, k, scale = _gap_params(dist, rate_rps, iat_cv)
    t0 = _first_gap(rng, family, k, scale)
    if t0 >= length_s:
        return np.empty(0)
    mean_n = rate_rps * length_s
    chunk = int(mean_n + 4.0 * np.sqrt(mean_n) * max(1.0, iat_cv) + 16)
    parts = [np.array([t0])]
    t_end = t0
    while t_end < length_s:
        t = t_end + np.cumsum(_draw(rng, family, k, scale, chunk))
        parts.append(t)
        t_end = float(t[-1])
    out = np.concatenate(parts)
    return out[out < length_s]


def _check_windows(client: IntArray, start_s: IntArray, lines: pd.Index, p: Path) -> None:
    """One row per (client, window): two windows of a client may not overlap (600 s each).

    The message names the later of the two lines in the file and points at the other one.
    """
    order = np.lexsort((start_s, client))
    c, w = client[order], start_s[order]
    clash = (c[1:] == c[:-1]) & (w[1:] - w[:-1] < SERVEGEN_WINDOW_S)
    if not clash.any():
        return
    i = int(np.argmax(clash))
    (line, start), (other_line, other_start) = sorted(
        [(int(lines[order[j]]), int(w[j])) for j in (i, i + 1)], reverse=True
    )
    what = "duplicates" if start == other_start else "overlaps"
    raise ValueError(
        f"trace {str(p)!r}, line {line}: the window of client_id {c[i]} at {start} s {what} "
        f"its window at {other_start} s on line {other_line}; allowed: one row per client_id "
        f"and window, window starts of a client >= {SERVEGEN_WINDOW_S:g} s apart"
    )


def load_servegen_windows(path: str | Path) -> pd.DataFrame:
    """Read and check a ServeGen ``*_client_windows.csv`` (MANIFEST A3).

    Checked as :func:`~edgetwin.sim.workload.traces.load_request_csv`, with the same helpers:
    ``client_id`` and ``window_start_s`` whole numbers >= 0, ``rate_rps`` a finite number >= 0
    (0: a window without arrivals), ``iat_cv``, ``dist_param1`` and ``dist_param2`` finite
    numbers > 0, ``iat_dist`` one of :data:`SERVEGEN_DISTS`, and no two windows of one client
    overlapping (a duplicate row included). Other columns are ignored.

    Returns:
        One row per window, in file order, with the columns :data:`SERVEGEN_COLUMNS`.

    Raises:
        FileNotFoundError: Naming the missing path.
        ValueError: Naming the file, the column, the line, the value and what is allowed.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ServeGen file not found: {str(p)!r}")
    raw = _read_text_csv(p, SERVEGEN_COLUMNS)
    _check_header(raw, p, SERVEGEN_COLUMNS, "windows")
    client = _numeric_column(raw, "client_id", p, integer=True, minimum=0).astype(np.int64)
    start_s = _numeric_column(raw, "window_start_s", p, integer=True, minimum=0).astype(np.int64)
    df = pd.DataFrame(
        {
            "client_id": client,
            "window_start_s": start_s,
            "rate_rps": _numeric_column(raw, "rate_rps", p, integer=False, minimum=0),
            "iat_cv": _numeric_column(raw, "iat_cv", p, integer=False, minimum=0, above=True),
            "iat_dist": _choice_column(raw, "iat_dist", p, SERVEGEN_DISTS),
            "dist_param1": _numeric_column(
                raw, "dist_param1", p, integer=False, minimum=0, above=True
            ),
            "dist_param2": _numeric_column(
                raw, "dist_param2", p, integer=False, minimum=0, above=True
            ),
        }
    )
    _check_windows(client, start_s, raw.index, p)
    return df


def servegen_arrivals(
    path: str | Path,
    rng: np.random.Generator,
    *,
    clients: Iterable[int] | None = None,
    start_s: float = 0.0,
    duration_s: float,
    time_scale: float = 1.0,
) -> FloatArray:
    """Arrival times of the chosen ServeGen clients over a span of the trace, merged and sorted.

    Every window of every chosen client that overlaps ``[start_s, start_s + duration_s)``
    (trace time) is generated as a stationary renewal process (module docstring), clipped to
    the span. Windows are visited in (window_start_s, client_id) order, so the output is a
    pure function of the file, the arguments and the rng state.

    Args:
        path: A ``<cat>_<model>_client_windows.csv`` file.
        rng: Random generator (e.g. ``sim.streams.get("arrivals")``).
        clients: Client ids to include; all when None.
        start_s: Trace time (s since the trace start) of the span's start.
        duration_s: Length of the span in trace seconds, > 0.
        time_scale: Speed-up: output times are ``(t_trace − start_s) / time_scale`` (2.0 plays
            the span twice as fast, doubling every rate), > 0.

    Returns:
        Arrival times in seconds from the span start, sorted, in ``[0, duration_s/time_scale)``.

    Raises:
        FileNotFoundError: Naming the missing path.
        ValueError: A bad argument, or a bad file (:func:`load_servegen_windows`).
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if not time_scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale}")
    df = load_servegen_windows(path)
    end_s = start_s + duration_s
    ws = df["window_start_s"].to_numpy(dtype=np.float64)
    keep = (ws < end_s) & (ws + SERVEGEN_WINDOW_S > start_s) & (df["rate_rps"].to_numpy() > 0)
    if clients is not None:
        keep &= df["client_id"].isin(list(clients)).to_numpy()
    sel = df.loc[keep].sort_values(["window_start_s", "client_id"], kind="stable")
    parts: list[FloatArray] = []
    for w0, dist, rate, cv in zip(
        sel["window_start_s"].to_numpy(dtype=np.float64),
        sel["iat_dist"].to_numpy(),
        sel["rate_rps"].to_numpy(dtype=np.float64),
        sel["iat_cv"].to_numpy(dtype=np.float64),
        strict=True,
    ):
        t = w0 + window_arrivals(rng, str(dist), float(rate), float(cv), SERVEGEN_WINDOW_S)
        parts.append(t[(t >= start_s) & (t < end_s)])
    if not parts:
        return np.empty(0)
    out = np.sort(np.concatenate(parts), kind="stable")
    return (out - start_s) / time_scale
