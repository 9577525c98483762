"""Reward functions of the PRB/power envs, registered by name.

Every reward is a pure function of the smoothed per-UE throughput ``T̄`` after the slot the action
was applied in (``avg_rate_bps`` [n_ue], bit/s, only real UEs) and a throughput normalizer
``t_ref_bps`` (default: the cell's peak rate, every PRB at the MCS table's highest spectral
efficiency), so that the throughput term lies in [0, 1].
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from edgetwin.sim.types import FloatArray

from .reduce import row_sum

#: ``reward(avg_rate_bps [..., n_ue] bit/s, t_ref_bps, **kwargs) -> float | [...]``: a float
#: for one cell's [n_ue] rates, an array over the leading axes of a batch's (the vector env).
RewardFn = Callable[..., Any]


def _scalar(x: np.ndarray) -> Any:
    """A 0-d result as a Python float (one cell), an array as is (a batch)."""
    return float(x) if np.ndim(x) == 0 else x


def jain_rows(rates: FloatArray) -> FloatArray:
    """Jain's index (Σx)² / (n·Σx²) over the last axis; 1 where all are 0 (Jain et al. 1984).

    Written over rows rather than with :func:`jain_index` so that a batch of cells and one
    cell get the same arithmetic (the vector env's members equal the single env bit for bit).
    """
    total = row_sum(rates)
    sq = row_sum(rates * rates)
    n = rates.shape[-1]
    if np.ndim(sq) == 0:  # one cell: plain floats, the same operations as a batch row's
        t, q = float(total), float(sq)
        return np.asarray(t * t / (n * q) if q > 0.0 else 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(sq > 0.0, total * total / (n * sq), 1.0)
    return out


def throughput_fairness(avg_rate_bps: FloatArray, t_ref_bps: float, lam: float = 0.5) -> Any:
    """``(1 − λ)·Σ_u T̄_u / T_ref + λ·J(T̄)``: smoothed throughput and Jain's index (2605.02149)."""
    return _scalar((1.0 - lam) * row_sum(avg_rate_bps) / t_ref_bps + lam * jain_rows(avg_rate_bps))


def throughput(avg_rate_bps: FloatArray, t_ref_bps: float) -> Any:
    """``Σ_u T̄_u / T_ref``: cell throughput only (max-rate objective)."""
    return _scalar(row_sum(avg_rate_bps) / t_ref_bps)


def sum_log_rate(avg_rate_bps: FloatArray, t_ref_bps: float, floor: float = 1e-4) -> Any:
    """Mean of ``log(T̄_u / T_ref + floor)``: the proportional-fair utility (Kelly 1997)."""
    return _scalar(row_sum(np.log(avg_rate_bps / t_ref_bps + floor)) / avg_rate_bps.shape[-1])


REWARDS: dict[str, RewardFn] = {
    "throughput_fairness": throughput_fairness,
    "throughput": throughput,
    "sum_log_rate": sum_log_rate,
}


#: Allowed range of each reward parameter: ``(low, high, text)``, closed at both ends.
#: ``floor`` must be > 0 so that ``log(T̄_u / T_ref + floor)`` is finite for a starved UE.
_PARAM_RANGES: dict[str, tuple[float, float, str]] = {
    "lam": (0.0, 1.0, "a number in [0, 1]"),
    "floor": (np.finfo(float).tiny, np.finfo(float).max, "a finite number > 0"),
}


def _check_param(key: str, value: Any) -> None:
    """Refuse a reward parameter outside :data:`_PARAM_RANGES` (one line naming its range)."""
    low, high, text = _PARAM_RANGES[key]
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    if not number or not low <= value <= high:  # NaN fails the comparison
        raise ValueError(f"reward {key} must be {text}, got {value!r:.80}")


def make_reward(name: str, **kwargs: Any) -> Callable[[FloatArray, float], Any]:
    """The reward registered as ``name`` with ``kwargs`` bound.

    Raises:
        ValueError: For an unknown name (listing the registered ones), an unknown keyword
            argument (listing the reward's), or a value outside its range (``lam`` in [0, 1],
            ``floor`` finite > 0).
    """
    if not isinstance(name, str) or name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; allowed: {', '.join(sorted(REWARDS))}")
    fn = REWARDS[name]
    params = list(inspect.signature(fn).parameters)[2:]
    try:
        inspect.signature(fn).bind(None, None, **kwargs)
    except TypeError as exc:
        raise ValueError(
            f"bad arguments for reward {name!r}: {exc}; allowed: {', '.join(params) or 'none'}"
        ) from None
    for key, value in kwargs.items():
        _check_param(key, value)

    # a partial of a module-level function (not a closure), so that an env pickles
    return functools.partial(fn, **kwargs)
