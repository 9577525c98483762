from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.router import Router, RoutingPolicy
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.engine import Simulation
from edgetwin.sim.workload import WorkloadSource, make_requests, poisson_arrivals


def _run(policy: RoutingPolicy, n_rep: int = 3, n: int = 3000) -> tuple[Router, list[LLMServer]]:
    sim = Simulation(seed=4, horizon_s=1e5)
    cfg = ServerConfig(max_num_seqs=1, max_num_batched_tokens=64, n_blocks=64)
    cost = LinearCostModel(a_s=0.01)
    servers = [LLMServer(sim.env, cfg, cost, name=f"s{i}") for i in range(n_rep)]
    router = Router(servers, policy, rng=sim.streams.get("routing"))
    rng = sim.streams.get("arrivals")
    # M/G/1-like replicas: 1-token prompts, geometric outputs (mean 4): load 0.8 per replica
    out = rng.geometric(0.25, n)
    arr = poisson_arrivals(rng, 0.8 * n_rep / 0.04, n=n)
    for s in servers:
        sim.add(s)
    sim.add(router)
    sim.add(WorkloadSource(sim.env, make_requests(arr, np.ones(n, np.int64), out), router.submit))
    sim.run()
    return router, servers


def test_round_robin_is_even_and_nothing_is_lost() -> None:
    router, servers = _run("round_robin")
    assert router.n_routed.tolist() == [1000, 1000, 1000]
    assert sum(len(s.requests) for s in servers) == 3000
    assert all(r.finished for s in servers for r in s.requests)


def test_least_outstanding_beats_random() -> None:
    def mean_e2e(servers: list[LLMServer]) -> float:
        return float(np.mean([r.e2e_s for s in servers for r in s.requests]))

    _, rnd = _run("random")
    _, jsq = _run("least_outstanding")
    _, lkv = _run("least_kv")
    assert mean_e2e(jsq) < 0.7 * mean_e2e(rnd)
    assert mean_e2e(lkv) < mean_e2e(rnd)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Router([])
    sim = Simulation(seed=0, horizon_s=1.0)
    s = LLMServer(sim.env, ServerConfig(), LinearCostModel(a_s=0.01))
    with pytest.raises(ValueError, match="policy must be"):
        Router([s], "fastest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an rng"):
        Router([s], "random")
