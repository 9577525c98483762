"""Prompt / output token lengths: fixed, given, resampled from a trace, or geometric."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgetwin.sim.types import IntArray


def fixed_lengths(n: int, tokens: int) -> IntArray:
    """``n`` copies of ``tokens`` (>= 1), shape [n], int64."""
    if tokens < 1 or n < 0:
        raise ValueError(f"need tokens >= 1 and n >= 0, got tokens={tokens}, n={n}")
    return np.full(n, tokens, dtype=np.int64)


def lengths_from_array(values: npt.ArrayLike) -> IntArray:
    """Validate given lengths (integers >= 1), shape [n], int64."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"lengths must be 1-D, got shape {a.shape}")
    out = a.astype(np.int64)
    if not np.array_equal(out, a) or (out.size and out.min() < 1):
        raise ValueError("lengths must be integers >= 1")
    return out


def empirical_lengths(rng: np.random.Generator, values: npt.ArrayLike, n: int) -> IntArray:
    """Resample ``n`` lengths with replacement from a trace's lengths (its empirical law).

    Args:
        rng: Random generator.
        values: Observed lengths (e.g. a trace's ``output_tokens``), shape [n_obs].
        n: Number of draws.

    Returns:
        Lengths, shape [n], int64.
    """
    pool = lengths_from_array(values)
    if pool.size == 0:
        raise ValueError("cannot resample from an empty set of lengths")
    return rng.choice(pool, size=n, replace=True)


def geometric_lengths(rng: np.random.Generator, mean_tokens: float, n: int) -> IntArray:
    """Geometric lengths on {1, 2, ...} with the given mean (p = 1/mean), shape [n], int64."""
    if not mean_tokens >= 1:
        raise ValueError(f"mean_tokens must be >= 1, got {mean_tokens}")
    return rng.geometric(1.0 / mean_tokens, size=n).astype(np.int64)
