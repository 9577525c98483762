"""Reproducibility: same seed → identical results; common random numbers across policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios.builder import build
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.run import run_scenario


def _same_summary(a, b):
    """Equal summaries (wall time excluded; NaN equals NaN), compared exactly."""
    keys = set(a) - {"wall_s"}
    assert keys == set(b) - {"wall_s"}
    for k in keys:
        x, y = a[k], b[k]
        both_nan = isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y)
        assert both_nan or x == y, (k, x, y)


@pytest.fixture(scope="module")
def small():
    return load_scenario("small_cell", {"duration_s": 0.1})


@pytest.fixture(scope="module")
def bursty():
    return load_scenario("bursty_cell", {"duration_s": 0.05, "topology.ues_per_cell": 6})


@pytest.mark.parametrize("name", ["small", "bursty"])
def test_same_seed_identical_results(name, request):
    config = request.getfixturevalue(name)
    a = run_scenario(config, seed=11)
    b = run_scenario(config, seed=11)
    _same_summary(a.summary, b.summary)
    assert a.tables.keys() == b.tables.keys()
    for key in a.tables:
        pd.testing.assert_frame_equal(a.tables[key], b.tables[key], check_exact=True)


def test_different_seeds_differ(small):
    a = run_scenario(small, seed=1).tables["ue"]
    b = run_scenario(small, seed=2).tables["ue"]
    assert not a["distance_m"].equals(b["distance_m"])


def test_policy_objects_are_reset_between_runs(small):
    from edgetwin.agents import make_policy

    pf = make_policy("prb/pf")
    a = run_scenario(small, policies={"prb": pf}, seed=4)
    b = run_scenario(small, policies={"prb": pf}, seed=4)  # same object, reused
    pd.testing.assert_frame_equal(a.tables["ue"], b.tables["ue"], check_exact=True)


def _radio(config, prb, seed):
    sim = build(config, policies={"prb": prb}, seed=seed)
    return sim.components["radio"]


def test_common_random_numbers_across_policies(bursty):
    pf, rr = _radio(bursty, "pf", 5), _radio(bursty, "rr", 5)
    other = _radio(bursty, "pf", 6)
    # Same drop of UEs.
    np.testing.assert_array_equal(pf.layout.ue_position_m, rr.layout.ue_position_m)
    assert not np.array_equal(pf.layout.ue_position_m, other.layout.ue_position_m)
    # Same channel realization, batch after batch.
    for _ in range(2):
        a, b = pf.channel.next_batch(), rr.channel.next_batch()
        assert a.first_slot == b.first_slot
        np.testing.assert_array_equal(a.gain, b.gain)
        np.testing.assert_array_equal(a.large_scale_gain, b.large_scale_gain)
    # Same packet arrivals.
    n_slot = 150
    arr_pf = [pf.traffic.arrivals(k) for k in range(n_slot)]
    arr_rr = [rr.traffic.arrivals(k) for k in range(n_slot)]
    assert sum(x is not None for x in arr_pf) > 0
    for x, y in zip(arr_pf, arr_rr, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


def test_common_random_numbers_survive_a_full_run(small):
    """After whole runs, two schedulers report the same UE positions but different service."""
    pf = run_scenario(small, policies={"prb": "pf"}, seed=3).tables["ue"]
    mr = run_scenario(small, policies={"prb": "maxrate"}, seed=3).tables["ue"]
    pd.testing.assert_series_equal(pf["distance_m"], mr["distance_m"])
    assert not pf["throughput_mbps"].equals(mr["throughput_mbps"])
