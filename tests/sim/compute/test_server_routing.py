"""Per-request adapter routing inside the LLM server (``route`` decision point, issue 10).

Requests carry a task and a context; the server asks its router per arriving request, the
chosen adapter goes through the tiers / loads / batches, and each finished request's utility is
recorded and fed back to the router.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy

from edgetwin.agents.baselines.route import bind_router
from edgetwin.scenarios.serve import MODEL_DIMS, simulate
from edgetwin.scenarios.serving_schema import ServingScenarioConfig, validate_serving
from edgetwin.sim.compute.adapter_pool import LoraServingConfig, lora_iteration_s
from edgetwin.sim.compute.adapter_route import AdapterContexts
from edgetwin.sim.compute.adapter_utility import AdapterUtilityConfig, AdapterUtilityModel
from edgetwin.sim.compute.adapters import AdapterSpec
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.workload.request import Request

DIMS = MODEL_DIMS["qwen2.5-7b"]
N, D = 12, 4


def _raw(router: str | None, seed: int = 2, n: int = 300, **lora: Any) -> dict[str, Any]:
    return {
        "name": "routing",
        "seed": seed,
        "serving": {
            "model": "qwen2.5-7b",
            "hardware": "l40s",
            # rank 64 read at 0.5 GB/s: a ~170 ms load, worth avoiding at λ = 1/s
            "lora": {"n_adapters": N, "max_loras": 3, "adapter": {"rank": 64},
                     "disk_read_bytes_per_s": 0.5e9, **lora},
        },
        "workload": {
            "arrival": {"process": "poisson", "rate_rps": 4.0, "n_requests": n},
            "prompt_tokens": {"dist": "geometric", "mean": 150},
            "output_tokens": {"dist": "geometric", "mean": 16},
            "adapters": {"n_adapters": N, "dim": D, "zipf_s": 1.0, "router": router},
        },
    }  # fmt: skip


def _run(router: str | None, seed: int = 2, **kw: Any) -> Any:
    return simulate(ServingScenarioConfig.model_validate(_raw(router, seed, **kw)))


def _server(router: str, seed: int = 0, **lora: Any) -> tuple[simpy.Environment, LLMServer]:
    """A bare server with routing fed a Poisson stream of 250 requests."""
    cfg = LoraServingConfig(n_adapters=N, adapter=AdapterSpec(rank=16), max_loras=3, **lora)
    model = AdapterUtilityModel(
        AdapterUtilityConfig(n_adapters=N, dim=D, latency_weight_per_s=5.0), seed=seed
    )
    env = simpy.Environment()
    cost = functools.partial(
        lora_iteration_s, spec=cfg.adapter, dims=DIMS, peak_flops=1e14,
        mem_bandwidth_bytes_per_s=1e12,
    )  # fmt: skip
    policy = bind_router(router, None, latency_weight_per_s=5.0, theta=model.theta)
    server = LLMServer(
        env, ServerConfig(n_blocks=20_000, lora=cfg), LinearCostModel(a_s=0.01), dims=DIMS,
        lora_cost=cost, route_policy=policy, adapter_contexts=AdapterContexts(model),
    )  # fmt: skip
    server.start()
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.05, 250))

    def arrivals() -> Any:
        for i, ti in enumerate(t.tolist()):
            yield env.timeout(ti - env.now)
            server.submit(Request(i, ti, int(rng.integers(10, 120)), int(rng.integers(1, 20))))

    env.process(arrivals())
    return env, server


def test_every_request_is_served_by_exactly_one_adapter_and_the_router_learns_each() -> None:
    env, server = _server("route/linucb")
    env.run(until=1000.0)
    tab = server.results().tables["requests"]
    pool, routing = server.adapters, server.routing
    assert pool is not None
    assert routing is not None
    assert len(tab) == 250
    assert tab["id"].is_unique
    assert (tab["completion_s"].notna()).all()
    assert ((tab["adapter"] >= 0) & (tab["adapter"] < N)).all()
    assert routing.dp.n_decisions == 250  # asked once per request, never again on a retry
    # the adapter recorded is the one that ran: the pool counted each request once, on it
    ran = pool.n_hits + pool.n_misses
    np.testing.assert_array_equal(ran, np.bincount(tab["adapter"], minlength=N))
    # one feedback per finished request, to the adapter that served it
    policy: Any = routing.dp.policy
    np.testing.assert_array_equal(policy.n_pulls, np.bincount(tab["adapter"], minlength=N))
    assert tab["utility"].notna().all()
    # ... with the right context and utility: θ̂_a is the ridge fit of the utilities of the
    # requests a served on their contexts (the k-th arrival had the model's k-th context)
    reqs = routing.model.source().take(250)
    rows = tab.sort_values("routed_s", kind="stable")
    np.testing.assert_array_equal(rows["task"], reqs.task)
    for a in np.unique(rows["adapter"]):
        mine = (rows["adapter"] == a).to_numpy()
        x, u = reqs.x[mine], rows["utility"].to_numpy()[mine]
        np.testing.assert_allclose(u, x @ routing.model.theta[a] + reqs.noise[mine])
        theta_hat = np.linalg.solve(np.eye(D) + x.T @ x, x.T @ u)
        np.testing.assert_allclose(policy.theta_hat[a], theta_hat, atol=1e-9)
    lam = 5.0
    np.testing.assert_allclose(tab["net_utility"], tab["utility"] - lam * tab["ttft_s"])


@pytest.mark.parametrize("memory", ["slots", "kv_pool"])
def test_routed_requests_never_exceed_the_tiers(memory: str) -> None:
    env, server = _server("route/linucb", seed=3, max_cpu_loras=4, memory=memory)
    pool = server.adapters
    assert pool is not None
    seen: list[tuple[int, int, int]] = []
    orig = pool.on_loaded

    def check(a: int) -> None:
        kv_adapters = sum(server.kv.held(-1 - b) for b in range(N))
        seen.append((len(pool.gpu), len(pool.host), kv_adapters))
        assert int(pool.resident_mask.sum()) == len(pool.gpu)
        assert orig is not None
        orig(a)

    pool.on_loaded = check
    env.run(until=1000.0)
    assert len(seen) > 10  # many loads: the router spreads requests over adapters
    assert max(g for g, _h, _k in seen) <= 3
    assert max(h for _g, h, _k in seen) <= 4
    if memory == "kv_pool":  # resident adapters hold exactly their blocks, nothing more
        assert all(k == g * pool.kv_blocks for g, _h, k in seen)
    assert server.results().tables["requests"]["completion_s"].notna().all()


def test_the_oracle_router_has_zero_regret_in_the_server() -> None:
    run = _run("oracle")
    req = run.requests
    assert (req["status"] == "finished").all()
    assert (req["regret"] == 0.0).all()
    assert run.summary["regret_total"] == 0.0
    linucb = _run("linucb").summary
    assert linucb["regret_mean"] > 0.01  # the column can tell a learner from the oracle
    assert run.summary["utility_mean"] > linucb["utility_mean"]


def test_cache_aware_routes_fewer_requests_to_non_resident_adapters_than_linucb() -> None:
    for seed in (0, 1, 2):
        aware = _run("cache_aware", seed=seed).requests
        plain = _run("linucb", seed=seed).requests
        np.testing.assert_array_equal(aware["task"], plain["task"])  # matched requests
        assert (~aware["route_hit"]).sum() < (~plain["route_hit"]).sum()
        assert aware["ttft_s"].mean() < plain["ttft_s"].mean()


def test_same_seed_identical_tables_and_fixed_routing_matches_the_fixed_adapter_path() -> None:
    a, b = _run("linucb", seed=5), _run("linucb", seed=5)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    assert a.summary == b.summary
    # route/fixed through the route point serves each request on its task's adapter: the same
    # run, timestamp for timestamp, as the workload's adapter column without a router
    fixed, plain = _run("fixed", seed=5).requests, _run(None, seed=5).requests
    np.testing.assert_array_equal(fixed["adapter"], plain["adapter"])
    np.testing.assert_array_equal(fixed["task"], plain["adapter"])
    for col in ("first_scheduled_s", "first_token_s", "completion_s", "generated_tokens"):
        np.testing.assert_array_equal(fixed[col], plain[col])
    assert "utility" not in plain.columns


@pytest.mark.parametrize(
    ("router", "match"),
    [
        ("nope", r"workload\.adapters\.router.*route"),
        ("prb/pf", r"workload\.adapters\.router.*route/"),
        ("linucb:alpha=-1", r"workload\.adapters\.router.*alpha: must be >= 0"),
        ("linucb:beta=2", r"workload\.adapters\.router.*beta"),
    ],
)
def test_bad_router_one_clear_line(router: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        validate_serving(_raw(router))
    assert "\n" not in str(err.value).strip()


def test_a_router_without_a_library_or_contexts_is_refused() -> None:
    env = simpy.Environment()
    model = AdapterUtilityModel(AdapterUtilityConfig(n_adapters=N, dim=D))
    with pytest.raises(ValueError, match=r"needs config\.lora, a route_policy and adapter_"):
        LLMServer(
            env, ServerConfig(), LinearCostModel(a_s=0.01), route_policy=object(),  # type: ignore[arg-type]
            adapter_contexts=AdapterContexts(model),
        )  # fmt: skip
