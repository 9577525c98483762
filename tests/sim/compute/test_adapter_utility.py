"""The adapter utility model: common random numbers, popularity and drift, config bounds.

References: Zipf popularity of requests (Breslau et al., INFOCOM 1999); the linear utility
r = θ_aᵀx + ε of a contextual bandit (Li et al., WWW 2010); the POLAR setting (Li & Li, arXiv
2604.16583).
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.compute.adapter_utility import (
    AdapterUtilityConfig,
    AdapterUtilityModel,
    resident_from_scores,
    zipf_pmf,
)


def test_draws_do_not_depend_on_block_sizes():
    model = AdapterUtilityModel(AdapterUtilityConfig(drift="smooth", drift_period=4), seed=5)
    src = model.source()
    a, b = src.take(3), src.take(9)
    src.reset()
    c = src.take(12)
    np.testing.assert_array_equal(np.r_[a.task, b.task], c.task)
    np.testing.assert_array_equal(np.r_[a.x, b.x], c.x)
    np.testing.assert_array_equal(np.r_[a.noise, b.noise], c.noise)
    np.testing.assert_array_equal(c.index, np.arange(12))
    other = AdapterUtilityModel(AdapterUtilityConfig(drift="smooth", drift_period=4), seed=5)
    np.testing.assert_array_equal(other.source().take(12).x, c.x)
    np.testing.assert_array_equal(other.theta, model.theta)


def test_contexts_unit_norm_and_near_own_adapter():
    cfg = AdapterUtilityConfig(n_adapters=10, dim=6, context_spread=0.0)
    model = AdapterUtilityModel(cfg, seed=0)
    req = model.source().take(500)
    np.testing.assert_allclose(np.linalg.norm(req.x, axis=1), 1.0)
    # spread 0: x is the task's centroid θ_t / ‖θ_t‖, so the own adapter's utility is ‖θ_t‖
    np.testing.assert_allclose(
        model.utility(req.task, req.x), np.linalg.norm(model.theta[req.task], axis=1)
    )
    assert model.true_utility(req.x).shape == (500, 10)


@pytest.mark.parametrize("drift", ["none", "rotate", "permute", "smooth"])
def test_task_frequencies_follow_popularity(drift):
    cfg = AdapterUtilityConfig(n_adapters=8, zipf_s=1.2, drift=drift, drift_period=20_000)
    model = AdapterUtilityModel(cfg, seed=2)
    req = model.source().take(60_000)
    for start in (0, 20_000, 40_000):
        block = req.task[start : start + 20_000]
        freq = np.bincount(block, minlength=8) / block.size
        np.testing.assert_allclose(freq, model.mean_popularity(start, start + 20_000), atol=0.012)
        np.testing.assert_allclose(model.mean_popularity(start, start + 20_000).sum(), 1.0)


def test_drift_kinds():
    cfg = AdapterUtilityConfig(n_adapters=6, drift="rotate", drift_period=10, rotate_step=2)
    model = AdapterUtilityModel(cfg, seed=0)
    # the ranking (task of each rank) shifts by rotate_step positions per period
    np.testing.assert_array_equal(model.order(1), np.roll(model.order(0), 2))
    np.testing.assert_allclose(model.popularity(10)[model.order(1)], zipf_pmf(6, 1.0))
    np.testing.assert_allclose(model.popularity(9), model.popularity(0))
    perm = AdapterUtilityModel(cfg.model_copy(update={"drift": "permute"}), seed=0)
    assert not np.allclose(perm.popularity(0), perm.popularity(10))
    np.testing.assert_allclose(np.sort(perm.popularity(10)), np.sort(zipf_pmf(6, 1.0)))
    smooth = AdapterUtilityModel(cfg.model_copy(update={"drift": "smooth"}), seed=0)
    np.testing.assert_allclose(
        smooth.popularity(5), 0.5 * perm.popularity(0) + 0.5 * perm.popularity(10)
    )


def test_net_reward_and_zipf():
    model = AdapterUtilityModel(AdapterUtilityConfig(latency_weight_per_s=2.0), seed=0)
    np.testing.assert_allclose(model.net_reward(np.array([1.0]), np.array([0.1])), [0.8])
    np.testing.assert_allclose(zipf_pmf(3, 1.0), np.array([1, 1 / 2, 1 / 3]) / (11 / 6))
    np.testing.assert_allclose(zipf_pmf(4, 0.0), 0.25)


def test_resident_from_scores():
    s = np.array([0.3, -np.inf, 0.9, 0.3, 0.1])
    np.testing.assert_array_equal(resident_from_scores(s, 2), [True, False, True, False, False])
    # a tie for the last slot goes to the lower index
    np.testing.assert_array_equal(resident_from_scores(np.array([0.3, 0.3, 0.9]), 2), [1, 0, 1])
    np.testing.assert_array_equal(resident_from_scores(np.full(4, -np.inf), 2), [False] * 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_adapters", 0), ("noise_std", -1.0), ("zipf_s", True), ("drift", "jump"), ("dim", 1.5)],
)
def test_config_bounds(field, value):
    with pytest.raises(ValidationError, match=field):
        AdapterUtilityConfig(**{field: value})
