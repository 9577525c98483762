"""Power allocation: water-filling (exact vs bisection, KKT), equal power, α-fair vs Sionna SYS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.agents.baselines import (
    AlphaFair,
    EqualPower,
    WaterFilling,
    alpha_fair,
    equal_power,
    water_filling,
)


def _bisection_water_filling(noise, total, weight=None, n_iter=200):
    """Brute-force reference: bisection on the water level μ of Σ w max(μ − n, 0) = P."""
    w = np.ones_like(noise) if weight is None else weight
    finite = np.isfinite(noise) & (w > 0)
    if total == 0 or not finite.any():
        return np.zeros_like(noise)
    lo, hi = noise[finite].min(), noise[finite].max() + total / w[finite].min()
    for _ in range(n_iter):
        mu = 0.5 * (lo + hi)
        used = np.where(finite, w * np.maximum(mu - noise, 0.0), 0.0).sum()
        lo, hi = (mu, hi) if used < total else (lo, mu)
    return np.where(finite, np.maximum(0.5 * (lo + hi) - noise, 0.0), 0.0)


@st.composite
def _levels(draw):
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    noise = 10 ** rng.uniform(-3, 2, n)
    if draw(st.booleans()):
        noise[rng.random(n) < 0.3] = np.inf
    if draw(st.booleans()):  # ties
        noise = np.round(noise, 1) + 0.1
    total = draw(st.sampled_from([0.0, 1e-3, 1.0, 40.0, 1e3]))
    return noise, total


@settings(max_examples=200, deadline=None)
@given(_levels())
def test_water_filling_matches_bisection_and_kkt(inst):
    noise, total = inst
    p = water_filling(noise, total)
    ref = _bisection_water_filling(noise, total)
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=1e-12 * max(total, 1.0))
    assert (p >= 0).all()
    assert (p[np.isinf(noise)] == 0).all()
    if total > 0 and np.isfinite(noise).any():
        # p = μ − n cancels: absolute error ~ eps · levels
        atol = 1e-14 * noise.size * noise[np.isfinite(noise)].max()
        np.testing.assert_allclose(p.sum(), total, rtol=1e-12, atol=atol)
        # KKT: active channels share one water level μ; inactive ones lie at or above it
        active = p > 0
        mu = (noise + p)[active]
        np.testing.assert_allclose(mu, mu[0], rtol=1e-12)
        assert (noise[~active] >= mu[0] * (1 - 1e-12)).all()
    else:
        assert (p == 0).all()


@settings(max_examples=100, deadline=None)
@given(_levels(), st.integers(0, 2**32 - 1))
def test_weighted_water_filling_matches_bisection(inst, seed):
    noise, total = inst
    weight = np.random.default_rng(seed).integers(0, 6, noise.shape).astype(float)
    p = water_filling(noise, total, weight=weight)
    ref = _bisection_water_filling(noise, total, weight)
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=1e-12 * max(total, 1.0))
    assert (p[weight == 0] == 0).all()
    if total > 0 and (np.isfinite(noise) & (weight > 0)).any():
        atol = 1e-14 * noise.size * weight.max() * noise[np.isfinite(noise)].max()
        np.testing.assert_allclose((weight * p).sum(), total, rtol=1e-12, atol=atol)


def test_water_filling_batched_and_textbook_example():
    # three channels n = (1, 2, 4), P = 4: μ = 3.5, p = (2.5, 1.5, 0)
    np.testing.assert_allclose(water_filling([1.0, 2.0, 4.0], 4.0), [2.5, 1.5, 0.0])
    rng = np.random.default_rng(0)
    noise = rng.uniform(0.1, 3, (2, 3, 7))
    total = rng.uniform(1, 10, (2, 3))
    p = water_filling(noise, total)
    assert p.shape == noise.shape
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(p[idx], water_filling(noise[idx], total[idx]), rtol=1e-14)
    np.testing.assert_allclose(p.sum(-1), total, rtol=1e-12)
    assert (water_filling(np.full(4, np.inf), 5.0) == 0).all()


def test_equal_power_splits_over_used_prbs():
    alloc = np.array([[0, -1, 2, 2], [-1, -1, -1, -1]])
    p = equal_power(alloc, np.array([30.0, 10.0]))
    np.testing.assert_allclose(p, [[10.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]])


# ------------------------------------------------------------------------------------------------
# α-fair: Sionna SYS agreement and properties
# ------------------------------------------------------------------------------------------------
def _fair_instance(seed, batch=(3,), n_ue=6):
    rng = np.random.default_rng(seed)
    q = 10 ** rng.uniform(2, 6, (*batch, n_ue))  # SINR per watt (1/W)
    r = rng.integers(0, 8, (*batch, n_ue)).astype(float)
    r[..., 0] = np.maximum(r[..., 0], 1)
    p = rng.uniform(5.0, 40.0, batch)
    return q, r, p


@pytest.mark.parametrize(
    ("fairness", "rho"), [(0.0, 0.0), (0.0, 0.5), (1.0, 0.0), (1.0, 0.5), (2.0, 0.3), (0.5, 1.0)]
)
def test_alpha_fair_matches_sionna(fairness, rho):
    torch = pytest.importorskip("torch")
    sys_mod = pytest.importorskip("sionna.sys")
    q, r, p = _fair_instance(int(10 * fairness + 100 * rho))
    ours = alpha_fair(q, r, p, fairness=fairness, guaranteed_power_ratio=rho)
    # Sionna's inputs: pathloss = 1/q with interference+noise = 1 W gives its cq = q.
    # Its nested bisections stop on absolute tolerances (eps_x = 1e-5, eps_y = 1e-4 by default);
    # with eps = 0 and 60 halvings both brackets (p ≤ 40 W, μ^-1 ≲ 1e3·2^k) shrink below
    # 1e-13 relative, so the two exact solutions agree to ~1e-11 of the budget.
    ref, _ = sys_mod.downlink_fair_power_control(
        torch.from_numpy(1.0 / q),
        1.0,
        torch.from_numpy(r),
        bs_max_power_dbm=torch.from_numpy(10.0 * np.log10(p * 1e3)),
        guaranteed_power_ratio=rho,
        fairness=fairness,
        precision="double",
        eps_x=0.0,
        eps_y=0.0,
        max_n_iter=60,
    )
    np.testing.assert_allclose(ours, ref.numpy(), rtol=0, atol=1e-9 * p.max())
    # Sionna's default tolerances stop within 1e-4 W of the budget: we agree to that, too.
    ref_default, _ = sys_mod.downlink_fair_power_control(
        torch.from_numpy(1.0 / q),
        1.0,
        torch.from_numpy(r),
        bs_max_power_dbm=torch.from_numpy(10.0 * np.log10(p * 1e3)),
        guaranteed_power_ratio=rho,
        fairness=fairness,
        precision="double",
    )
    np.testing.assert_allclose(ours, ref_default.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("fairness", [0.0, 0.5, 1.0, 3.0])
def test_alpha_fair_budget_floor_and_kkt(fairness):
    q, r, p = _fair_instance(5, batch=(4,), n_ue=8)
    rho = 0.4
    tot = alpha_fair(q, r, p, fairness=fairness, guaranteed_power_ratio=rho)
    np.testing.assert_allclose(tot.sum(-1), p, rtol=1e-10)
    assert (tot.sum(-1) <= p).all() or np.allclose(tot.sum(-1), p, rtol=1e-15)
    assert (tot[r == 0] == 0).all()
    n_sched = (r > 0).sum(-1, keepdims=True)
    floor = rho * p[:, None] / n_sched
    assert (tot[r > 0] >= (np.broadcast_to(floor, r.shape)[r > 0]) * (1 - 1e-12)).all()
    # KKT on UEs strictly above their floor: [r log(1+pq)]^f (1+pq) / q is one constant per cell
    per_re = np.where(r > 0, tot / np.maximum(r, 1), 0.0)
    x = np.log1p(per_re * q)
    lhs = (r * x) ** fairness * np.exp(x) / q
    for c in range(4):
        free = (r[c] > 0) & (tot[c] > floor[c, 0] * (1 + 1e-9))
        if free.sum() > 1:
            np.testing.assert_allclose(lhs[c, free], lhs[c, free][0], rtol=1e-8)


def test_alpha_fair_zero_fairness_beats_equal_power_in_sum_rate():
    q, r, p = _fair_instance(11, batch=(20,), n_ue=6)
    tot = alpha_fair(q, r, p, fairness=0.0, guaranteed_power_ratio=0.0)
    equal = np.where(r > 0, r * (p / r.sum(-1))[:, None], 0.0)

    def sum_rate(t):
        return (r * np.log1p(np.where(r > 0, t / np.maximum(r, 1), 0.0) * q)).sum(-1)

    assert (sum_rate(tot) >= sum_rate(equal) - 1e-9).all()


def test_alpha_fair_larger_fairness_gives_more_equal_rates():
    q, r, p = _fair_instance(12, batch=(30,), n_ue=6)
    r = np.maximum(r, 1)

    def rates(f):
        t = alpha_fair(q, r, p, fairness=f, guaranteed_power_ratio=0.0)
        return r * np.log1p(t / r * q)

    def jain(x):
        return x.sum(-1) ** 2 / (x.shape[-1] * (x**2).sum(-1))

    prev_jain, prev_min = None, None
    for f in (0.0, 0.5, 1.0, 2.0, 5.0):
        x = rates(f)
        if prev_jain is not None:
            assert (jain(x) >= prev_jain - 1e-9).all()
            assert (x.min(-1) >= prev_min * (1 - 1e-9)).all()
        prev_jain, prev_min = jain(x), x.min(-1)


def test_alpha_fair_edge_cases():
    # nobody scheduled: zero; zero-gain UE keeps only its floor; one UE gets everything
    np.testing.assert_array_equal(alpha_fair([1e3, 1e4], [0, 0], 10.0, fairness=1.0), [0, 0])
    tot = alpha_fair([0.0, 1e4], [2, 3], 10.0, fairness=1.0, guaranteed_power_ratio=0.5)
    np.testing.assert_allclose(tot, [2.5, 7.5], rtol=1e-12)
    np.testing.assert_allclose(alpha_fair([1e4], [5], 10.0, fairness=2.0), [10.0], rtol=1e-12)
    with pytest.raises(ValueError, match="fairness"):
        alpha_fair([1.0], [1], 1.0, fairness=-1.0)


# ------------------------------------------------------------------------------------------------
# Policies on the power observation
# ------------------------------------------------------------------------------------------------
def _power_obs(seed=0, n_cell=2, n_ue=5, n_prb=9):
    rng = np.random.default_rng(seed)
    alloc = rng.integers(-1, n_ue, (n_cell, n_prb))
    if n_cell > 1:
        alloc[-1] = -1  # a cell without used PRBs
    return {
        "slot": 3,
        "alloc": alloc,
        "gain_over_noise_per_w": 10 ** rng.uniform(1, 5, (n_cell, n_ue, n_prb)),
        "max_power_w": rng.uniform(10, 40, n_cell),
    }


@pytest.mark.parametrize("policy", [EqualPower(), WaterFilling(), AlphaFair(), AlphaFair(0.0, 0.0)])
def test_power_policies_respect_budget_and_unused_prbs(policy):
    obs = _power_obs()
    p = policy.act(obs)
    assert p.shape == obs["alloc"].shape
    assert p.dtype == np.float64
    assert (p >= 0).all()
    assert (p[obs["alloc"] < 0] == 0).all()
    np.testing.assert_allclose(p[0].sum(), obs["max_power_w"][0], rtol=1e-12)
    assert (p[1] == 0).all()


def test_water_filling_policy_is_water_filling_over_used_prbs():
    obs = _power_obs(1, n_cell=1)
    p = WaterFilling().act(obs)[0]
    alloc = obs["alloc"][0]
    used = np.flatnonzero(alloc >= 0)
    g = obs["gain_over_noise_per_w"][0, alloc[used], used]
    np.testing.assert_allclose(p[used], water_filling(1 / g, obs["max_power_w"][0]), rtol=1e-14)


def test_alpha_fair_policy_spreads_ue_power_equally():
    obs = _power_obs(2, n_cell=1)
    p = AlphaFair(fairness=1.0).act(obs)[0]
    alloc = obs["alloc"][0]
    for u in np.unique(alloc[alloc >= 0]):
        np.testing.assert_allclose(p[alloc == u], p[alloc == u][0], rtol=1e-15)
