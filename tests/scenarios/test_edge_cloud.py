"""The edge–cloud scenario: one build, requests over the radio, checks that could fail."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios import build
from edgetwin.scenarios.load import validate_scenario
from edgetwin.scenarios.serve import simulate
from edgetwin.scenarios.serving_schema import ServingScenarioConfig
from edgetwin.sim.system import BREAKDOWN

SERVING = {"model": "llama-3.1-8b", "hardware": "h100", "kv_blocks": 4000}
TRACE = {
    "arrival": {"process": "poisson", "rate_rps": 4.0, "n_requests": 40},
    "prompt_tokens": {"dist": "geometric", "mean": 300},
    "output_tokens": {"dist": "geometric", "mean": 60},
}


def _scenario(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "ec_test",
        "duration_s": 6.0,
        "seed": 3,
        "cell": {"numerology": 1, "bandwidth_hz": 20e6, "tdd": {"pattern": "DDDSU"}},
        "topology": {"kind": "hex", "n_sites": 1, "sectors_per_site": 3, "ues_per_cell": 6},
        "traffic": {"kind": "poisson", "packet_rate_hz": 20, "packet_bits": 12000},
        "nodes": {
            "device": {"model": "smollm-135m", "hardware": "cpu"},
            "edge": {**SERVING, "hardware": "l40s"},
            "cloud": SERVING,
        },
        "workload": {
            "llm_ues_per_cell": 4,
            "sessions": {
                "think_time_mean_s": 0.5,
                "session_gap_mean_s": 0.5,
                "output_tokens_mean": 30,
            },
        },
    }
    raw.update(over)
    return raw


def _run(raw: dict[str, Any], policies: dict[str, str] | None = None) -> Any:
    sim = build(validate_scenario(raw), policies)
    sim.run()
    return sim


def test_ideal_radio_and_links_reproduce_the_serving_replay_exactly() -> None:
    # DESIGN.md: the serving-only replay is the special case with every hop ideal, so each
    # request's TTFT at the UE equals its TTFT in `edgetwin serve` on the same trace.
    raw = _scenario(
        duration_s=60.0,
        nodes={"edge": SERVING},
        network={"radio": "ideal", "backhaul": None, "wan": None},
        workload={"llm_ues_per_cell": 4, "trace": TRACE},
    )
    sim = _run(raw, {"offload": "edge"})
    got = sim.results().tables["requests"].set_index("id").sort_index()
    replay = simulate(
        ServingScenarioConfig.model_validate(
            {"name": "r", "seed": 3, "serving": SERVING, "workload": TRACE}
        )
    ).requests.reset_index(drop=True)
    assert len(got) == len(replay) == 40
    assert (got["status"] == "finished").all()
    np.testing.assert_allclose(
        got["ttft_ue_s"].to_numpy(), replay["ttft_s"].to_numpy(), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
        got["e2e_ue_s"].to_numpy(), replay["e2e_s"].to_numpy(), rtol=0, atol=1e-9
    )


@pytest.fixture(scope="module")
def nr_run() -> Any:
    return _run(_scenario(), {"offload": "min_latency"})


def test_the_breakdown_sums_to_the_end_to_end_latency_of_every_request(nr_run: Any) -> None:
    req = nr_run.results().tables["requests"]
    fin = req[req["status"] == "finished"]
    assert len(fin) >= 20
    assert set(fin["tier"]) >= {"cloud"}
    total = fin[list(BREAKDOWN)].sum(axis=1)
    np.testing.assert_allclose(total.to_numpy(), fin["e2e_ue_s"].to_numpy(), rtol=0, atol=1e-9)
    remote = fin[fin["tier"] != "local"]
    # over the radio every remote request waits for slots: the hops are not free
    assert (remote["t_uplink_s"] + remote["t_downlink_s"] > 0).all()
    # the cloud is behind the 30 ms WAN, each way
    cloud = fin[fin["tier"] == "cloud"]
    assert (cloud["t_network_up_s"] >= 0.030).all()
    assert (cloud["t_network_down_s"] >= 0.030).all()


def test_every_request_ends_at_most_once_and_every_message_is_accounted(nr_run: Any) -> None:
    system = nr_run.components["system"]
    req = nr_run.results().tables["requests"]
    assert req["id"].is_unique
    sent = system.source.sent
    assert len(req) == len(sent)  # every request the sessions sent is in the table, once
    assert set(req["status"]) <= {"finished", "in_flight", "unfinished", "rejected"}
    # a closed loop: a UE has at most one request not finished (the one at the horizon)
    open_per_ue = req[req["status"] != "finished"].groupby("ue").size()
    assert (open_per_ue <= 1).all()
    hop = dict(system.journeys)["cloud"].down[-1]
    assert hop.n_sent == hop.n_delivered + hop.in_flight
    # the downlink delivered at least the bits of the finished requests' token messages
    cells = nr_run.components["radio"]
    llm = cells.delivered_bits[:, :4].sum()
    assert llm > 0


def test_same_seed_gives_identical_tables_and_policies_see_the_same_channel_and_sessions() -> None:
    a = _run(_scenario(duration_s=3.0), {"offload": "cloud"})
    b = _run(_scenario(duration_s=3.0), {"offload": "cloud"})
    c = _run(_scenario(duration_s=3.0), {"offload": "edge"})
    ra, rb = a.results().tables, b.results().tables
    pd.testing.assert_frame_equal(ra["requests"], rb["requests"])
    pd.testing.assert_frame_equal(ra["ue"], rb["ue"])
    # common random numbers: the same drop, the same channel, and each UE's session draws
    pd.testing.assert_series_equal(ra["ue"]["distance_m"], c.results().tables["ue"]["distance_m"])
    fresh = [
        build(validate_scenario(_scenario(duration_s=3.0)), {"offload": p})
        for p in ("cloud", "edge")
    ]
    g0, g1 = (s.components["radio"].channel_at(1000)[0].gain for s in fresh)
    np.testing.assert_array_equal(g0, g1)

    def turns(sim: Any) -> pd.DataFrame:
        rows = pd.DataFrame(sim.components["system"].source.sent,
                            columns=["ue", "session", "turn", "prompt", "out", "t"])  # fmt: skip
        return rows.groupby("ue").head(1).set_index("ue").sort_index()[["prompt", "out", "t"]]

    pd.testing.assert_frame_equal(turns(a), turns(c))  # the first turn of every UE


def test_an_edge_cloud_scenario_needs_both_nodes_and_workload() -> None:
    raw = _scenario()
    del raw["workload"]
    with pytest.raises(ValueError, match="nodes needs a workload section"):
        validate_scenario(raw)
    with pytest.raises(ValueError, match="llm_ues_per_cell=9 exceeds"):
        validate_scenario(_scenario(workload={"llm_ues_per_cell": 9}))


def test_a_policy_for_a_family_the_scenario_lacks_is_refused() -> None:
    raw = _scenario()
    for key in ("nodes", "workload"):
        del raw[key]
    with pytest.raises(ValueError, match="has no offload decision"):
        build(validate_scenario(raw), {"offload": "edge"})


def test_prompts_cost_the_ue_transmit_energy_of_their_share_of_the_uplink(nr_run: Any) -> None:
    req = nr_run.results().tables["requests"]
    remote = req[(req["tier"] != "local") & req["t_uplink_s"].notna()]
    assert (remote["tx_energy_j"] > 0).all()
    assert (req.loc[req["tier"] == "local", "tx_energy_j"] == 0).all()
    ul = nr_run.components["uplink"]
    efficiency = nr_run.components["system"].tx_power_efficiency
    # the prompts' shares never exceed what the UEs radiated, at the transmitter's efficiency
    assert remote["tx_energy_j"].sum() <= ul.m_energy_j.sum() / efficiency * (1 + 1e-9)
