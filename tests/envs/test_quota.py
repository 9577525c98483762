"""The quota resolver: Hamilton apportionment and channel-aware PRB assignment (envs/quota.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.envs.quota import assign_prbs, hamilton_counts, resolve_quota

# Zero or a normal float: scaling a subnormal by 2**k is not exact (it loses bits or underflows).
_SHARE = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-290, max_value=1e3, allow_subnormal=False),
)


@st.composite
def _problem(draw):
    """Shares [n_ue] ≥ 0, eligibility [n_ue], a PRB total and an SINR grid [n_ue, n_prb] in dB."""
    n_ue = draw(st.integers(1, 12))
    shares = np.array(draw(st.lists(_SHARE, min_size=n_ue, max_size=n_ue)))
    eligible = np.array(draw(st.lists(st.booleans(), min_size=n_ue, max_size=n_ue)))
    n_prb = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    sinr_db = np.random.default_rng(seed).normal(10.0, 8.0, (n_ue, n_prb))
    return shares, eligible, n_prb, sinr_db


def _quota(shares, eligible, total):
    """Hamilton's quotas s_u · N over eligible UEs (equal shares when all weights are zero)."""
    w = np.where(eligible, shares, 0.0)
    w = w / w.sum() if w.sum() > 0 else eligible / max(eligible.sum(), 1)
    return w * total


@settings(max_examples=200, deadline=None)
@given(_problem())
def test_hamilton_counts_sum_quota_and_eligibility(problem):
    shares, eligible, total, _ = problem
    counts = hamilton_counts(shares, total, eligible)
    assert counts.dtype == np.int64
    assert counts.shape == shares.shape
    assert counts.sum() == (total if eligible.any() else 0)
    assert (counts[~eligible] == 0).all()
    assert (counts >= 0).all()
    if eligible.any():
        # Hamilton's quota property (Balinski & Young 1982): floor or ceiling of the quota.
        q = _quota(shares, eligible, total)
        assert (np.abs(counts - q)[eligible] < 1.0).all()


@settings(max_examples=100, deadline=None)
@given(_problem(), st.integers(-20, 20))
def test_hamilton_counts_invariant_to_scaling_and_deterministic(problem, k):
    shares, eligible, total, _ = problem
    counts = hamilton_counts(shares, total, eligible)
    np.testing.assert_array_equal(hamilton_counts(shares, total, eligible), counts)
    # Scaling by a power of two is exact in floating point, so normalized shares are identical.
    np.testing.assert_array_equal(hamilton_counts(shares * 2.0**k, total, eligible), counts)


def test_hamilton_counts_scaling_integer_shares():
    shares = np.array([5.0, 3.0, 2.0])
    eligible = np.ones(3, dtype=bool)
    for scale in (1.0, 10.0, 0.1, 7.0):
        np.testing.assert_array_equal(hamilton_counts(shares * scale, 7, eligible), [4, 2, 1])


def test_hamilton_counts_worked_example():
    # Quotas 3.5, 2.1, 1.4 → floors 3, 2, 1 (6 PRBs); the 7th goes to the largest remainder,
    # 0.5 of UE 0 → [4, 2, 1].
    counts = hamilton_counts(np.array([0.5, 0.3, 0.2]), 7, np.ones(3, dtype=bool))
    np.testing.assert_array_equal(counts, [4, 2, 1])


def test_hamilton_counts_ties_and_degenerate_inputs():
    all_in = np.ones(3, dtype=bool)
    # Equal remainders: the lower UE index wins.
    np.testing.assert_array_equal(hamilton_counts(np.ones(3), 4, all_in), [2, 1, 1])
    # All-zero (or NaN / negative) weights → equal shares over the eligible UEs.
    np.testing.assert_array_equal(hamilton_counts(np.zeros(3), 5, all_in), [2, 2, 1])
    bad = np.array([np.nan, -1.0, 0.0])
    np.testing.assert_array_equal(hamilton_counts(bad, 6, all_in), [2, 2, 2])
    # An ineligible UE gets nothing, however large its share.
    eligible = np.array([False, True, True])
    np.testing.assert_array_equal(hamilton_counts(np.array([9.0, 1, 1]), 4, eligible), [0, 2, 2])
    # Nobody eligible, or nothing to apportion.
    assert hamilton_counts(np.ones(3), 5, np.zeros(3, dtype=bool)).sum() == 0
    assert hamilton_counts(np.ones(3), 0, all_in).sum() == 0


@settings(max_examples=150, deadline=None)
@given(_problem())
def test_assign_prbs_gives_each_ue_exactly_its_count(problem):
    shares, eligible, n_prb, sinr_db = problem
    counts = hamilton_counts(shares, n_prb, eligible)
    alloc = assign_prbs(counts, sinr_db)
    assert alloc.dtype == np.int64
    assert alloc.shape == (n_prb,)
    # A PRB map holds one UE per PRB, so no PRB can go to two UEs; every UE gets exactly its count.
    used = alloc >= 0
    np.testing.assert_array_equal(np.bincount(alloc[used], minlength=counts.size), counts)
    assert (~used).sum() == n_prb - counts.sum()
    np.testing.assert_array_equal(assign_prbs(counts, sinr_db), alloc)  # deterministic


@settings(max_examples=100, deadline=None)
@given(_problem(), st.integers(0, 60))
def test_assign_prbs_partial_counts(problem, drop):
    """Counts summing to less than n_prb leave exactly the difference unused (−1)."""
    shares, eligible, n_prb, sinr_db = problem
    counts = hamilton_counts(shares, max(n_prb - drop, 0), eligible)
    alloc = assign_prbs(counts, sinr_db)
    used = alloc >= 0
    np.testing.assert_array_equal(np.bincount(alloc[used], minlength=counts.size), counts)
    assert used.sum() == counts.sum()


def test_assign_prbs_rejects_too_many_prbs():
    with pytest.raises(ValueError, match="n_prb"):
        assign_prbs(np.array([3, 3]), np.zeros((2, 5)))


@settings(max_examples=150, deadline=None)
@given(_problem())
def test_resolve_quota_serves_only_ues_with_data(problem):
    shares, eligible, n_prb, sinr_db = problem
    alloc = resolve_quota(shares, sinr_db, eligible)
    assert alloc.shape == (n_prb,)
    if eligible.any():
        assert (alloc >= 0).all()  # every PRB assigned
        assert eligible[alloc].all()  # and never to a UE without data
        np.testing.assert_array_equal(
            np.bincount(alloc, minlength=shares.size), hamilton_counts(shares, n_prb, eligible)
        )
    else:
        assert (alloc == -1).all()
    np.testing.assert_array_equal(resolve_quota(shares, sinr_db, eligible), alloc)


def test_resolve_quota_gives_each_ue_its_own_fading_peak():
    """Equal shares, fading peaks on disjoint halves: each UE gets its own peak half.

    UE 1 is stronger than UE 0 on *every* PRB, so ranking by absolute SINR would give it the
    best PRBs first; ranking relative to each UE's own mean gives each UE its peaks.
    """
    n_prb = 10
    half = n_prb // 2
    sinr_db = np.empty((2, n_prb))
    sinr_db[0, :half], sinr_db[0, half:] = 20.0, 0.0  # UE 0 peaks on the lower half
    sinr_db[1, :half], sinr_db[1, half:] = 25.0, 30.0  # UE 1 peaks on the upper half
    alloc = resolve_quota(np.array([0.5, 0.5]), sinr_db, np.ones(2, dtype=bool))
    np.testing.assert_array_equal(alloc, [0] * half + [1] * half)
    # Swapping the UEs swaps the halves.
    alloc = resolve_quota(np.array([0.5, 0.5]), sinr_db[::-1].copy(), np.ones(2, dtype=bool))
    np.testing.assert_array_equal(alloc, [1] * half + [0] * half)


def test_batched_resolver_equals_the_resolver_row_by_row_with_ties():
    # Rounded SINRs make many ties: the batched merge must break them as the stable global sort
    # (lower flat index u · n_prb + p first).
    from edgetwin.envs.quota import resolve_quota_batch

    rng = np.random.default_rng(0)
    for _ in range(200):
        B, U, P = 3, int(rng.integers(1, 8)), int(rng.integers(1, 30))
        shares = np.exp(5 * rng.uniform(-1, 1, (B, U)))
        eligible = rng.random((B, U)) < 0.7
        sinr = np.round(rng.normal(10, 5, (B, U, P)), int(rng.integers(0, 2)))
        got = resolve_quota_batch(shares, sinr, eligible)
        for b in range(B):
            np.testing.assert_array_equal(got[b], resolve_quota(shares[b], sinr[b], eligible[b]))
