"""The shipped speculative-decoding scenario: rounds over the real NR radio, tables, trends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from edgetwin.scenarios import build
from edgetwin.scenarios.load import load_scenario, validate_scenario
from edgetwin.sim.system import BREAKDOWN

SHIPPED = load_scenario("scenarios/specdec.yaml")


def _small(**over: Any) -> dict[str, Any]:
    """The shipped scenario, shorter and with fewer UEs (same sections)."""
    raw = SHIPPED.model_dump(mode="json", exclude_none=True)
    raw["duration_s"] = 4.0
    raw["topology"] = {**raw["topology"], "ues_per_cell": 10}
    raw["workload"] = {
        **raw["workload"],
        "llm_ues_per_cell": 6,
        "sessions": {"turns_mean": 2, "think_time_mean_s": 0.2, "session_gap_mean_s": 0.1,
                     "new_prompt_tokens_mean": 40, "output_tokens_mean": 40},
    }  # fmt: skip
    for key, value in over.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def _run(raw: dict[str, Any], policies: dict[str, Any] | None = None, seed: int = 0) -> Any:
    sim = build(validate_scenario(raw), policies, seed=seed)
    sim.run()
    return sim.results()


@pytest.fixture(scope="module")
def shipped_short() -> Any:
    return _run(_small())


def test_shipped_scenario_has_the_draft_family_and_twenty_drafting_ues() -> None:
    assert "draft" in SHIPPED.families
    assert SHIPPED.speculative is not None
    assert SHIPPED.speculative.mode == "distributed"
    assert SHIPPED.workload is not None
    assert SHIPPED.workload.llm_ues_per_cell == 20
    assert SHIPPED.topology.ues_per_cell > 20  # the rest are background users
    assert SHIPPED.policies.as_dict()["draft"].id == "draft/fixed"


def test_rounds_table_and_summary_over_the_nr_radio(shipped_short: Any) -> None:
    rounds = shipped_short.tables["spec_rounds"]
    s = shipped_short.summary
    assert len(rounds) > 50
    for col in ("k", "accepted", "t_uplink_s", "t_verify_wait_s", "t_downlink_s",
                "draft_energy_j"):  # fmt: skip
        assert col in rounds
    assert (rounds["t_uplink_s"] > 0).all()
    assert (rounds["t_downlink_s"] > 0).all()
    assert s["spec_rounds"] == len(rounds)
    tokens = rounds["tokens"].sum()
    assert s["spec_discard_rate"] == pytest.approx(
        (rounds["k"] - rounds["accepted"]).sum() / tokens
    )
    assert s["spec_verification_rate"] == pytest.approx(len(rounds) / tokens)
    assert s["spec_energy_per_token_j"] > 0
    assert s["spec_tokens_per_s_per_device"] > 0


def test_requests_conserve_tokens_and_their_breakdown_sums(shipped_short: Any) -> None:
    req = shipped_short.tables["requests"]
    rounds = shipped_short.tables["spec_rounds"]
    fin = req[req["status"] == "finished"].set_index("id")
    assert len(fin) >= 5
    per = rounds.groupby("id")["tokens"].sum().reindex(fin.index, fill_value=0)
    np.testing.assert_array_equal(per + 1, fin["output_tokens"])
    np.testing.assert_array_equal(fin["received_tokens"], fin["output_tokens"])
    np.testing.assert_allclose(fin[list(BREAKDOWN)].sum(axis=1), fin["e2e_ue_s"], atol=1e-9)
    parts = [c for c in rounds.columns if c.startswith("t_") and c.endswith("_s")]
    np.testing.assert_allclose(
        rounds[parts].sum(axis=1), rounds["end_s"] - rounds["start_s"], rtol=0, atol=1e-9
    )
    # the device's energy column of a request is its draft energy (prompt prefill + rounds)
    drafted = rounds.groupby("id")["draft_energy_j"].sum().reindex(fin.index, fill_value=0.0)
    assert (fin["device_energy_j"] >= drafted - 1e-12).all()


def test_same_seed_gives_identical_rounds(shipped_short: Any) -> None:
    again = _run(_small())
    pd.testing.assert_frame_equal(again.tables["spec_rounds"], shipped_short.tables["spec_rounds"])


def test_a_better_uplink_channel_gives_shorter_uplink_times_on_matched_seeds() -> None:
    # a 13 dB lower gNB noise figure raises every UE's PUSCH SINR at the same power and
    # positions (same seed: same drops, fading, arrivals and text difficulty)
    spec = {"payload": "ids_probs", "top_m": 64}
    bad = _run(_small(uplink={"gnb_noise_figure_db": 18.0}, speculative=spec))
    good = _run(_small(uplink={"gnb_noise_figure_db": 5.0}, speculative=spec))
    t_bad = bad.tables["spec_rounds"]["t_uplink_s"].mean()
    t_good = good.tables["spec_rounds"]["t_uplink_s"].mean()
    assert len(bad.tables["spec_rounds"]) > 20
    assert t_good < 0.5 * t_bad


def test_autoregressive_mode_streams_without_rounds() -> None:
    res = _run(_small(speculative={"mode": "autoregressive"}))
    assert "spec_rounds" not in res.tables
    req = res.tables["requests"]
    fin = req[req["status"] == "finished"]
    assert len(fin)
    assert (fin["received_tokens"] == fin["output_tokens"]).all()


@pytest.mark.parametrize("policy", ["osd", "specdecpp", "flexspec", "fixed:k=0"])
def test_every_draft_policy_runs_on_the_radio(policy: str) -> None:
    raw = _small(duration_s=2.0)
    res = _run(raw, {"draft": policy})
    rounds = res.tables["spec_rounds"]
    assert len(rounds) > 0
    assert (rounds["k"] <= 8).all()
    if policy == "fixed:k=0":
        assert (rounds["k"] == 0).all()
        assert (rounds["tokens"] == 1).all()


def test_an_external_agent_drives_the_draft_decision_point() -> None:
    # the draft family is a DecisionPoint registered with the simulation: detached, the run
    # stops at each round with the observation and resumes with the agent's k
    sim = build(validate_scenario(_small(duration_s=2.0)), detach=["draft"])
    asked = 0
    request = sim.run_until_decision("draft")
    while request is not None and asked < 40:
        obs = request.obs
        assert request.family == "draft"
        for key in ("uplink_bps", "rtt_s", "alpha_est", "cloud_running", "battery_j"):
            assert key in obs
        assert obs["verify_s"].shape == (obs["k_max"] + 1,)
        assert obs["predicted_accept"].shape == (8,)
        request.reply.succeed(min(3, int(obs["k_max"])))
        asked += 1
        request = sim.run_until_decision("draft")
    assert asked == 40


def test_fused_mode_verifies_in_the_cloud_without_radio_rounds() -> None:
    res = _run(_small(duration_s=2.0, speculative={"mode": "fused"}))
    rounds = res.tables["spec_rounds"]
    assert len(rounds) > 0
    assert (rounds["mode"] == "fused").all()
    assert (rounds["t_uplink_s"] == 0).all()
    servers = res.tables["servers"]
    assert int(servers["n_verifies"].sum()) == len(rounds)
    assert int(servers["verify_kept_tokens"].sum()) == int(rounds["tokens"].sum())
    assert int(servers["verify_query_tokens"].sum()) == int((rounds["k"] + 1).sum())


def test_replicas_and_a_separate_draft_model() -> None:
    # two cloud replicas behind the router, each verifying its own requests; the phone runs
    # SmolLM-360M for local work but drafts with SmolLM-135M (faster per token)
    raw = _small(duration_s=2.0, speculative={"draft_model": "smollm-135m"})
    raw["nodes"]["device"]["model"] = "smollm-360m"
    raw["nodes"]["cloud"]["replicas"] = 2
    small = _run(raw)
    raw["speculative"]["draft_model"] = "smollm-360m"
    large = _run(raw)
    servers = small.tables["servers"]
    rounds = small.tables["spec_rounds"]
    assert len(servers) == 2
    assert (servers["n_accepted"] > 0).all()  # the router spread the requests
    assert int(servers["n_verifies"].sum()) >= len(rounds)
    per_token = lambda r: (r["t_draft_s"] / r["k"]).where(r["k"] > 0).median()  # noqa: E731
    assert per_token(rounds) < per_token(large.tables["spec_rounds"])
