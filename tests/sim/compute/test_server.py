from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.engine import Simulation
from edgetwin.sim.types import IntArray
from edgetwin.sim.workload.arrivals import poisson_arrivals
from edgetwin.sim.workload.request import Request, make_requests
from edgetwin.sim.workload.source import WorkloadSource


def _run(
    cfg: ServerConfig,
    reqs: list[Request],
    horizon_s: float,
    cost: LinearCostModel | None = None,
    seed: int = 0,
) -> tuple[Simulation, LLMServer]:
    sim = Simulation(seed=seed, horizon_s=horizon_s)
    server = LLMServer(sim.env, cfg, cost or LinearCostModel(a_s=0.01, b_s_per_token=1e-5))
    sim.add(server)
    sim.add(WorkloadSource(sim.env, reqs, server.submit))
    sim.run()
    return sim, server


class CheckingCost:
    """A linear cost that checks the server's KV/queue invariants at every iteration."""

    def __init__(self, inner: LinearCostModel) -> None:
        self.inner = inner
        self.server: LLMServer | None = None
        self.n_checks = 0

    def breakdown_s(self, pt: IntArray, pc: IntArray, dc: IntArray) -> dict[str, float]:
        return self.inner.breakdown_s(pt, pc, dc)

    def iteration_time_s(self, pt: IntArray, pc: IntArray, dc: IntArray) -> float:
        s = self.server
        assert s is not None
        kv = s.kv
        assert 0 <= kv.n_used <= kv.n_blocks
        assert kv.n_used == sum(kv.held(r.id) for r in s.running)
        assert all(r.id not in kv for r in s.waiting)
        assert len(s.running) <= s.config.max_num_seqs
        assert int(pt.sum()) + dc.size <= s.config.max_num_batched_tokens
        # after this iteration's tokens are computed, every running sequence fits its blocks
        assert all(kv.held(r.id) * kv.block_size >= r.n_computed for r in s.running)
        self.n_checks += 1
        return self.inner.iteration_time_s(pt, pc, dc)


def _random_requests(seed: int, n: int, rate: float, pmax: int, omax: int) -> list[Request]:
    rng = np.random.default_rng(seed)
    arr = poisson_arrivals(rng, rate, n=n)
    return make_requests(arr, rng.integers(1, pmax, n), rng.integers(1, omax, n))


@pytest.mark.parametrize("chunked", [False, True])
def test_conservation_and_preemption_with_tiny_kv_pool(chunked: bool) -> None:
    cfg = ServerConfig(
        max_num_seqs=8,
        max_num_batched_tokens=128,
        block_size=4,
        n_blocks=24,
        chunked_prefill=chunked,
    )
    reqs = _random_requests(1, 300, 20.0, 40, 50)
    sim = Simulation(seed=0, horizon_s=1e4)
    cost = CheckingCost(LinearCostModel(a_s=0.005, b_s_per_token=1e-4))
    server = LLMServer(sim.env, cfg, cost)
    cost.server = server
    sim.add(server)
    sim.add(WorkloadSource(sim.env, reqs, server.submit))
    sim.run()
    res = server.results()
    req = res.tables["requests"]
    assert cost.n_checks == server.n_iterations > 0
    assert res.summary["n_rejected"] == 0
    assert res.summary["n_finished"] == len(reqs)
    assert server.n_preemptions > 0
    assert (req["preemptions"] > 0).sum() > 0
    assert (req["generated_tokens"] == req["output_tokens"]).all()
    assert (res.tables["kv"]["kv_blocks_used"] <= cfg.n_blocks).all()
    assert server.kv.n_used == 0
    # timestamps are ordered
    assert (req["first_scheduled_s"] >= req["arrival_s"]).all()
    assert (req["first_token_s"] > req["first_scheduled_s"]).all()
    assert (req["completion_s"] >= req["first_token_s"]).all()


def test_none_lost_when_cut_by_the_horizon() -> None:
    cfg = ServerConfig(max_num_seqs=4, max_num_batched_tokens=64, block_size=4, n_blocks=16)
    reqs = _random_requests(2, 400, 50.0, 30, 60)
    _, server = _run(cfg, reqs, horizon_s=3.0)
    s = server.results().summary
    assert s["n_running"] > 0
    assert s["n_waiting"] > 0
    assert s["n_finished"] + s["n_running"] + s["n_waiting"] == s["n_accepted"]
    ids_run = {r.id for r in server.running}
    ids_wait = {r.id for r in server.waiting}
    ids_done = {r.id for r in server.requests if r.finished}
    assert not (ids_run & ids_wait)
    assert not (ids_done & (ids_run | ids_wait))
    assert len(ids_run | ids_wait | ids_done) == s["n_accepted"]


def test_single_request_timing_is_exact() -> None:
    a, b = 0.01, 1e-4
    cfg = ServerConfig(max_num_batched_tokens=1024)
    reqs = [Request(0, 0.5, prompt_tokens=100, output_tokens=5)]
    _, server = _run(cfg, reqs, 10.0, LinearCostModel(a_s=a, b_s_per_token=b))
    r = server.requests[0]
    assert r.queueing_s == 0.0  # an idle server starts at once
    assert r.ttft_s == pytest.approx(a + 100 * b)
    assert r.tpot_s == pytest.approx(a + b)
    assert r.e2e_s == pytest.approx(a + 100 * b + 4 * (a + b))
    assert r.n_generated == 5


def test_chunked_prefill_bounds_decode_gaps_and_delays_long_prompt() -> None:
    a, b = 0.01, 1e-5
    budget = 512
    # D decodes 3 tokens (2 gaps); the long prompt P arrives between D's 1st and 2nd token
    reqs = [Request(0, 0.0, 16, 3), Request(1, 0.011, 8000, 1)]
    cost = LinearCostModel(a_s=a, b_s_per_token=b)
    _, plain = _run(ServerConfig(max_num_batched_tokens=8192), reqs, 10.0, cost)
    reqs = [Request(0, 0.0, 16, 3), Request(1, 0.011, 8000, 1)]
    cfg = ServerConfig(max_num_batched_tokens=budget, chunked_prefill=True)
    _, chunk = _run(cfg, reqs, 10.0, cost)
    d_plain, p_plain = plain.requests
    d_chunk, p_chunk = chunk.requests
    # without chunking one of D's gaps contains P's whole prefill
    assert d_plain.tpot_s > (a + b * 8000) / 2
    # with chunking every iteration has <= budget tokens
    assert d_chunk.tpot_s <= a + b * budget + 1e-12
    assert (chunk.kv_table()["n_batched_tokens"] <= budget).all()
    # P's prefill spans >= ceil(8000 / 512) iterations: a later first token
    assert chunk.n_iterations >= 2 + math.ceil(8000 / budget)
    span = p_chunk.first_token_s - p_chunk.first_scheduled_s
    assert span >= math.ceil(8000 / budget) * a
    assert p_chunk.ttft_s > p_plain.ttft_s
    # D's prefill (16 tok) and 1st decode end at t1; P waits, then shares one 8001-token iteration
    t1 = (a + 16 * b) + (a + b)
    assert p_plain.ttft_s == pytest.approx(t1 - 0.011 + a + 8001 * b)


def test_rejects_requests_that_can_never_run() -> None:
    cfg = ServerConfig(max_num_batched_tokens=100, block_size=4, n_blocks=50)
    reqs = [Request(0, 0.0, 150, 2), Request(1, 0.1, 10, 300), Request(2, 0.2, 10, 10)]
    _, server = _run(cfg, reqs, 10.0)
    s = server.results().summary
    assert s["n_rejected"] == 2
    assert s["n_finished"] == 1


def test_results_tables_and_slo() -> None:
    cfg = ServerConfig(max_num_seqs=16, max_num_batched_tokens=512, n_blocks=2000)
    reqs = _random_requests(3, 200, 10.0, 200, 100)
    _, server = _run(cfg, reqs, 100.0)
    res = server.results(ttft_slo_s=1e9, tpot_slo_s=1e9)
    req = res.tables["requests"]
    expected_cols = {
        "arrival_s",
        "first_scheduled_s",
        "first_token_s",
        "completion_s",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "queueing_s",
        "preemptions",
        "prompt_tokens",
        "output_tokens",
    }
    assert expected_cols <= set(req.columns)
    assert len(req) == 200
    s = res.summary
    assert s["slo_attainment"] == 1.0
    assert s["goodput_rps"] == pytest.approx(s["throughput_rps"])
    assert s["ttft_p50"] <= s["ttft_p90"] <= s["ttft_p99"]
    assert 0.0 < s["kv_usage_mean"] <= s["kv_usage_max"] <= 1.0
    assert s["throughput_tokens_per_s"] == pytest.approx(req["output_tokens"].sum() / 100.0)
    strict = server.results(ttft_slo_s=1e-9)
    assert strict.summary["slo_attainment"] == 0.0
    kv = res.tables["kv"]
    assert kv["dt_s"].sum() == pytest.approx(100.0)
    assert (kv["dt_s"] >= 0).all()


def test_server_config_is_frozen_and_strict() -> None:
    cfg = ServerConfig()
    with pytest.raises(ValidationError):
        cfg.max_num_seqs = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="max_num_seqs"):
        ServerConfig(max_num_seqs=0)
    with pytest.raises(ValidationError):
        ServerConfig(foo=1)  # type: ignore[call-arg]


def test_same_seed_same_results() -> None:
    cfg = ServerConfig(max_num_seqs=8, max_num_batched_tokens=128, block_size=4, n_blocks=40)
    tables = []
    for _ in range(2):
        _, server = _run(cfg, _random_requests(5, 100, 20.0, 50, 50), 1e3)
        tables.append(server.results().tables["requests"])
    assert tables[0].equals(tables[1])


@pytest.mark.parametrize("seed", range(12))
def test_random_small_configs_always_finish(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    chunked = bool(seed % 2)
    bs = int(rng.integers(1, 9))
    pmax, omax = int(rng.integers(2, 80)), int(rng.integers(2, 80))
    n_blocks = -(-(pmax + omax) // bs) + int(rng.integers(0, 20))
    cfg = ServerConfig(
        max_num_seqs=int(rng.integers(1, 12)),
        max_num_batched_tokens=int(rng.integers(1, 64)) if chunked else pmax + omax,
        block_size=bs,
        n_blocks=n_blocks,
        chunked_prefill=chunked,
    )
    reqs = _random_requests(seed, 150, float(rng.uniform(1, 100)), pmax, omax)
    sim = Simulation(seed=0, horizon_s=1e6)
    cost = CheckingCost(LinearCostModel(a_s=0.005, b_s_per_token=1e-4))
    server = LLMServer(sim.env, cfg, cost)
    cost.server = server
    sim.add(server)
    sim.add(WorkloadSource(sim.env, reqs, server.submit))
    sim.run()
    s = server.results().summary
    assert s["n_rejected"] == 0
    assert s["n_finished"] == len(reqs)
    assert all(r.n_generated == r.output_tokens for r in server.requests)
    assert server.kv.n_used == 0


def test_kv_deadlock_between_partial_prefills_is_broken_by_preemption() -> None:
    # white-box: two half-prefilled requests hold the whole pool and no one decodes
    sim = Simulation(seed=0, horizon_s=10.0)
    cfg = ServerConfig(max_num_batched_tokens=4, block_size=1, n_blocks=10, chunked_prefill=True)
    server = LLMServer(sim.env, cfg, LinearCostModel(a_s=0.01))
    a, b = Request(0, 0.0, 8, 2), Request(1, 0.0, 8, 2)
    for r in (a, b):
        r.first_scheduled_s = 0.0
        r.n_computed = 5
        server.kv.allocate(r.id, 5)
        server.running.append(r)
        server.requests.append(r)
    sim.add(server)
    sim.run()
    assert a.finished
    assert b.finished
    assert a.preemptions == 0
    assert b.preemptions == 1
    assert server.kv.n_used == 0


def test_level_row_modes_agree_on_the_summary_and_bin_the_rows() -> None:
    reqs = _random_requests(3, 300, 20.0, 400, 100)
    out = {}
    for rows in ("change", "binned", "none"):
        cfg = ServerConfig(
            max_num_seqs=16, max_num_batched_tokens=512, n_blocks=300, level_rows=rows
        )
        _, server = _run(
            cfg, [Request(r.id, r.arrival_s, r.prompt_tokens, r.output_tokens) for r in reqs], 30.0
        )
        out[rows] = server.results()
    change = out["change"].tables["kv"]
    # the exact time average over the per-iteration rows (Law & Kelton §1.4.5)
    w = change["dt_s"].to_numpy()
    expect = float(np.dot(w, change["kv_usage"]) / w.sum())
    for rows, res in out.items():
        assert res.summary["kv_usage_mean"] == pytest.approx(expect, rel=1e-12), rows
        assert res.summary["kv_usage_max"] == change["kv_usage"].max(), rows
        assert res.tables["requests"].equals(out["change"].tables["requests"]), rows
    binned = out["binned"].tables["kv"]
    assert len(binned) == 30  # one row per simulated second, whatever the iteration count
    assert len(change) > 10 * len(binned)
    assert binned["dt_s"].sum() == pytest.approx(30.0)
    assert (binned["kv_blocks_used_max"] <= 300).all()
    assert float(np.dot(binned["dt_s"], binned["kv_usage"])) == pytest.approx(expect * 30.0)
    assert out["none"].tables["kv"].empty
