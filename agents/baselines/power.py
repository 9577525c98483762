"""Downlink power allocation over the PRBs of a slot: equal, water-filling, α-fair.

Kernels work on arrays with any leading batch dimensions. Policies read the power-family
observation (dict built by the cell after the PRB decision): ``alloc`` int64 [n_cell, n_prb]
(UE per PRB, −1 = unused), ``gain_over_noise_per_w`` [n_cell, n_ue, n_prb] (estimated SINR per
watt, 1/W), ``max_power_w`` [n_cell]. They return watts per PRB, float64 [n_cell, n_prb]:
≥ 0, 0 on unused PRBs, summing to at most ``max_power_w`` per cell (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# ================================================================================================
# Kernels
# ================================================================================================
def water_filling(
    noise_over_gain: ArrayLike, total_power: ArrayLike, weight: ArrayLike | None = None
) -> FloatArray:
    """Classic water-filling over the last axis, exact (no iteration).

    Solves max Σ_i w_i log(1 + p_i / n_i) s.t. Σ_i w_i p_i = P, p ≥ 0, whose solution is
    p_i = max(0, μ − n_i) with the water level μ set by the budget (Cover & Thomas, Elements of
    Information Theory, 2nd ed., §9.4). μ is found exactly by sorting n: with the k smallest
    levels active, μ_k = (P + Σ_{j≤k} w_j n_j) / Σ_{j≤k} w_j, and the active set is the longest
    prefix with n_k < μ_k.

    Args:
        noise_over_gain: Noise level n_i of each channel (W; e.g. noise power over channel gain,
            the inverse of SINR per watt), shape [..., n]. ``inf`` marks a channel that must get
            no power (unused PRB).
        total_power: Budget P (W), ≥ 0, shape [...] (broadcast against the leading dims) or a
            scalar.
        weight: Optional positive weight w_i of each channel (e.g. number of resources sharing
            the per-resource power p_i), shape [..., n]; channels with w_i ≤ 0 get 0. Default 1.

    Returns:
        Power per channel p_i (W), shape [..., n], with Σ_i w_i p_i = P (to rounding); all zero
        where P = 0 or every n_i is ``inf``.
    """
    noise = np.asarray(noise_over_gain, dtype=np.float64)
    budget = np.asarray(total_power, dtype=np.float64)[..., None]
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        noise = np.where(w > 0, noise, np.inf)
    if noise.shape[-1] == 0:
        return np.zeros(np.broadcast_shapes(noise.shape, budget.shape))
    order = np.argsort(noise, axis=-1)
    # [..., n] sorted levels, shifted by the lowest one (p = μ − n loses less to cancellation)
    n_sorted = np.take_along_axis(noise, order, axis=-1)
    base = n_sorted[..., :1]
    base = np.where(np.isfinite(base), base, 0.0)
    noise = noise - base
    n_sorted = n_sorted - base
    # [..., n] the water level if the k smallest levels are active
    with np.errstate(invalid="ignore"):  # inf − inf / 0 · inf past the finite entries
        if weight is None:
            w_cum = np.arange(1, noise.shape[-1] + 1, dtype=np.float64)
            level = (budget + np.cumsum(n_sorted, axis=-1)) / w_cum
        else:
            w_sorted = np.take_along_axis(np.broadcast_to(w, noise.shape), order, axis=-1)
            level = (budget + np.cumsum(w_sorted * n_sorted, axis=-1)) / np.cumsum(
                w_sorted, axis=-1
            )
        active = np.logical_and.accumulate(n_sorted < level, axis=-1)
    n_active = active.sum(axis=-1, keepdims=True)
    mu = np.take_along_axis(level, np.maximum(n_active - 1, 0), axis=-1)
    mu = np.where(n_active > 0, mu, -np.inf)
    return np.maximum(mu - noise, 0.0)


def equal_power(alloc: IntArray, max_power_w: FloatArray) -> FloatArray:
    """Split the budget equally over the used PRBs of each cell; unused PRBs get 0.

    Args:
        alloc: UE index per PRB, shape [..., n_prb], −1 = unused.
        max_power_w: Power budget per cell (W), shape [...].

    Returns:
        Power per PRB (W), shape [..., n_prb]; all zero in a cell without used PRBs.
    """
    used = alloc >= 0
    n_used = used.sum(axis=-1)
    per_prb = np.asarray(max_power_w, dtype=np.float64) / np.maximum(n_used, 1)
    return np.where(used, per_prb[..., None], 0.0)


def _solve_log_barrier(
    t: FloatArray, fairness: float, log_x0: FloatArray | None = None
) -> FloatArray:
    """Solve x + f log x = t for x > 0 (elementwise) by Newton's method on y = log x.

    g(y) = e^y + f y − t is increasing and convex with g' ≥ f, so Newton converges from any
    start: from the left it overshoots once, then decreases monotonically. Iterates are clamped
    to the upper bound log max(t, min(1, e^{t/f})) of the root (the start without a guess), so
    an overshoot can never overflow. Newton's error after a step s is ≤ s² / 2 (g'' / g' ≤ 1):
    stopping at |s| < 1e-9 leaves a relative error < 1e-17 in x.

    Args:
        t: Right-hand side, any shape.
        fairness: f > 0.
        log_x0: Optional starting guess for log x, same shape as ``t``.

    Returns:
        log x, same shape as ``t``.
    """
    with np.errstate(over="ignore"):
        y_max = np.log(np.maximum(t, np.minimum(1.0, np.exp(t / fairness))))
    y = y_max.copy() if log_x0 is None else np.minimum(log_x0, y_max)
    for _ in range(100):
        ey = np.exp(y)
        step = (ey + fairness * y - t) / (ey + fairness)
        y -= step
        np.minimum(y, y_max, out=y)
        if not np.any(np.abs(step) >= 1e-9):
            break
    return y


def alpha_fair(
    quality_per_w: ArrayLike,
    n_prb: ArrayLike,
    max_power_w: ArrayLike,
    *,
    fairness: float = 0.0,
    guaranteed_power_ratio: float = 0.5,
    rtol: float = 1e-12,
    max_iter: int = 200,
) -> FloatArray:
    r"""α-fair downlink power control of Sionna SYS (``downlink_fair_power_control``), in numpy.

    Per UE u with r_u resources and channel quality q_u (SINR per watt), find the per-resource
    power p_u maximizing Σ_u g_f(r_u log(1 + p_u q_u)) s.t. Σ_u r_u p_u = P and
    r_u p_u ≥ ρ P / U (U = number of UEs with r_u > 0), with g_f(x) = log x for f = 1 and
    x^{1−f} / (1 − f) otherwise (Mo, Walrand, IEEE/ACM ToN 2000). KKT (Sionna SYS docs):
    [r_u log(1 + p_u q_u)]^f (1 + p_u q_u) = q_u / μ, p_u clipped to [ρP / (U r_u), P / r_u].

    Solution method (exact to ``rtol``, unlike Sionna's nested bisections with absolute
    tolerances): for f = 0 a weighted water-filling with floors, solved by sorting; for f > 0
    the substitution x_u = log(1 + p_u q_u), λ = log(1/μ) turns the KKT condition into
    x_u + f log x_u = λ + log q_u − f log r_u (monotone, solved by Newton), and λ is found by
    safeguarded Newton on Σ_u r_u p_u(λ) = P inside a bisection bracket.

    UEs with r_u = 0 get no power. UEs with q_u ≤ 0 (no channel: their utility does not depend
    on power) get only their guaranteed power.

    Args:
        quality_per_w: Channel quality q_u = gain / (interference + noise) (1/W),
            shape [..., n_ue].
        n_prb: Number of resources r_u allocated to each UE, shape [..., n_ue], ≥ 0.
        max_power_w: Base-station power budget P (W), shape [...] or scalar.
        fairness: f ≥ 0; 0 maximizes the sum of rates, 1 is proportional fairness, f → ∞
            approaches max-min.
        guaranteed_power_ratio: ρ in [0, 1].
        rtol: Relative tolerance on the budget Σ_u r_u p_u = P.
        max_iter: Iteration cap of the outer search.

    Returns:
        Total power per UE r_u p_u (W), shape [..., n_ue] (Sionna's ``tx_power``); per cell it
        sums to P (to ``rtol``, never above it) when some UE has resources, to 0 otherwise.
    """
    if fairness < 0:
        raise ValueError(f"fairness must be >= 0, got {fairness}")
    if not 0.0 <= guaranteed_power_ratio <= 1.0:
        raise ValueError(f"guaranteed_power_ratio must be in [0, 1], got {guaranteed_power_ratio}")
    q = np.asarray(quality_per_w, dtype=np.float64)
    r = np.broadcast_to(np.asarray(n_prb, dtype=np.float64), q.shape)
    budget = np.broadcast_to(np.asarray(max_power_w, dtype=np.float64), q.shape[:-1])
    scheduled = r > 0
    n_sched = scheduled.sum(axis=-1)
    budget = np.where(n_sched > 0, budget, 0.0)  # [...] zero budget where nobody has resources
    r_safe = np.where(scheduled, r, 1.0)
    # [..., n_ue] guaranteed total power per scheduled UE, ρ P / U
    floor_total = np.where(
        scheduled, (guaranteed_power_ratio * budget / np.maximum(n_sched, 1))[..., None], 0.0
    )
    useful = scheduled & (q > 0)

    # ------------------------------------------------------------------------------------
    # f = 0: p_u = max(μ − 1/q_u, lo_u) = lo_u + max(μ − (1/q_u + lo_u), 0), i.e. water-filling
    # of the budget left after the floors, weights r_u.
    # ------------------------------------------------------------------------------------
    if fairness == 0.0:
        lo = floor_total / r_safe
        with np.errstate(divide="ignore"):
            level = np.where(useful, 1.0 / np.where(useful, q, 1.0) + lo, np.inf)
        rest = budget - floor_total.sum(axis=-1)
        extra = water_filling(level, np.maximum(rest, 0.0), weight=np.where(useful, r, 0.0))
        return np.where(scheduled, r * (lo + extra), 0.0)

    # ------------------------------------------------------------------------------------
    # f > 0: search λ = log(1/μ); per UE x(λ) solves x + f log x = λ + c_u.
    # ------------------------------------------------------------------------------------
    f = float(fairness)
    q_safe = np.where(useful, q, 1.0)
    c = np.log(q_safe) - f * np.log(r_safe)  # [..., n_ue]
    lo_tot = floor_total
    hi_tot = np.where(scheduled, budget[..., None], 0.0)
    # Budget for the useful UEs once the others have their floors.
    rest = budget - np.where(useful, 0.0, floor_total).sum(axis=-1)  # [...]
    n_useful = useful.sum(axis=-1)

    def power(
        lam: FloatArray, log_x0: FloatArray | None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Clipped total power per UE r_u p_u, d(r_u p_u)/dλ and log x_u at λ, [..., n_ue]."""
        y = _solve_log_barrier(lam[..., None] + c, f, log_x0)
        x = np.exp(y)
        with np.errstate(over="ignore", invalid="ignore"):  # huge x: clipped to P below
            tot = r_safe * np.expm1(x) / q_safe
            clipped = (tot <= lo_tot) | (tot >= hi_tot)
            slope = np.where(useful & ~clipped, (tot + r_safe / q_safe) * x / (x + f), 0.0)
        return np.where(useful, np.clip(tot, lo_tot, hi_tot), 0.0), slope, y

    # Bracket: at λ_lo every useful UE's unclipped total is ≤ rest / n_useful, at λ_hi ≥ it.
    share = (rest / np.maximum(n_useful, 1))[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        x_share = np.log1p(q_safe * share / r_safe)
        lam_u = x_share + f * np.log(np.maximum(x_share, 1e-300)) - c
    lam_lo = np.where(useful, lam_u, np.inf).min(axis=-1)
    lam_hi = np.where(useful, lam_u, -np.inf).max(axis=-1)
    active = (n_useful > 0) & (rest > 0)
    lam_lo = np.where(active, lam_lo, 0.0)
    lam_hi = np.where(active, lam_hi, 0.0)
    lam = 0.5 * (lam_lo + lam_hi)
    fixed = np.where(useful, 0.0, floor_total)
    y: FloatArray | None = None
    tot = fixed
    for _ in range(max_iter):
        tot, slope, y = power(lam, y)
        excess = tot.sum(axis=-1) - rest  # [...] increasing in λ
        narrow = lam_hi - lam_lo <= 1e-15 * (1.0 + np.abs(lam))
        done = ~active | (np.abs(excess) <= rtol * rest) | narrow
        if done.all():
            break
        lam_lo = np.where(excess < 0, lam, lam_lo)
        lam_hi = np.where(excess > 0, lam, lam_hi)
        d = slope.sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = lam - excess / d
        ok = (d > 0) & (newton > lam_lo) & (newton < lam_hi)
        lam_next = np.where(done, lam, np.where(ok, newton, 0.5 * (lam_lo + lam_hi)))
        # first-order guess of the new roots: d(log x)/dλ = 1 / (x + f)
        y = y + (lam_next - lam)[..., None] / (np.exp(y) + f)
        lam = lam_next
    else:
        tot, _, _ = power(lam, y)
    # Never exceed the budget: rescale the (≤ rtol) overshoot away.
    s = tot.sum(axis=-1, keepdims=True)
    rest_k = rest[..., None]
    tot = np.where(s > rest_k, tot * (rest_k / np.where(s > 0, s, 1.0)), tot)
    return tot + fixed


# ================================================================================================
# Policies
# ================================================================================================
def _gain_of_scheduled(alloc: IntArray, gain: FloatArray) -> FloatArray:
    """Gain-over-noise of the UE scheduled on each PRB, shape [..., n_prb] (0 on unused PRBs)."""
    # [..., 1, n_prb] -> [..., n_prb]
    g = np.take_along_axis(gain, np.maximum(alloc, 0)[..., None, :], axis=-2)[..., 0, :]
    return np.where(alloc >= 0, g, 0.0)


class EqualPower:
    """Maximum power split equally over the used PRBs of each cell (unused PRBs get 0)."""

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Watts per PRB, float64 [n_cell, n_prb], from ``alloc`` and ``max_power_w``."""
        return equal_power(obs["alloc"], obs["max_power_w"])


class WaterFilling:
    """Water-filling over the used PRBs of each cell, noise level 1 / gain_over_noise_per_w.

    Maximizes Σ_i log(1 + p_i g_i) over the used PRBs (Cover & Thomas §9.4): a scheduled PRB
    whose gain is below the water line gets 0 W. PRBs with zero gain get 0 W.
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Watts per PRB, float64 [n_cell, n_prb]."""
        g = _gain_of_scheduled(obs["alloc"], obs["gain_over_noise_per_w"])
        with np.errstate(divide="ignore"):
            noise = np.where(g > 0, 1.0 / g, np.inf)
        return water_filling(noise, obs["max_power_w"])


class AlphaFair:
    """α-fair power control of Sionna SYS, per UE, then spread equally over each UE's PRBs.

    For each cell: r_u = number of PRBs given to UE u, q_u = mean ``gain_over_noise_per_w``
    over those PRBs; :func:`alpha_fair` gives the UE's total power r_u p_u, and each of its PRBs
    gets p_u.

    Args:
        fairness: f ≥ 0 (0: max sum rate, 1: proportional fair, large: max-min). Sionna's
            default is 0; the registered ``power/alpha_fair`` uses 1.
        guaranteed_power_ratio: ρ in [0, 1] (Sionna's default 0.5).
    """

    def __init__(self, fairness: float = 1.0, guaranteed_power_ratio: float = 0.5) -> None:
        if fairness < 0:
            raise ValueError(f"fairness must be >= 0, got {fairness}")
        if not 0.0 <= guaranteed_power_ratio <= 1.0:
            raise ValueError(
                f"guaranteed_power_ratio must be in [0, 1], got {guaranteed_power_ratio}"
            )
        self.fairness = float(fairness)
        self.guaranteed_power_ratio = float(guaranteed_power_ratio)

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> FloatArray:
        """Watts per PRB, float64 [n_cell, n_prb]."""
        alloc = obs["alloc"]
        gain = obs["gain_over_noise_per_w"]
        n_ue = gain.shape[-2]
        # [..., n_ue, n_prb] PRB i belongs to UE u
        owns = alloc[..., None, :] == np.arange(n_ue)[:, None]
        n_prb = owns.sum(axis=-1)
        quality = np.where(owns, gain, 0.0).sum(axis=-1) / np.maximum(n_prb, 1)
        total = alpha_fair(
            quality,
            n_prb,
            obs["max_power_w"],
            fairness=self.fairness,
            guaranteed_power_ratio=self.guaranteed_power_ratio,
        )
        per_prb = total / np.maximum(n_prb, 1)
        p = np.take_along_axis(per_prb, np.maximum(alloc, 0), axis=-1)
        return np.where(alloc >= 0, p, 0.0)
