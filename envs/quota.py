"""The quota resolver: per-UE PRB shares → exact PRB assignments (arXiv 2605.02149 §III).

The PRB agent of the hierarchical controller outputs *shares* (a point on the simplex over the
UEs with data). Two pure, deterministic steps turn them into a PRB map:

1. :func:`hamilton_counts` — Hamilton's largest-remainder apportionment: each UE gets
   ``⌊s_u · N⌋`` PRBs, and the ``N − Σ⌊s_u · N⌋`` PRBs left over go to the largest remainders
   (ties to the lower UE index). The counts sum to exactly ``N``, and each differs from its
   quota ``s_u · N`` by less than one PRB (Balinski & Young, *Fair Representation*, 1982, ch. 2).
2. :func:`assign_prbs` — channel-aware assignment: (UE, PRB) pairs are visited in decreasing order
   of the UE's SINR on the PRB *relative to its own mean SINR*, and a PRB goes to the UE of the
   pair if both the PRB is free and the UE still has quota. Ranking relative to each UE's mean lets
   every UE get the PRBs where its own fading peaks, rather than the strongest UE taking the best
   PRBs first. The greedy always completes: if a UE had quota left at the end, every one of its
   pairs was visited with the PRB already taken, so all ``N`` PRBs would be assigned with quota
   still unmet, contradicting ``Σ counts = N``.

Written by hand: no library apportions a simplex point to integers with this tie rule, and the
assignment is compiled with numba because it runs in every slot of an RL episode.
"""

from __future__ import annotations

import numpy as np

from edgetwin.sim.jit import njit_cached
from edgetwin.sim.types import BoolArray, FloatArray, IntArray

from .reduce import row_sum


def hamilton_counts(shares: FloatArray, total: int, eligible: BoolArray) -> IntArray:
    """Largest-remainder (Hamilton) apportionment of ``total`` items over eligible UEs.

    Args:
        shares: Non-negative weights, shape [n_ue]; normalized here over eligible UEs (all
            zero → equal shares).
        total: Number of PRBs to apportion (≥ 0).
        eligible: UEs that may receive PRBs (those with data), shape [n_ue].

    Returns:
        PRB counts, int64 [n_ue], summing to ``total`` (0 when no UE is eligible); ineligible UEs
        get 0.
    """
    w = np.asarray(shares, dtype=np.float64)
    if not np.isfinite(w).all():
        w = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
    w = np.where(eligible, np.maximum(w, 0.0), 0.0)
    n_elig = int(np.count_nonzero(eligible))
    counts = np.zeros(w.shape[0], dtype=np.int64)
    if n_elig == 0 or total <= 0:
        return counts
    s = float(row_sum(w))
    w = w / s if s > 0 else eligible / n_elig
    quota = w * total  # Hamilton (1792): quotas s_u · N
    counts[:] = np.floor(quota)
    left = total - int(counts.sum())  # integers: exact in any order
    if left > 0:
        rem = np.where(eligible, quota - counts, -1.0)
        order = np.argsort(-rem, kind="stable")  # largest remainder first, lower index on ties
        counts[order[:left]] += 1
    return counts


@njit_cached()
def _greedy_assign(counts: IntArray, order: IntArray, n_prb: int) -> IntArray:  # pragma: no cover
    alloc = np.full(n_prb, -1, dtype=np.int64)
    left = counts.copy()
    remaining = left.sum()
    for flat in order:
        if remaining == 0:
            break
        u = flat // n_prb
        p = flat % n_prb
        if alloc[p] < 0 and left[u] > 0:
            alloc[p] = u
            left[u] -= 1
            remaining -= 1
    return alloc


def assign_prbs(counts: IntArray, sinr_db: FloatArray) -> IntArray:
    """Channel-aware assignment of exactly ``counts[u]`` PRBs to each UE.

    Args:
        counts: PRBs per UE, int [n_ue], summing to at most ``n_prb``.
        sinr_db: Estimated SINR per UE and PRB, dB, shape [n_ue, n_prb] (finite or ±inf;
            clipped to [−100, 100] for ranking).

    Returns:
        UE index per PRB, int64 [n_prb]; −1 for PRBs left unused (only if ``Σ counts < n_prb``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_prb = sinr_db.shape[1]
    if counts.sum() > n_prb:
        raise ValueError(f"counts sum to {counts.sum()} > n_prb = {n_prb}")
    s = np.clip(sinr_db, -100.0, 100.0)
    rel = s - s.mean(axis=1, keepdims=True)
    rel[counts == 0] = -np.inf  # never visited before a UE that can take the PRB
    order = np.argsort(-rel, axis=None, kind="stable")
    return _greedy_assign(counts, order.astype(np.int64), n_prb)


def resolve_quota(shares: FloatArray, sinr_db: FloatArray, eligible: BoolArray) -> IntArray:
    """Shares → PRB map: Hamilton counts over all PRBs, then channel-aware assignment.

    Args:
        shares: Non-negative per-UE weights, shape [n_ue].
        sinr_db: Estimated SINR per UE and PRB, dB, shape [n_ue, n_prb].
        eligible: UEs with data, shape [n_ue].

    Returns:
        UE index per PRB, int64 [n_prb]: every PRB to an eligible UE (all −1 if none).
    """
    counts = hamilton_counts(shares, sinr_db.shape[1], eligible)
    return assign_prbs(counts, sinr_db)


# ============================================================================================
# Batched: B cells' quotas in one pass (the vector env)
# ============================================================================================
def hamilton_counts_batch(shares: FloatArray, total: int, eligible: BoolArray) -> IntArray:
    """:func:`hamilton_counts` of every row: shares and eligibility [B, n_ue] → int64 [B, n_ue].

    The same operations row by row (reductions over the last axis, a stable sort per row), so
    each row equals :func:`hamilton_counts` of that row (``tests/envs/test_quota.py``).
    """
    w = np.asarray(shares, dtype=np.float64)
    if not np.isfinite(w).all():
        w = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
    w = np.where(eligible, np.maximum(w, 0.0), 0.0)
    n_elig = np.count_nonzero(eligible, axis=1)
    counts = np.zeros(w.shape, dtype=np.int64)
    rows = (n_elig > 0) & (total > 0)
    if not rows.any():
        return counts
    s = row_sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where((s > 0)[:, None], w / s[:, None], eligible / np.maximum(n_elig, 1)[:, None])
    quota = w * total  # Hamilton (1792): quotas s_u · N
    counts[:] = np.floor(quota)
    left = total - counts.sum(axis=1)
    rem = np.where(eligible, quota - counts, -1.0)
    order = np.argsort(-rem, axis=1, kind="stable")  # largest remainder first, lower index on ties
    bonus = np.zeros_like(counts)
    np.put_along_axis(bonus, order, (np.arange(w.shape[1]) < left[:, None]).astype(np.int64), 1)
    counts += bonus
    counts[~rows] = 0
    return counts


@njit_cached()
def _greedy_assign_rows(counts: IntArray, rel: FloatArray) -> IntArray:  # pragma: no cover
    """:func:`_greedy_assign` of every row without the global sort: a merge of per-UE orders.

    The greedy visits (UE, PRB) pairs by decreasing ``rel``, ties by the flat index
    ``u · n_prb + p``. Each UE's row sorted stably is that order restricted to the UE, so
    repeatedly taking the best head over the UEs with quota left (lowest UE on ties) visits the
    same pairs in the same order; a UE without quota would skip all its pairs, so it is dropped.
    Cost O(n_ue · n_prb log n_prb) per row instead of O(n_ue n_prb log(n_ue n_prb)).
    """
    B, n_ue, n_prb = rel.shape
    out = np.full((B, n_prb), -1, dtype=np.int64)
    order = np.zeros((n_ue, n_prb), dtype=np.int64)
    head = np.zeros(n_ue, dtype=np.int64)
    left = np.zeros(n_ue, dtype=np.int64)
    for b in range(B):
        remaining = 0
        for u in range(n_ue):
            left[u] = counts[b, u]
            remaining += left[u]
            head[u] = 0
            if left[u] > 0:
                order[u] = np.argsort(-rel[b, u], kind="mergesort")
        while remaining > 0:
            best = -1
            best_rel = 0.0
            for u in range(n_ue):
                if left[u] > 0 and head[u] < n_prb:
                    r = rel[b, u, order[u, head[u]]]
                    if best < 0 or r > best_rel:
                        best, best_rel = u, r
            if best < 0:
                break
            p = order[best, head[best]]
            head[best] += 1
            if out[b, p] < 0:
                out[b, p] = best
                left[best] -= 1
                remaining -= 1
    return out


def resolve_quota_batch(shares: FloatArray, sinr_db: FloatArray, eligible: BoolArray) -> IntArray:
    """:func:`resolve_quota` of every row: [B, n_ue], [B, n_ue, n_prb], [B, n_ue] → [B, n_prb]."""
    counts = hamilton_counts_batch(shares, sinr_db.shape[2], eligible)
    s = np.clip(sinr_db, -100.0, 100.0)
    rel = s - s.mean(axis=2, keepdims=True)
    return _greedy_assign_rows(counts, np.ascontiguousarray(rel))
