"""Seeds run as one cell batch give the results of one-by-one runs (issue 14)."""

from __future__ import annotations

import pandas as pd
import pytest

from edgetwin.scenarios.batch_run import NotBatchableError, batchable, run_batch
from edgetwin.scenarios.load import load_scenario
from edgetwin.scenarios.run import run_once


@pytest.mark.parametrize(
    "policies",
    [{"prb": "pf", "power": "equal"}, {"prb": "rr", "power": "waterfilling"}, {"prb": "maxrate"}],
)
def test_batch_results_equal_one_by_one_runs(policies):
    config = load_scenario("nr_cell", {"duration_s": 0.05})
    seeds = [2, 9, 4]
    batched = run_batch(config, policies, seeds)
    for seed, (_plan, labels, result) in zip(seeds, batched, strict=True):
        _, labels1, alone = run_once(config, policies, seed)
        assert labels == labels1
        assert set(result.tables) == set(alone.tables)
        for name, table in alone.tables.items():
            pd.testing.assert_frame_equal(result.tables[name], table, check_exact=True)
        expected = {k: v for k, v in alone.summary.items() if k != "wall_s"}
        got = {k: v for k, v in result.summary.items() if k != "wall_s"}
        assert got == expected


def test_only_lock_step_radio_scenarios_are_batchable():
    assert batchable(load_scenario("nr_cell"))
    assert not batchable(load_scenario("bursty_cell"))  # Poisson arrivals
    assert not batchable(load_scenario("multi_cell_57"))
    assert not batchable(load_scenario("edge_cloud"))
    with pytest.raises(NotBatchableError, match="cannot run as a cell batch"):
        run_batch(load_scenario("edge_cloud"), {}, [0, 1])


def test_compare_in_batches_equals_compare_run_by_run():
    from edgetwin.scenarios.run import compare

    config = load_scenario("nr_cell", {"duration_s": 0.03})
    sets = [{"prb": "pf"}, {"prb": "rr"}]
    kw = {"seeds": [0, 1, 2], "workers": 1}
    batched = compare(config, sets, batch=True, **kw).drop(columns="wall_s")
    alone = compare(config, sets, batch=False, **kw).drop(columns="wall_s")
    pd.testing.assert_frame_equal(batched, alone, check_exact=True)
