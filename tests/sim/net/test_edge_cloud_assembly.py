"""Sessions → offloader → device / edge / cloud over links: conservation, CRN, determinism."""

from __future__ import annotations

import pandas as pd
import simpy

from edgetwin.agents import make_policy
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.device import Device, DeviceConfig
from edgetwin.sim.compute.offload import Offloader, Tier
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.net import IdealLink, LinkConfig, WiredLink
from edgetwin.sim.net.journey import Journeys
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.sessions import ChatSessionConfig, ChatSessions


def _run(policy: str, seed: int) -> tuple[pd.DataFrame, list[tuple]]:
    env = simpy.Environment()
    streams = RandomStreams(seed)
    device = Device(
        env,
        "phones",
        DeviceConfig(memory_bytes=4e9, weights_bytes=1e9, kv_bytes_per_token=1e4,
                     active_power_w=4.0),
        LinearCostModel(a_s=0.02, b_s_per_token=1e-4),
    )  # fmt: skip
    device.start()
    tiers = {}
    for name, latency in (("edge", 0.005), ("cloud", 0.040)):
        server = LLMServer(
            env, ServerConfig(n_blocks=8000), LinearCostModel(0.003, 2e-5), name=name
        )
        cfg = LinkConfig(
            latency_s=latency, bandwidth_bps=5e7, jitter={"kind": "uniform", "scale_s": 0.002}
        )
        up = WiredLink(env, f"{name}_up", cfg, streams.get(f"link.{name}_up"))
        down = WiredLink(env, f"{name}_down", cfg, streams.get(f"link.{name}_down"))
        j = Journeys(env, name, server.submit, [IdealLink(env, "radio_up"), up], [down])
        server.on_token = j.on_token
        server.start()
        tiers[name] = Tier(j, (server,))
    off = Offloader(env, "off", device=device, edge=tiers["edge"], cloud=tiers["cloud"],
                    policy=make_policy(policy))  # fmt: skip
    chat = ChatSessions(
        env, "chat", [f"ue{i}" for i in range(8)],
        ChatSessionConfig(think_time_mean_s=3.0, session_gap_mean_s=5.0, output_tokens_mean=40),
        streams, off.submit,
    )  # fmt: skip
    chat.start()
    env.run(until=120.0)
    rows = [j.table() for j in (tiers["edge"].journeys, tiers["cloud"].journeys)]
    local = pd.DataFrame(
        {"id": [j.id for j in device.jobs], "status": [j.status for j in device.jobs]}
    )
    return pd.concat([*(r[["id", "status"]] for r in rows if len(r)), local]), chat.sent


def test_every_request_is_in_exactly_one_place_and_ends_at_most_once() -> None:
    table, sent = _run("offload/min_latency", seed=1)
    assert sorted(table["id"]) == sorted(range(len(sent)))  # each request routed exactly once
    # closed loop: at most one request per UE is still open at the horizon
    open_ = table[table["status"].isin(["in_flight", "unfinished"])]
    assert len(open_) <= 8


def test_same_seed_same_tables() -> None:
    a, sa = _run("offload/min_latency", seed=2)
    b, sb = _run("offload/min_latency", seed=2)
    assert sa == sb
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_two_policies_see_the_same_conversations() -> None:
    # common random numbers: each UE's k-th turn has the same sizes under both policies
    _, local = _run("offload/local", seed=3)
    _, edge = _run("offload/edge", seed=3)
    for ue in (f"ue{i}" for i in range(8)):
        x = [r[1:5] for r in local if r[0] == ue]
        y = [r[1:5] for r in edge if r[0] == ue]
        n = min(len(x), len(y))
        assert n > 0
        assert x[:n] == y[:n]
