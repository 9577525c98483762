"""The request's journey: ideal hops reproduce the serving-only replay; real hops add by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.net import LinkConfig, WiredLink
from edgetwin.sim.net.journey import IdealLink, JourneyConfig, Journeys
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request

COST = LinearCostModel(a_s=0.005, b_s_per_token=2e-4, d_s_per_kv_token=1e-6)
CFG = ServerConfig(max_num_seqs=16, max_num_batched_tokens=2048, n_blocks=4000)


def _trace(n: int = 200, rate: float = 8.0, seed: int = 0) -> list[tuple[float, int, int]]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, n))
    return [
        (float(a), int(p), int(o))
        for a, p, o in zip(t, rng.integers(16, 1024, n), rng.integers(1, 200, n), strict=True)
    ]


def _serving_only(trace: list[tuple[float, int, int]]) -> dict[int, Request]:
    env = simpy.Environment()
    server = LLMServer(env, CFG, COST)
    server.start()

    def source() -> simpy.events.ProcessGenerator:
        for i, (t, p, o) in enumerate(trace):
            yield env.timeout(t - env.now)
            server.submit(Request(i, t, p, o))

    env.process(source())
    env.run()
    return {r.id: r for r in server.requests}


def _journeys(trace, up_factory, down_factory, config: JourneyConfig | None = None):
    env = simpy.Environment()
    server = LLMServer(env, CFG, COST)
    j = Journeys(env, "j", server.submit, up_factory(env), down_factory(env), config)
    server.on_token = j.on_token
    server.start()

    def source() -> simpy.events.ProcessGenerator:
        for i, (t, p, o) in enumerate(trace):
            yield env.timeout(t - env.now)
            j.send(Request(i, t, p, o), ue=f"ue{i % 7}")

    env.process(source())
    env.run()
    return j


def test_ideal_hops_reproduce_the_serving_only_replay_exactly() -> None:
    # DESIGN.md / issue 9 §6: an ideal radio and zero-latency links change nothing
    trace = _trace()
    ref = _serving_only(trace)
    j = _journeys(trace, lambda e: [IdealLink(e, "radio_up"), IdealLink(e, "wan_up")],
                  lambda e: [IdealLink(e, "wan_down"), IdealLink(e, "radio_down")])  # fmt: skip
    df = j.table().set_index("id")
    assert (df["status"] == "finished").all()
    for i, r in ref.items():
        assert df.at[i, "first_token_server_s"] == r.first_token_s
        assert df.at[i, "ttft_ue_s"] == r.ttft_s  # the UE sees the server's TTFT
        assert df.at[i, "last_token_ue_s"] == r.completion_s


def test_one_request_over_wired_links_by_hand() -> None:
    # prompt 100 tokens: 100 · 4 + 600 = 1,000 bytes = 8,000 bits at 1 Mbit/s = 8 ms, + 20 ms;
    # the first token: 4 + 60 = 64 bytes = 512 bits = 0.512 ms, + 20 ms back
    trace = [(0.0, 100, 1)]
    ref = _serving_only(trace)[0]

    def link(e: simpy.Environment, name: str) -> list[WiredLink]:
        cfg = LinkConfig(latency_s=0.020, bandwidth_bps=1e6)
        return [WiredLink(e, name, cfg, RandomStreams(0).get(f"link.{name}"))]

    j = _journeys(trace, lambda e: link(e, "up"), lambda e: link(e, "down"))
    row = j.table().iloc[0]
    assert row["t_up_s"] == pytest.approx(0.028)
    assert row["t_up_up_s"] == pytest.approx(0.028)
    assert row["ttft_ue_s"] == pytest.approx(0.028 + ref.ttft_s + 0.020512)


def test_breakdown_sums_to_e2e_under_load_and_jitter() -> None:
    trace = _trace(300, rate=12.0, seed=3)

    def links(direction: str):
        def make(e: simpy.Environment) -> list[WiredLink]:
            cfg = LinkConfig(
                latency_s=0.015,
                bandwidth_bps=5e6,
                jitter={"kind": "exponential", "scale_s": 0.003},
            )
            streams = RandomStreams(1)
            return [WiredLink(e, f"{direction}{k}", cfg, streams.get(f"{direction}{k}"))
                    for k in range(2)]  # fmt: skip

        return make

    j = _journeys(trace, links("up"), links("down"), JourneyConfig(token_chunk=4))
    df = j.table()
    assert (df["status"] == "finished").all()
    parts = df[["t_up_s", "t_queue_s", "t_prefill_s", "t_decode_s", "t_down_s"]].sum(axis=1)
    np.testing.assert_allclose(parts, df["e2e_ue_s"], rtol=0, atol=1e-9)
    assert (df["received_tokens"] == df["output_tokens"]).all()  # every token arrived once
    # each hop's share: the prompt's two uplink hops make up its uplink time
    np.testing.assert_allclose(df["t_up_up0_s"] + df["t_up_up1_s"], df["t_up_s"], atol=1e-9)
    s = j.results().summary
    assert s["finished"] == len(trace)
    assert s["ttft_ue_mean_s"] > 2 * 0.015  # at least both latencies


def test_a_lost_prompt_ends_its_journey_with_a_reason() -> None:
    # a 1-byte buffer drops every prompt: nothing reaches the server, each journey says why
    def tiny(e: simpy.Environment) -> list[WiredLink]:
        cfg = LinkConfig(bandwidth_bps=1e3, buffer_bytes=1)
        return [WiredLink(e, "tiny", cfg, RandomStreams(0).get("tiny"))]

    j = _journeys(_trace(20), tiny, lambda e: [IdealLink(e)])
    df = j.table()
    assert (df["status"] == "lost uplink (buffer overflow)").all()
    assert df["first_token_ue_s"].isna().all()
    assert math.isnan(j.results().summary["ttft_ue_mean_s"])


def test_a_request_is_sent_once() -> None:
    env = simpy.Environment()
    j = Journeys(env, "j", lambda r: True, [IdealLink(env)], [IdealLink(env)])
    j.send(Request(1, 0.0, 10, 2))
    with pytest.raises(ValueError, match="sent twice"):
        j.send(Request(1, 0.0, 10, 2))
