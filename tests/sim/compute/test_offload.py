"""Offloading: the observation's estimates, the four policies, and routing end to end."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from edgetwin.agents import make_policy
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.device import Device, DeviceConfig
from edgetwin.sim.compute.offload import Offloader, Tier
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.net import IdealLink, LinkConfig, WiredLink
from edgetwin.sim.net.journey import Journeys
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request

# a slow device (20 ms a token) and fast servers (2 ms a token); links of 20 ms / 50 ms
SLOW_DEVICE = LinearCostModel(a_s=0.020, b_s_per_token=1e-4)
FAST_SERVER = LinearCostModel(a_s=0.002, b_s_per_token=1e-5)
DEVICE_CFG = DeviceConfig(
    memory_bytes=4e9, weights_bytes=1e9, kv_bytes_per_token=1e4, active_power_w=4.0
)


def _system(env: simpy.Environment, policy: str, wan_latency_s: float = 0.050):
    device = Device(env, "phone", DEVICE_CFG, SLOW_DEVICE)
    device.start()
    tiers = {}
    for name, latency in (("edge", 0.005), ("cloud", wan_latency_s)):
        server = LLMServer(env, ServerConfig(n_blocks=4000), FAST_SERVER, name=name)
        cfg = LinkConfig(latency_s=latency, bandwidth_bps=1e8)
        up, down = (
            WiredLink(env, f"{name}_{d}", cfg, RandomStreams(0).get(f"{name}_{d}"))
            for d in ("up", "down")
        )
        j = Journeys(env, f"{name}_j", server.submit, [IdealLink(env), up], [down])
        server.on_token = j.on_token
        server.start()
        tiers[name] = Tier(j, (server,))
    off = Offloader(
        env, "off", device=device, edge=tiers["edge"], cloud=tiers["cloud"],
        policy=make_policy(policy),
    )  # fmt: skip
    return off, device, tiers


def test_estimates_by_hand_for_an_idle_system() -> None:
    env = simpy.Environment()
    off, _, _ = _system(env, "offload/min_latency")
    req = Request(0, 0.0, 200, 10)
    obs = off.observe(req)
    assert obs["available"].tolist() == [True, True, True]
    # local: prefill 0.020 + 200e-4 = 0.040 s, then 9 steps of 0.0201 s; nothing ahead
    assert obs["est_compute_s"][0] == pytest.approx(0.040 + 9 * 0.0201)
    assert obs["est_up_s"][0] == 0.0
    # cloud: prompt 200·4 + 600 = 1,400 bytes at 100 Mbit/s = 0.112 ms + 50 ms up;
    # one token chunk 64 bytes = 0.00512 ms + 50 ms down
    assert obs["est_up_s"][2] == pytest.approx(0.050112)
    assert obs["est_down_s"][2] == pytest.approx(0.05000512)
    assert obs["est_queue_s"][2] == 0.0


def test_min_latency_picks_the_edge_for_a_long_answer_and_local_on_a_slow_wan() -> None:
    env = simpy.Environment()
    off, _, _ = _system(env, "offload/min_latency")
    obs = off.observe(Request(0, 0.0, 200, 100))
    assert make_policy("offload/min_latency").act(obs) == 1  # 5 ms links beat a slow device
    # a one-token answer on a 10-second WAN, no edge: the device wins
    env2 = simpy.Environment()
    off2, _, _ = _system(env2, "offload/min_latency", wan_latency_s=10.0)
    off2.remote["edge"] = None
    assert make_policy("offload/min_latency").act(off2.observe(Request(0, 0.0, 20, 1))) == 0


@pytest.mark.parametrize(("policy", "tier"), [("offload/local", "local"), ("offload/edge", "edge"),
                                               ("offload/cloud", "cloud")])  # fmt: skip
def test_fixed_policies_send_everything_to_their_tier(policy: str, tier: str) -> None:
    env = simpy.Environment()
    off, device, tiers = _system(env, policy)
    rng = np.random.default_rng(0)

    def source() -> simpy.events.ProcessGenerator:
        for i in range(30):
            yield env.timeout(float(rng.exponential(0.5)))
            off.submit(Request(i, env.now, int(rng.integers(10, 300)), int(rng.integers(1, 30))))

    env.process(source())
    env.run()
    res = off.results()
    assert res.summary[f"offload_share_{tier}"] == 1.0
    if tier == "local":
        assert all(j.status == "finished" for j in device.jobs)
        assert len(device.jobs) == 30
    else:
        df = tiers[tier].journeys.table()
        assert len(df) == 30
        assert (df["status"] == "finished").all()


def test_min_latency_beats_every_fixed_tier_on_mean_latency() -> None:
    # same arrivals for every policy (common random numbers); mean E2E measured at the UE
    def mean_e2e(policy: str) -> float:
        env = simpy.Environment()
        off, device, tiers = _system(env, policy)
        rng = np.random.default_rng(7)

        def source() -> simpy.events.ProcessGenerator:
            for i in range(60):
                yield env.timeout(float(rng.exponential(0.3)))
                off.submit(
                    Request(i, env.now, int(rng.integers(10, 400)), int(rng.integers(1, 40)))
                )

        env.process(source())
        env.run()
        e2e = [j.finish_s - j.arrival_s for j in device.jobs]
        for t in tiers.values():
            df = t.journeys.table()
            if len(df):
                e2e += df["e2e_ue_s"].tolist()
        assert len(e2e) == 60
        return float(np.mean(e2e))

    best = mean_e2e("offload/min_latency")
    for fixed in ("offload/local", "offload/edge", "offload/cloud"):
        assert best <= mean_e2e(fixed) + 1e-9


def test_an_unavailable_tier_is_a_clear_error() -> None:
    env = simpy.Environment()
    off, _, _ = _system(env, "offload/edge")
    off.remote["edge"] = None
    off.submit(Request(0, 0.0, 10, 2))
    with pytest.raises(
        ValueError, match="not an available tier; allowed: 0 \\(local\\), 2 \\(cloud\\)"
    ):
        env.run()


def test_an_offloader_needs_a_tier() -> None:
    with pytest.raises(ValueError, match="at least one of device, edge, cloud"):
        Offloader(simpy.Environment(), "off")
