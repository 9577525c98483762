"""LoRA adapters in the server: tiers, serialized loads, waiting requests, batch cost."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import simpy

from edgetwin.scenarios.serve import MODEL_DIMS
from edgetwin.sim.compute.adapter_pool import LoraServingConfig, lora_iteration_s
from edgetwin.sim.compute.adapters import AdapterSpec
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.workload.request import Request

DIMS = MODEL_DIMS["qwen2.5-7b"]
SPEC = AdapterSpec(rank=16, targets=("q", "k", "v", "o"))
ADAPTER_BYTES = 20_185_088  # 10,092,544 parameters in bf16 (tests/sim/compute/test_adapters.py)
PEAK, BW = 100e12, 1e12


def _server(env, lora: LoraServingConfig, n_blocks=20_000, a_s=0.01):
    cost = functools.partial(
        lora_iteration_s, spec=lora.adapter, dims=DIMS, peak_flops=PEAK,
        mem_bandwidth_bytes_per_s=BW,
    )  # fmt: skip
    server = LLMServer(
        env,
        ServerConfig(n_blocks=n_blocks, lora=lora),
        LinearCostModel(a_s=a_s),
        dims=DIMS,
        lora_cost=cost,
    )
    server.start()
    return server


def _submit_at(env, server, t, req):
    def go():
        yield env.timeout(t)
        server.submit(req)

    env.process(go())


def test_a_request_waits_exactly_for_its_adapters_disk_load() -> None:
    # t_load = read(bytes) + bytes / host link + overhead (the module docstring); the request's
    # first iteration starts when its adapter is in.
    cfg = LoraServingConfig(
        n_adapters=4, adapter=SPEC, max_loras=2, disk_read_bytes_per_s=1e9,
        host_link_bytes_per_s=20e9, load_overhead_s=0.002,
    )  # fmt: skip
    env = simpy.Environment()
    server = _server(env, cfg)
    req = Request(0, 0.0, 100, 3, adapter=2)
    server.submit(req)
    env.run(until=5.0)
    t_load = ADAPTER_BYTES / 1e9 + ADAPTER_BYTES / 20e9 + 0.002
    assert server.adapters is not None
    assert server.adapters.n_bytes == ADAPTER_BYTES
    assert req.first_scheduled_s == pytest.approx(t_load)
    assert req.completion_s > req.first_scheduled_s
    assert server.adapters.summary()["lora_disk_loads"] == 1


def test_loads_are_serialized_and_a_host_hit_skips_the_disk() -> None:
    cfg = LoraServingConfig(
        n_adapters=4, adapter=SPEC, max_loras=1, max_cpu_loras=2, disk_read_bytes_per_s=1e9,
        host_link_bytes_per_s=20e9,
    )  # fmt: skip
    disk = ADAPTER_BYTES / 1e9 + ADAPTER_BYTES / 20e9
    copy = ADAPTER_BYTES / 20e9
    env = simpy.Environment()
    server = _server(env, cfg)
    a, b = Request(0, 0.0, 10, 1, adapter=0), Request(1, 0.0, 10, 1, adapter=1)
    server.submit(a)
    server.submit(b)
    env.run(until=1.0)
    # one slot: b's load starts after a's load, and after a's request released adapter 0
    assert a.first_scheduled_s == pytest.approx(disk)
    assert b.first_scheduled_s >= 2 * disk
    # adapter 0 now sits in host memory: loading it again costs the copy only
    c = Request(2, 1.0, 10, 1, adapter=0)
    server.submit(c)  # now = 1.0 s
    env.run(until=2.0)
    assert c.first_scheduled_s == pytest.approx(1.0 + copy)
    s = server.adapters.summary()
    assert (s["lora_loads"], s["lora_disk_loads"]) == (3, 2)


def test_the_server_never_holds_more_adapters_than_its_slots_and_every_request_finishes() -> None:
    rng = np.random.default_rng(0)
    cfg = LoraServingConfig(n_adapters=20, adapter=SPEC, max_loras=3, max_cpu_loras=5)
    env = simpy.Environment()
    server = _server(env, cfg)
    assert server.adapters is not None
    seen: list[int] = []
    orig = server.adapters.on_loaded

    def check(a: int) -> None:
        seen.append(len(server.adapters.gpu))
        assert orig is not None
        orig(a)

    server.adapters.on_loaded = check
    reqs = []
    # Zipf-popular adapters, Poisson arrivals
    p = 1.0 / np.arange(1, 21) ** 1.1
    p /= p.sum()
    t = np.cumsum(rng.exponential(0.05, 300))
    for i, (ti, a) in enumerate(zip(t, rng.choice(20, 300, p=p), strict=True)):
        r = Request(i, float(ti), int(rng.integers(10, 200)), int(rng.integers(1, 30)),
                    adapter=int(a))  # fmt: skip
        reqs.append(r)
        _submit_at(env, server, float(ti), r)
    env.run(until=1000.0)
    assert max(seen) <= 3
    assert all(r.completion_s == r.completion_s for r in reqs)  # every request finished
    assert all(r.n_generated == r.output_tokens for r in reqs)
    s = server.adapters.summary()
    assert 0 < s["lora_hit_ratio"] < 1
    assert int(server.adapters.n_hits.sum() + server.adapters.n_misses.sum()) == 300


def test_kv_pool_adapters_take_kv_blocks_while_resident() -> None:
    # S-LoRA's unified paging: a resident adapter holds ⌈bytes / block bytes⌉ KV blocks.
    cfg = LoraServingConfig(n_adapters=4, adapter=SPEC, max_loras=2, memory="kv_pool")
    env = simpy.Environment()
    server = _server(env, cfg)
    block_bytes = 16 * DIMS.kv_bytes_per_token()
    want = int(np.ceil(ADAPTER_BYTES / block_bytes))
    r = Request(0, 0.0, 16, 1, adapter=1)
    server.submit(r)
    env.run(until=1.0)
    assert r.completion_s == r.completion_s
    assert server.kv.n_used == want  # the request's blocks are freed; the adapter's stay


def test_a_batch_over_many_adapters_costs_more_than_over_one() -> None:
    # Punica SGMV roofline: per target and layer max(2 n r (d_in + d_out) / F,
    # bytes(m adapters + activations) / B) — by hand for q on a small model below.
    from edgetwin.sim.compute.cost_model import TransformerDims

    tiny = TransformerDims(hidden=64, layers=2, heads=4, kv_heads=4, head_dim=16,
                           intermediate=128, vocab=100)  # fmt: skip
    spec = AdapterSpec(rank=8, targets=("q",))
    # d_in = d_out = 64: flops = 2·10·8·128 = 20480; bytes = 2·(m·8·128 + 10·(128 + 16))
    # memory bound at 1e8 byte/s: the adapters' weights are what a wider batch pays for
    t1 = lora_iteration_s(10, 1, spec, tiny, peak_flops=1e9, mem_bandwidth_bytes_per_s=1e8)
    t4 = lora_iteration_s(10, 4, spec, tiny, peak_flops=1e9, mem_bandwidth_bytes_per_s=1e8)
    assert t1 == pytest.approx(2 * max(20480 / 1e9, 2 * (1 * 1024 + 1440) / 1e8))
    assert t4 == pytest.approx(2 * max(20480 / 1e9, 2 * (4 * 1024 + 1440) / 1e8))
    assert t4 > t1
    assert lora_iteration_s(0, 0, spec, tiny, peak_flops=1e9, mem_bandwidth_bytes_per_s=1e9) == 0


def test_bad_adapter_ids_and_configs_are_refused() -> None:
    env = simpy.Environment()
    server = _server(env, LoraServingConfig(n_adapters=3, adapter=SPEC, max_loras=1))
    with pytest.raises(ValueError, match=r"adapter 7 is not in the library \(ids 0..2\)"):
        server.submit(Request(0, 0.0, 10, 1, adapter=7))
    plain = LLMServer(env, ServerConfig(), LinearCostModel(a_s=0.01))
    with pytest.raises(ValueError, match="has no LoRA adapters"):
        plain.submit(Request(1, 0.0, 10, 1, adapter=0))
    with pytest.raises(ValueError, match="max_loras=5 exceeds n_adapters=3"):
        LoraServingConfig(n_adapters=3, max_loras=5)


@pytest.mark.parametrize("policy", ["cache/lru", "cache/lfu"])
def test_a_cache_policy_chooses_the_victims_through_the_server(policy) -> None:
    # The server asks the `cache` decision for a victim; with cache/lfu the most requested
    # adapter survives a burst of one-off requests that LRU would let evict it.
    from edgetwin.agents import make_policy

    cfg = LoraServingConfig(n_adapters=6, adapter=SPEC, max_loras=2)
    env = simpy.Environment()
    cost = functools.partial(
        lora_iteration_s, spec=SPEC, dims=DIMS, peak_flops=PEAK, mem_bandwidth_bytes_per_s=BW
    )
    server = LLMServer(
        env, ServerConfig(n_blocks=20_000, lora=cfg), LinearCostModel(a_s=0.01), dims=DIMS,
        lora_cost=cost, cache_policy=make_policy(policy),
    )  # fmt: skip
    server.start()
    order = [0, 0, 0, 0, 1, 2, 3, 4]  # adapter 0 is popular, then four one-off adapters
    for i, a in enumerate(order):
        _submit_at(env, server, 0.5 * i, Request(i, 0.5 * i, 10, 1, adapter=a))
    env.run(until=10.0)
    assert server.adapters is not None
    assert (0 in server.adapters.gpu) == (policy == "cache/lfu")
