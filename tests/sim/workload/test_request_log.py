"""RequestLog: columns allocated once, requests made on arrival, outcomes written back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.engine import Simulation
from edgetwin.sim.workload.request import make_requests
from edgetwin.sim.workload.request_log import STATUSES, RequestLog
from edgetwin.sim.workload.source import WorkloadSource


def _arrays(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 20, n), rng.integers(1, 300, n), rng.integers(1, 80, n)


def test_rows_are_the_requests_of_make_requests() -> None:
    t, p, o = _arrays()  # unsorted arrivals: both sort stably and number in arrival order
    log = RequestLog(t, p, o, first_id=5)
    made = make_requests(t, p, o, first_id=5)
    assert len(log) == len(made) == 200
    assert list(log) == made
    assert log[3] == made[3]
    assert log[3] is not log[3]  # a fresh object each time: nothing is kept
    assert log[10:13] == made[10:13]


def _serve(log_or_list, cfg: ServerConfig, replica: int = 0) -> LLMServer:
    sim = Simulation(seed=0, horizon_s=15.0)
    log = log_or_list if isinstance(log_or_list, RequestLog) else None
    server = LLMServer(
        sim.env,
        cfg,
        LinearCostModel(a_s=0.01, b_s_per_token=1e-4),
        request_log=log,
        replica=replica,
    )
    sim.add(server)
    sim.add(WorkloadSource(sim.env, log_or_list, server.submit))
    sim.run()
    return server


def test_a_logged_server_gives_the_same_table_and_keeps_no_request() -> None:
    t, p, o = _arrays(300, 1)
    p[7] = 5000  # never fits the pool: rejected
    cfg = ServerConfig(max_num_seqs=8, max_num_batched_tokens=512, block_size=16, n_blocks=200)
    plain = _serve(make_requests(t, p, o), cfg)
    log = RequestLog(t, p, o)
    logged = _serve(log, cfg, replica=2)
    assert logged.requests == []  # outcomes live in the log only
    assert logged.rejected == []
    want = plain.request_table()
    got = logged.request_table()
    assert set(got["replica"]) == {2}
    # the log derives TTFT/TPOT/E2E/queueing exactly as the Request properties do
    pd.testing.assert_frame_equal(
        got.drop(columns=["replica", "status"]).reset_index(drop=True), want
    )
    assert plain.results().summary == logged.results().summary
    full = log.table()
    assert full.loc[full["prompt_tokens"] == 5000, "status"].tolist() == ["rejected"]
    assert set(full["status"]) <= set(STATUSES)
    n_fin = int((full["status"] == "finished").sum())
    assert n_fin == int(want["completion_s"].notna().sum())
    # the run ends at 15 s while arrivals span 20 s: some never arrived, some unfinished
    assert (full["status"] == "not_arrived").sum() == (t > 15.0).sum() > 0
    assert (full.loc[full["status"] == "not_arrived", "replica"] == -1).all()
    assert (full["status"] == "unfinished").sum() > 0


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        (([0.0, 1.0], [3, 0], [1, 1]), "request 1: prompt_tokens must be >= 1"),
        (([0.0, 1.0], [3, 3], [1, -2]), "request 1: output_tokens must be >= 1"),
        (([0.0, np.nan], [3, 3], [1, 1]), "finite"),
        (([0.0], [3, 3], [1, 1]), "equal length"),
    ],
)
def test_bad_arrays_are_refused_before_any_request_exists(arrays, words) -> None:
    with pytest.raises(ValueError, match=words):
        RequestLog(*arrays)
