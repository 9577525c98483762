"""The shared observation and action parametrization (envs/observation.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetwin.agents.baselines import equal_power
from edgetwin.envs.observation import (
    UE_KEYS,
    ObservationBuilder,
    observation_space,
    power_action_to_watts,
    prb_action_to_alloc,
)

N_UE, N_PRB = 3, 8


def _cell_obs(n_tx, n_nack, *, n_ue=N_UE, n_prb=N_PRB, has_data=None, alloc=None, seed=0):
    """A synthetic one-cell decision observation (arrays [1, n_ue] / [1, n_ue, n_prb])."""
    rng = np.random.default_rng(seed)
    obs = {
        "slot": 0,
        "rate_bps": rng.uniform(1e5, 1e6, (1, n_ue, n_prb)),
        "last_rate_bps": rng.uniform(0, 1e7, (1, n_ue)),
        "avg_rate_bps": rng.uniform(1e5, 1e7, (1, n_ue)),
        "buffer_bits": np.full((1, n_ue), 1e15),
        "has_data": np.ones((1, n_ue), bool) if has_data is None else np.asarray([has_data]),
        "ue_mask": np.ones((1, n_ue), bool),
        "sinr_db": rng.normal(10.0, 8.0, (1, n_ue, n_prb)),
        "olla_offset_db": rng.uniform(-2, 2, (1, n_ue)),
        "mcs": rng.integers(0, 28, (1, n_ue)).astype(float),
        "n_tx": np.asarray([n_tx], dtype=float),
        "n_nack": np.asarray([n_nack], dtype=float),
        "max_power_w": np.array([39.8]),
    }
    if alloc is not None:
        obs["alloc"] = np.asarray([alloc], dtype=np.int64)
    return obs


def test_harq_feedback_ack_nack_and_persistence():
    b = ObservationBuilder(N_UE, N_PRB)
    fb = b(_cell_obs([0, 0, 0], [0, 0, 0]))["harq_feedback"]
    np.testing.assert_array_equal(fb, [0, 0, 0])  # nothing transmitted yet
    fb = b(_cell_obs([1, 1, 0], [0, 1, 0]))["harq_feedback"]
    np.testing.assert_array_equal(fb, [1, -1, 0])  # UE 0 ACKed, UE 1 NACKed
    fb = b(_cell_obs([1, 1, 0], [0, 1, 0]))["harq_feedback"]
    np.testing.assert_array_equal(fb, [1, -1, 0])  # no transmission: feedback persists
    fb = b(_cell_obs([2, 1, 1], [1, 1, 0]))["harq_feedback"]
    np.testing.assert_array_equal(fb, [-1, -1, 1])  # UE 0 NACKed now, UE 2 ACKed
    b.reset()
    fb = b(_cell_obs([0, 0, 0], [0, 0, 0]))["harq_feedback"]
    np.testing.assert_array_equal(fb, [0, 0, 0])  # a new episode forgets the history


def test_harq_feedback_in_a_real_episode():
    from edgetwin.envs.prb_power import PrbPowerEnv

    env = PrbPowerEnv(control="prb", overrides={"duration_s": 0.005})
    obs, _ = env.reset(seed=0)
    assert (obs["harq_feedback"] == 0).all()
    seen = set()
    truncated = False
    while not truncated:
        obs, _, _, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
        seen |= set(np.unique(obs["harq_feedback"]).tolist())
    assert seen <= {-1.0, 0.0, 1.0}
    assert 1.0 in seen


def test_padding_rows_are_zero_with_ue_mask_zero():
    max_ue = 5
    obs = ObservationBuilder(max_ue, N_PRB)(_cell_obs([1, 0, 2], [0, 0, 1], alloc=[0, 1] * 4))
    space = observation_space(max_ue, N_PRB)
    assert space.contains(obs)
    assert set(obs) == {"sinr_db", *UE_KEYS}
    for key, v in obs.items():
        assert v.dtype == np.float32
        assert v.shape[0] == max_ue
        assert (v[N_UE:] == 0).all(), key
    np.testing.assert_array_equal(obs["ue_mask"], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(obs["prb_count"], [4, 4, 0, 0, 0])


def test_builder_rejects_too_many_ues():
    with pytest.raises(ValueError, match="max_ue"):
        ObservationBuilder(2, N_PRB)(_cell_obs([0, 0, 0], [0, 0, 0]))


@st.composite
def _alloc_and_action(draw):
    n_ue = draw(st.integers(1, 8))
    n_prb = draw(st.integers(1, 30))
    alloc = np.array(draw(st.lists(st.integers(-1, n_ue - 1), min_size=n_prb, max_size=n_prb)))
    action = np.array(
        draw(st.lists(st.floats(-1.5, 1.5), min_size=n_ue, max_size=n_ue)), dtype=np.float32
    )
    return n_ue, n_prb, alloc, action


@settings(max_examples=150, deadline=None)
@given(_alloc_and_action())
def test_power_action_spends_the_budget_on_used_prbs(case):
    n_ue, n_prb, alloc, action = case
    obs = _cell_obs(np.zeros(n_ue), np.zeros(n_ue), n_ue=n_ue, n_prb=n_prb, alloc=alloc)
    watts = power_action_to_watts(action, obs)
    p_max = float(obs["max_power_w"][0])
    used = alloc >= 0
    assert watts.shape == (n_prb,)
    assert (watts[~used] == 0).all()
    assert (watts >= 0).all()
    if used.any():
        assert watts.sum() == pytest.approx(p_max, rel=1e-9)
        for u in np.unique(alloc[used]):  # one power per PRB within each UE
            assert np.ptp(watts[alloc == u]) <= 1e-12 * p_max
    # All-zero actions are exactly the equal-power baseline.
    np.testing.assert_array_equal(
        power_action_to_watts(np.zeros(n_ue), obs),
        equal_power(obs["alloc"], obs["max_power_w"])[0],
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.booleans(), min_size=1, max_size=10),
    st.integers(1, 60),
    st.floats(-1.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_equal_prb_actions_give_near_equal_counts(has_data, n_prb, value, seed):
    n_ue = len(has_data)
    obs = _cell_obs(np.zeros(n_ue), np.zeros(n_ue), n_ue=n_ue, n_prb=n_prb, has_data=has_data)
    max_ue = n_ue + 2  # padding actions are ignored
    action = np.full(max_ue, value, dtype=np.float32)
    alloc = prb_action_to_alloc(action, obs)
    data = np.asarray(has_data)
    if not data.any():
        assert (alloc == -1).all()
        return
    counts = np.bincount(alloc, minlength=n_ue)
    assert (alloc >= 0).all()
    assert (counts[~data] == 0).all()
    assert counts[data].max() - counts[data].min() <= 1
