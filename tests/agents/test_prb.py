"""PRB schedulers: agreement with Sionna SYS, idle-gap exactness, fairness, array properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.agents.baselines import (
    MaxRate,
    ProportionalFair,
    RoundRobin,
    max_rate,
    proportional_fair,
    round_robin,
)


def _obs(slot, rate, last, has_data=None, ue_mask=None):
    shape = rate.shape[:-1]
    return {
        "slot": slot,
        "rate_bps": rate,
        "last_rate_bps": last,
        "has_data": np.ones(shape, bool) if has_data is None else has_data,
        "ue_mask": np.ones(shape, bool) if ue_mask is None else ue_mask,
    }


def _delivered(alloc, rate):
    """Rate each UE gets from its PRBs (bit/s), [..., n_ue]."""
    n_ue = rate.shape[-2]
    owns = alloc[..., None, :] == np.arange(n_ue)[:, None]
    return np.where(owns, rate, 0.0).sum(axis=-1)


# ------------------------------------------------------------------------------------------------
# Sionna SYS agreement (required): same allocations, same T, slot by slot
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rates", ["continuous", "quantized"])
def test_pf_allocation_identical_to_sionna_pfscheduler(rates):
    torch = pytest.importorskip("torch")
    sys_mod = pytest.importorskip("sionna.sys")
    rng = np.random.default_rng(7)
    n_batch, n_ue, n_prb, n_slot = 3, 5, 12, 60
    ref = sys_mod.PFSchedulerSUMIMO(n_ue, n_prb, 1, batch_size=n_batch, precision="double")
    ours = ProportionalFair(beta=0.98)
    last = np.zeros((n_batch, n_ue))
    for slot in range(n_slot):
        if rates == "continuous":
            rate = rng.exponential(1e6, (n_batch, n_ue, n_prb)) * rng.uniform(
                0.2, 5, (n_batch, n_ue, 1)
            )
        else:  # few distinct values: many exact ties in the PF metric (lowest UE index wins)
            rate = rng.integers(0, 3, (n_batch, n_ue, n_prb)).astype(np.float64) * 1e6
        # Sionna: rate grid [batch, n_sym=1, n_prb, n_ue]; decision [batch, 1, n_prb, n_ue, 1]
        is_scheduled = ref(
            torch.from_numpy(last),
            torch.from_numpy(np.ascontiguousarray(rate.transpose(0, 2, 1)[:, None])),
        )
        expected = is_scheduled[:, 0, :, :, 0].numpy().argmax(axis=-1)
        alloc = ours.act(_obs(slot, rate, last))
        np.testing.assert_array_equal(alloc, expected, err_msg=f"slot {slot}")
        np.testing.assert_array_equal(ours.avg_rate_bps, ref.rate_achieved_past.numpy())
        last = _delivered(alloc, rate)


# ------------------------------------------------------------------------------------------------
# Idle slots: the closed-form decay equals feeding the skipped slots explicitly
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gap", [2, 3, 17, 400])
def test_pf_gap_equals_explicit_zero_rate_slots(gap):
    rng = np.random.default_rng(gap)
    n_cell, n_ue, n_prb = 2, 4, 6
    skipping, explicit = ProportionalFair(), ProportionalFair()
    last = np.zeros((n_cell, n_ue))
    for slot in range(10):  # common history
        rate = rng.exponential(1e6, (n_cell, n_ue, n_prb))
        a = skipping.act(_obs(slot, rate, last))
        explicit.act(_obs(slot, rate, last))
        last = _delivered(a, rate)
    s0 = 9
    rate = rng.exponential(1e6, (n_cell, n_ue, n_prb))
    # skipping cell: next active slot is s0 + gap, last_rate is what slot s0 delivered
    a_skip = skipping.act(_obs(s0 + gap, rate, last))
    # explicit: the g − 1 idle slots are fed with zero served rate
    feed = last
    for slot in range(s0 + 1, s0 + gap):
        explicit.act(_obs(slot, rate, feed))
        feed = np.zeros_like(last)
    a_explicit = explicit.act(_obs(s0 + gap, rate, feed))
    np.testing.assert_allclose(skipping.avg_rate_bps, explicit.avg_rate_bps, rtol=1e-12)
    np.testing.assert_array_equal(a_skip, a_explicit)


def test_pf_gap_formula():
    pf = ProportionalFair(beta=0.9)
    n_ue, n_prb = 3, 2
    last = np.array([[1.0, 2.0, 3.0]])
    pf.act(_obs(5, np.ones((1, n_ue, n_prb)), np.zeros((1, n_ue))))
    t_prev = pf.avg_rate_bps.copy()
    pf.act(_obs(9, np.ones((1, n_ue, n_prb)), last))
    expected = 0.9**3 * (0.9 * t_prev + 0.1 * last)
    np.testing.assert_allclose(pf.avg_rate_bps, expected, rtol=1e-15)


def test_pf_reset_restarts_from_initial_rate():
    rng = np.random.default_rng(0)
    rate = rng.exponential(1e6, (1, 4, 5))
    last = rng.exponential(1e6, (1, 4))
    fresh = ProportionalFair().act(_obs(0, rate, last))
    pf = ProportionalFair()
    for slot in range(5):
        pf.act(_obs(slot, rng.exponential(1e6, (1, 4, 5)), last))
    pf.reset(seed=1)
    np.testing.assert_array_equal(pf.act(_obs(0, rate, last)), fresh)
    np.testing.assert_array_equal(pf.avg_rate_bps, 0.98 * 1.0 + (1 - 0.98) * last)


def test_pf_rejects_bad_beta():
    with pytest.raises(ValueError, match="beta"):
        ProportionalFair(beta=1.0)


# ------------------------------------------------------------------------------------------------
# Fairness (Sionna's test_scheduler idea): statistically identical UEs get equal PRB shares
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scaled", [False, True])
def test_pf_equal_long_run_prb_share(scaled):
    rng = np.random.default_rng(3)
    n_ue, n_prb, n_slot = 4, 10, 2000
    # i.i.d. Rayleigh-fading rates; "scaled": different mean rates per UE (r/T is scale-free)
    scale = np.array([1.0, 2.0, 5.0, 10.0])[None, :, None] if scaled else 1.0
    pf = ProportionalFair()
    count = np.zeros(n_ue)
    last = np.zeros((1, n_ue))
    for slot in range(n_slot):
        rate = rng.exponential(1e6, (1, n_ue, n_prb)) * scale
        a = pf.act(_obs(slot, rate, last))
        count += np.bincount(a[0], minlength=n_ue)
        last = _delivered(a, rate)
    np.testing.assert_allclose(count / count.sum(), 1 / n_ue, atol=0.015)


def test_rr_deals_prbs_equally_and_contiguously():
    rr = RoundRobin()
    n_ue, n_prb = 7, 10
    count = np.zeros(n_ue, int)
    has_data = np.ones((1, n_ue), bool)
    for slot in range(50):
        a = rr.act(_obs(slot, np.ones((1, n_ue, n_prb)), np.zeros((1, n_ue)), has_data))[0]
        # each UE's PRBs are one contiguous block
        for u in np.unique(a):
            idx = np.flatnonzero(a == u)
            assert idx[-1] - idx[0] + 1 == idx.size
        count += np.bincount(a, minlength=n_ue)
        assert count.max() - count.min() <= 1  # dealing cards: never more than one apart
    assert count.sum() == 50 * n_prb


def test_rr_more_ues_than_prbs_cycles_through_all():
    rr = RoundRobin()
    n_ue, n_prb = 8, 3
    served = []
    has_data = np.ones((1, n_ue), bool)
    for slot in range(8):
        a = rr.act(_obs(slot, np.ones((1, n_ue, n_prb)), np.zeros((1, n_ue)), has_data))[0]
        served.extend(a.tolist())
    assert served == [u % n_ue for u in range(24)]


def test_rr_skips_ues_without_data_and_keeps_the_cyclic_order():
    pointer = np.array([3])
    eligible = np.array([[True, False, True, False, True]])
    alloc, nxt = round_robin(eligible, pointer, 2)
    np.testing.assert_array_equal(alloc, [[4, 0]])  # from UE 3 on: 4, then wrap to 0
    np.testing.assert_array_equal(nxt, [2])
    alloc, nxt = round_robin(np.zeros((1, 5), bool), nxt, 2)
    np.testing.assert_array_equal(alloc, [[-1, -1]])
    np.testing.assert_array_equal(nxt, [2])


def test_rr_reset_clears_pointer():
    rr = RoundRobin()
    obs = _obs(0, np.ones((1, 5, 2)), np.zeros((1, 5)))
    first = rr.act(obs)
    assert not np.array_equal(rr.act(obs), first)
    rr.reset(seed=0)
    np.testing.assert_array_equal(rr.act(obs), first)


# ------------------------------------------------------------------------------------------------
# Property tests on the kernels (any leading batch dims)
# ------------------------------------------------------------------------------------------------
@st.composite
def _instance(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    n_ue = draw(st.integers(1, 6))
    n_prb = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rate = rng.exponential(1e6, (*batch, n_ue, n_prb))
    rate[rng.random(rate.shape) < 0.2] = 0.0
    if draw(st.booleans()):  # quantized: ties
        rate = np.round(rate / 1e6) * 1e6
    avg = rng.uniform(1e-3, 1e7, (*batch, n_ue))
    eligible = rng.random((*batch, n_ue)) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    pointer = rng.integers(0, n_ue, batch)
    return rate, avg, eligible, pointer


def _check_alloc(alloc, eligible, n_prb):
    assert alloc.dtype == np.int64
    assert alloc.shape == (*eligible.shape[:-1], n_prb)
    n_ue = eligible.shape[-1]
    assert ((alloc >= -1) & (alloc < n_ue)).all()
    # never to an ineligible UE
    ok = np.take_along_axis(eligible, np.maximum(alloc, 0), axis=-1)
    assert (ok | (alloc == -1)).all()
    # -1 exactly where the cell has no eligible UE
    none = ~eligible.any(axis=-1)
    assert (alloc[none] == -1).all()
    assert (alloc[~none] >= 0).all()


@settings(max_examples=150, deadline=None)
@given(_instance())
def test_kernels_give_prbs_only_to_eligible_ues(inst):
    rate, avg, eligible, pointer = inst
    n_prb = rate.shape[-1]
    _check_alloc(proportional_fair(rate, avg, eligible), eligible, n_prb)
    _check_alloc(max_rate(rate, eligible), eligible, n_prb)
    alloc, nxt = round_robin(eligible, pointer, n_prb)
    _check_alloc(alloc, eligible, n_prb)
    assert nxt.shape == pointer.shape
    assert ((nxt >= 0) & (nxt < eligible.shape[-1])).all()


def _naive_argmax(metric, eligible):
    """Loop reference: per PRB the first eligible UE with the largest metric, else -1."""
    *batch, n_ue, n_prb = metric.shape
    out = np.full((*batch, n_prb), -1, np.int64)
    for idx in np.ndindex(*batch):
        for i in range(n_prb):
            best, best_u = -np.inf, -1
            for u in range(n_ue):
                if eligible[idx][u] and metric[idx][u, i] > best:
                    best, best_u = metric[idx][u, i], u
            out[idx][i] = best_u
    return out


@settings(max_examples=150, deadline=None)
@given(_instance())
def test_pf_and_maxrate_are_argmax_of_their_metric(inst):
    rate, avg, eligible, _ = inst
    rate_copy, avg_copy = rate.copy(), avg.copy()
    np.testing.assert_array_equal(
        proportional_fair(rate, avg, eligible), _naive_argmax(rate / avg[..., None], eligible)
    )
    np.testing.assert_array_equal(max_rate(rate, eligible), _naive_argmax(rate, eligible))
    np.testing.assert_array_equal(rate, rate_copy)  # inputs untouched
    np.testing.assert_array_equal(avg, avg_copy)


@settings(max_examples=100, deadline=None)
@given(_instance())
def test_rr_counts_differ_by_at_most_one(inst):
    _, _, eligible, pointer = inst
    n_prb = 7
    alloc, _ = round_robin(eligible, pointer, n_prb)
    n_ue = eligible.shape[-1]
    for idx in np.ndindex(*eligible.shape[:-1]):
        if not eligible[idx].any():
            continue
        counts = np.bincount(alloc[idx], minlength=n_ue)[eligible[idx]]
        assert counts.max() - counts.min() <= 1
        assert counts.sum() == n_prb


def test_policies_work_on_batched_cells_and_do_not_mutate_obs():
    rng = np.random.default_rng(1)
    rate = rng.exponential(1e6, (3, 5, 8))
    has_data = rng.random((3, 5)) < 0.6
    has_data[1] = False
    obs = _obs(4, rate, rng.exponential(1e6, (3, 5)), has_data)
    snapshot = {k: np.copy(v) for k, v in obs.items()}
    for policy in (ProportionalFair(), RoundRobin(), MaxRate()):
        alloc = policy.act(obs)
        _check_alloc(alloc, has_data, 8)
        for k, v in snapshot.items():
            np.testing.assert_array_equal(obs[k], v)
