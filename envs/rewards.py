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

from edgetwin.sim.metrics.summary import jain_index
from edgetwin.sim.types import FloatArray

#: ``reward(avg_rate_bps [n_ue] bit/s, t_ref_bps, **kwargs) -> float``.
RewardFn = Callable[..., float]


def throughput_fairness(avg_rate_bps: FloatArray, t_ref_bps: float, lam: float = 0.5) -> float:
    """``(1 − λ)·Σ_u T̄_u / T_ref + λ·J(T̄)``: smoothed throughput and Jain's index (2605.02149)."""
    return (1.0 - lam) * float(avg_rate_bps.sum()) / t_ref_bps + lam * jain_index(avg_rate_bps)


def throughput(avg_rate_bps: FloatArray, t_ref_bps: float) -> float:
    """``Σ_u T̄_u / T_ref``: cell throughput only (max-rate objective)."""
    return float(avg_rate_bps.sum()) / t_ref_bps


def sum_log_rate(avg_rate_bps: FloatArray, t_ref_bps: float, floor: float = 1e-4) -> float:
    """Mean of ``log(T̄_u / T_ref + floor)``: the proportional-fair utility (Kelly 1997)."""
    return float(np.mean(np.log(avg_rate_bps / t_ref_bps + floor)))


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


def make_reward(name: str, **kwargs: Any) -> Callable[[FloatArray, float], float]:
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
