"""PRB schedulers: round robin, proportional fair and max-rate (pure kernels + Policy classes).

Every kernel works on arrays with any leading batch dimensions (``[..., n_ue, n_prb]``; the NR
cell passes ``[n_cell, n_ue, n_prb]``) and returns the scheduled UE index per PRB,
``int64 [..., n_prb]``, with ``-1`` for an unused PRB. A PRB is only ever given to an
*eligible* UE (``has_data & ue_mask``); a cell without eligible UEs gets ``-1`` everywhere.

Observation read by the policies (dict built by the cell every active slot):
``slot`` (int), ``rate_bps`` [n_cell, n_ue, n_prb], ``last_rate_bps`` [n_cell, n_ue],
``has_data`` [n_cell, n_ue] (bool), ``ue_mask`` [n_cell, n_ue] (bool). Policies never write to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Floor of the PF average throughput T (bit/s). T of a UE without service decays as β^n and
# would underflow to 0 after ~35 000 slots at β = 0.98 (then r / 0 = inf, 0 / 0 = nan); above
# the floor the update is untouched, so agreement with Sionna stays bit-exact.
_MIN_AVG_RATE_BPS = 1e-250


def _argmax_over_eligible(metric: FloatArray, eligible: BoolArray) -> IntArray:
    """Per-PRB argmax over eligible UEs of a non-negative metric; ``-1`` where none is eligible.

    Args:
        metric: Metric per UE and PRB, shape [..., n_ue, n_prb], all ≥ 0. Overwritten (pass a
            fresh array).
        eligible: UEs that may be scheduled, shape [..., n_ue].

    Returns:
        UE index per PRB, shape [..., n_prb], int64; ties go to the lowest UE index (as
        ``torch.argmax`` in Sionna).
    """
    # Ineligible rows get -1 < every eligible metric (≥ 0): they can never win the argmax.
    metric[~eligible] = -1.0
    # [..., n_prb]
    alloc = metric.argmax(axis=-2).astype(np.int64, copy=False)
    any_eligible = eligible.any(axis=-1)
    if not any_eligible.all():
        alloc[~any_eligible] = -1
    return alloc


def proportional_fair(
    rate_bps: FloatArray, avg_rate_bps: FloatArray, eligible: BoolArray
) -> IntArray:
    """Give each PRB to the eligible UE with the largest PF metric r(u, i) / T(u).

    Reference: Jalali, Padovani, Pankaj, VTC 2000.

    Args:
        rate_bps: Achievable rate of UE u on PRB i (bit/s), shape [..., n_ue, n_prb], ≥ 0.
        avg_rate_bps: Average served rate T(u) (bit/s), shape [..., n_ue]; must be > 0.
        eligible: UEs that may be scheduled (``has_data & ue_mask``), shape [..., n_ue].

    Returns:
        Scheduled UE index per PRB, shape [..., n_prb], int64, ``-1`` where no UE is eligible.
    """
    # [..., n_ue, n_prb]
    metric = rate_bps / avg_rate_bps[..., None]
    return _argmax_over_eligible(metric, eligible)


def max_rate(rate_bps: FloatArray, eligible: BoolArray) -> IntArray:
    """Give each PRB to the eligible UE with the largest achievable rate (max C/I).

    Args:
        rate_bps: Achievable rate of UE u on PRB i (bit/s), shape [..., n_ue, n_prb], ≥ 0.
        eligible: UEs that may be scheduled, shape [..., n_ue].

    Returns:
        Scheduled UE index per PRB, shape [..., n_prb], int64, ``-1`` where no UE is eligible.
    """
    return _argmax_over_eligible(np.array(rate_bps, dtype=np.float64), eligible)


def round_robin(eligible: BoolArray, pointer: IntArray, n_prb: int) -> tuple[IntArray, IntArray]:
    """Deal the PRBs of one slot one by one to the eligible UEs, in cyclic order.

    Scheme: the eligible UEs are ordered cyclically starting at the first eligible UE whose
    index is ≥ ``pointer``; PRBs are dealt like cards, so with ``n_e`` eligible UEs the first
    ``n_prb mod n_e`` of them get ``⌊n_prb / n_e⌋ + 1`` PRBs and the others ``⌊n_prb / n_e⌋``
    (when ``n_e > n_prb`` the first ``n_prb`` UEs get one PRB each). Each UE's PRBs are
    contiguous (NR resource allocation type 1). The pointer moves to the UE that would receive
    the next card, so over any run of slots with the same eligible set the PRB counts of two
    UEs differ by at most one: equal long-run PRB shares, Jain index of the shares → 1.

    Args:
        eligible: UEs that may be scheduled, shape [..., n_ue].
        pointer: UE index the cyclic order starts from, shape [...], int64 in [0, n_ue).
        n_prb: Number of PRBs to deal.

    Returns:
        ``(alloc, next_pointer)``: UE index per PRB, shape [..., n_prb], int64 (``-1`` where no
        UE is eligible), and the pointer for the next slot, shape [...] (unchanged where no UE
        is eligible).
    """
    n_ue = eligible.shape[-1]
    # [..., n_ue] cyclic distance from the pointer; ineligible UEs sorted last
    key = (np.arange(n_ue) - pointer[..., None]) % n_ue
    key[~eligible] = n_ue
    order = np.argsort(key, axis=-1, kind="stable")
    n_elig = eligible.sum(axis=-1)
    n_safe = np.maximum(n_elig, 1)
    q, r = np.divmod(n_prb, n_safe)  # [...] PRBs per UE, UEs with one extra
    q, r, n_big = q[..., None], r[..., None], ((q + 1) * r)[..., None]
    i = np.arange(n_prb)
    # [..., n_prb] position (in the cyclic order) of the UE that gets PRB i
    pos = np.where(i < n_big, i // (q + 1), r + (i - n_big) // np.maximum(q, 1))
    alloc = np.take_along_axis(order, pos, axis=-1).astype(np.int64, copy=False)
    next_pointer = np.take_along_axis(order, r % n_safe[..., None], axis=-1)[..., 0]
    none = n_elig == 0
    if none.any():
        alloc[none] = -1
        next_pointer = np.where(none, pointer, next_pointer)
    return alloc, next_pointer.astype(np.int64, copy=False)


def _eligible(obs: Mapping[str, Any]) -> BoolArray:
    return np.logical_and(obs["has_data"], obs["ue_mask"])


class RoundRobin:
    """Round-robin PRB scheduler (see :func:`round_robin` for the dealing scheme).

    State: one pointer per cell, cleared by :meth:`reset`.
    """

    def __init__(self) -> None:
        self._pointer: IntArray | None = None

    def reset(self, *, seed: int | None = None) -> None:
        """Clear the pointers (``seed`` is unused: the policy is deterministic)."""
        self._pointer = None

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """Return the PRB map, int64 [n_cell, n_prb], from ``has_data``/``ue_mask``/``rate_bps``."""
        eligible = _eligible(obs)
        if self._pointer is None or self._pointer.shape != eligible.shape[:-1]:
            self._pointer = np.zeros(eligible.shape[:-1], dtype=np.int64)
        n_prb = obs["rate_bps"].shape[-1]
        alloc, self._pointer = round_robin(eligible, self._pointer, n_prb)
        return alloc


class ProportionalFair:
    """Proportional-fair scheduler with the β-discounted throughput of Sionna SYS.

    The average throughput ``T`` (bit/s) starts at ``initial_rate_bps`` for every UE (1, as in
    ``sionna.sys.PFSchedulerSUMIMO``) and is updated *before* the metric of slot t is computed,
    from the rate delivered in the previous active slot (Sionna's order):
    T_t = β T_{t−1} + (1 − β) R_{t−1}. Slots skipped by the cell (no data anywhere) serve
    nothing, so after a gap g = slot − previous slot the update is, exactly,
    T = β^(g−1) · (β T + (1 − β) R_last). The first call after :meth:`reset` counts as g = 1,
    and a non-increasing ``slot`` (a new episode without reset) is treated as g = 1 too.
    Ties go to the lowest UE index, as ``torch.argmax``.

    Reference: Jalali, Padovani, Pankaj, VTC 2000 (metric); Sionna SYS PFSchedulerSUMIMO (update).

    Args:
        beta: Discount factor β in (0, 1).
        initial_rate_bps: Initial average throughput T_0 (bit/s), > 0.
    """

    def __init__(self, beta: float = 0.98, initial_rate_bps: float = 1.0) -> None:
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {beta}")
        if not initial_rate_bps > 0.0:
            raise ValueError(f"initial_rate_bps must be > 0, got {initial_rate_bps}")
        self.beta = float(beta)
        self.initial_rate_bps = float(initial_rate_bps)
        self._avg_rate_bps: FloatArray | None = None
        self._slot: int | None = None

    @property
    def avg_rate_bps(self) -> FloatArray | None:
        """Current average throughput T (bit/s), shape [n_cell, n_ue] (``None`` before act)."""
        return self._avg_rate_bps

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the averages (``seed`` is unused: the policy is deterministic)."""
        self._avg_rate_bps = None
        self._slot = None

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """Update T from ``last_rate_bps`` and the slot gap, then schedule by r / T."""
        last_rate_bps = obs["last_rate_bps"]
        slot = int(obs["slot"])
        avg = self._avg_rate_bps
        if avg is None or avg.shape != last_rate_bps.shape:
            avg = np.full(last_rate_bps.shape, self.initial_rate_bps)
            self._slot = None
        beta = self.beta
        # Sionna's update, same operation order (bit-exact): β T + (1 − β) R.
        avg = beta * avg + (1 - beta) * last_rate_bps
        gap = 1 if self._slot is None else slot - self._slot
        if gap > 1:
            avg *= beta ** (gap - 1)
        np.maximum(avg, _MIN_AVG_RATE_BPS, out=avg)
        self._avg_rate_bps = avg
        self._slot = slot
        return proportional_fair(obs["rate_bps"], avg, _eligible(obs))


class MaxRate:
    """Max-rate (max C/I) scheduler: each PRB to the eligible UE with the best achievable rate."""

    def reset(self, *, seed: int | None = None) -> None:
        """Stateless: nothing to clear."""

    def act(self, obs: Mapping[str, Any]) -> IntArray:
        """Return the PRB map, int64 [n_cell, n_prb]."""
        return max_rate(obs["rate_bps"], _eligible(obs))
