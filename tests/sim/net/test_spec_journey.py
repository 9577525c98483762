"""Speculative rounds between UEs and a cloud server: conservation, KV, breakdown, CRN, k = 0."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy

from edgetwin.agents.baselines.draft import FixedDraft, FlexSpec, OnlineSD, SpecDecPP
from edgetwin.sim.compute.acceptance import expected_tokens_iid
from edgetwin.sim.compute.cost_model import LinearCostModel
from edgetwin.sim.compute.device import Device, DeviceConfig
from edgetwin.sim.compute.server import LLMServer, ServerConfig
from edgetwin.sim.compute.specdec import SpecDecConfig, round_summary
from edgetwin.sim.net import LinkConfig, WiredLink
from edgetwin.sim.net.journey import JourneyConfig, Journeys
from edgetwin.sim.net.spec_journey import SpeculativeJourneys
from edgetwin.sim.rng import RandomStreams
from edgetwin.sim.workload.request import Request

TARGET = LinearCostModel(a_s=0.006, b_s_per_token=5e-5, d_s_per_kv_token=1e-7)
DRAFT = LinearCostModel(a_s=0.004, d_s_per_kv_token=1e-7)
SERVER = ServerConfig(max_num_seqs=64, max_num_batched_tokens=2048, n_blocks=6000)
UES = [f"u{i}" for i in range(6)]


def _trace(n: int = 30, seed: int = 1) -> list[tuple[float, int, int, str]]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.2, n))
    return [
        (float(a), int(p), int(o), UES[i % len(UES)])
        for i, (a, p, o) in enumerate(
            zip(t, rng.integers(8, 400, n), rng.integers(1, 80, n), strict=True)
        )
    ]


def _run(
    policy: Any,
    spec: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    uplink_bps: float = 2e6,
    trace: list[tuple[float, int, int, str]] | None = None,
    plain: bool = False,
    uplink_buffer_bytes: int | None = None,
) -> tuple[Any, LLMServer, dict[int, Request]]:
    """Run the trace through speculative (or plain) journeys; hops: 'radio' + WAN each way."""
    env = simpy.Environment()
    streams = RandomStreams(seed)
    server = LLMServer(env, SERVER, TARGET)
    server.start()
    wan = LinkConfig(latency_s=0.015, bandwidth_bps=1e9)
    up = [
        WiredLink(env, "nr_ul", LinkConfig(latency_s=0.002, bandwidth_bps=uplink_bps,
                                           buffer_bytes=uplink_buffer_bytes), streams.get("ul")),
        WiredLink(env, "wan_up", wan, streams.get("wu")),
    ]  # fmt: skip
    down = [
        WiredLink(env, "wan_down", wan, streams.get("wd")),
        WiredLink(env, "nr_dl", LinkConfig(latency_s=0.001, bandwidth_bps=20e6),
                  streams.get("dl")),
    ]  # fmt: skip
    cfg = DeviceConfig(memory_bytes=1e10, weights_bytes=1e8, kv_bytes_per_token=1e3,
                       active_power_w=4.0)  # fmt: skip
    devices = {ue: Device(env, ue, cfg, DRAFT) for ue in UES}
    path: Any
    if plain:
        path = Journeys(env, "cloud", server.submit, up, down, JourneyConfig())
    else:
        path = SpeculativeJourneys(
            env, "cloud", lambda: server, up, down, JourneyConfig(),
            SpecDecConfig.model_validate(spec or {}), streams, DRAFT,
            devices=devices, policy=policy,
        )  # fmt: skip
    server.on_token = path.on_token
    reqs: dict[int, Request] = {}

    def source() -> simpy.events.ProcessGenerator:
        for i, (t, p, o, ue) in enumerate(trace or _trace()):
            yield env.timeout(t - env.now)
            reqs[i] = Request(i, t, p, o)
            path.send(reqs[i], ue)

    env.process(source())
    env.run(until=400.0)
    return path, server, reqs


def test_every_drafted_token_is_accepted_or_discarded_once_and_outputs_are_exact() -> None:
    path, server, reqs = _run(FixedDraft(5))
    rounds = path.round_table()
    table = path.table()
    assert (table["status"] == "finished").all()
    assert len(table) == len(reqs)
    # per round: N = N_acc + 1 tokens, 0 <= N_acc <= k (Leviathan et al. 2023, Algorithm 1)
    assert (rounds["tokens"] == rounds["accepted"] + 1).all()
    assert ((rounds["accepted"] >= 0) & (rounds["accepted"] <= rounds["k"])).all()
    # per request: first token (prefill) + Σ_rounds (N_acc + 1) = output_tokens, received by UE
    per = rounds.groupby("id")["tokens"].sum().reindex(table["id"], fill_value=0)
    np.testing.assert_array_equal(per.to_numpy() + 1, table["output_tokens"].to_numpy())
    np.testing.assert_array_equal(table["received_tokens"], table["output_tokens"])
    # drafted = accepted + discarded, exactly, and the server kept exactly accepted + 1 per round
    s = round_summary(rounds)
    assert s["spec_drafted_tokens"] == s["spec_accepted_tokens"] + s["spec_discarded_tokens"]
    assert server.n_verify_query_tokens == int((rounds["k"] + 1).sum())
    assert server.n_verify_kept_tokens == int(rounds["tokens"].sum())
    assert server.n_verifies == len(rounds)
    assert all(r.n_generated == r.output_tokens for r in reqs.values())


def test_target_kv_holds_the_prompt_and_the_kept_tokens_only() -> None:
    path, server, reqs = _run(FixedDraft(6))
    rounds = path.round_table()
    prompt = rounds["id"].map({i: r.prompt_tokens for i, r in reqs.items()})
    kept = rounds.groupby("id")["tokens"].cumsum()
    # KV after round r = prompt + Σ_{j≤r} (N_acc,j + 1): the first token's KV is written by
    # round 1, each round's sampled token by the next; rejected drafts are trimmed
    np.testing.assert_array_equal(rounds["kv_tokens"], prompt + kept)
    np.testing.assert_array_equal(rounds["kv_blocks"], -(-(prompt + kept) // SERVER.block_size))
    assert server.kv.n_used == 0
    assert not server.parked


def test_round_breakdown_sums_to_the_round_and_rounds_to_the_request() -> None:
    path, _server, _reqs = _run(FixedDraft(4))
    rounds = path.round_table()
    parts = [c for c in rounds.columns if c.startswith("t_") and c.endswith("_s")]
    np.testing.assert_allclose(
        rounds[parts].sum(axis=1), rounds["end_s"] - rounds["start_s"], rtol=0, atol=1e-9
    )
    assert (rounds[parts] >= -1e-12).all().all()
    table = path.table().set_index("id")
    dur = (rounds["end_s"] - rounds["start_s"]).groupby(rounds["id"]).sum()
    dur = dur.reindex(table.index, fill_value=0.0)
    np.testing.assert_allclose(table["e2e_ue_s"], table["ttft_ue_s"] + dur, rtol=0, atol=1e-9)
    # and the request's own breakdown telescopes as for plain journeys
    total = table[["t_up_s", "t_queue_s", "t_prefill_s", "t_decode_s", "t_down_s"]].sum(axis=1)
    np.testing.assert_allclose(total, table["e2e_ue_s"], rtol=0, atol=1e-9)


def test_zero_length_drafts_give_the_token_counts_of_plain_autoregressive_serving() -> None:
    trace = _trace(20, seed=4)
    spec, s_server, s_reqs = _run(FixedDraft(0), trace=trace)
    plain, p_server, p_reqs = _run(None, trace=trace, plain=True)
    rounds = spec.round_table()
    assert (rounds["k"] == 0).all()
    assert (rounds["tokens"] == 1).all()
    # one round per token after the first; the same tokens generated and received per request
    n_rounds = rounds.groupby("id").size().reindex(range(len(trace)), fill_value=0)
    np.testing.assert_array_equal(n_rounds + 1, [o for _t, _p, o, _u in trace])
    for i in range(len(trace)):
        assert s_reqs[i].n_generated == p_reqs[i].n_generated == trace[i][2]
        assert s_reqs[i].n_computed == p_reqs[i].n_computed  # KV: prompt + output − 1
    a, b = spec.table().set_index("id"), plain.table().set_index("id")
    np.testing.assert_array_equal(a["received_tokens"], b["received_tokens"])
    assert s_server.n_verify_query_tokens == len(rounds)
    assert s_server.kv.n_used == 0
    assert p_server.kv.n_used == 0


def test_same_seed_is_identical_and_the_seed_matters() -> None:
    spec = {"predictor": {"noise_logit_std": 1.0}}
    a = _run(SpecDecPP(threshold=0.7), spec, seed=3)[0].round_table()
    b = _run(SpecDecPP(threshold=0.7), spec, seed=3)[0].round_table()
    c = _run(SpecDecPP(threshold=0.7), spec, seed=4)[0].round_table()
    pd.testing.assert_frame_equal(a, b)
    assert a["k"].nunique() > 2  # the noisy acceptance head moves k round by round
    assert len(a) != len(c) or not a["accepted"].equals(c["accepted"])


def test_two_policies_on_one_seed_see_the_same_text_difficulty() -> None:
    # common random numbers: each device's first round draws the same uniforms whatever k, so
    # the shorter draft's accepted prefix is the longer one's, cut at the shorter k
    long = _run(FixedDraft(6), seed=5)[0].round_table()
    short = _run(FixedDraft(2), seed=5)[0].round_table()
    first_long = long.groupby("ue").first()
    first_short = short.groupby("ue").first()
    cut = np.minimum(first_long["accepted"], 2)
    both = (first_long["k"] == 6) & (first_short["k"] == 2)
    assert both.sum() >= 3
    np.testing.assert_array_equal(first_short["accepted"][both], cut[both])


@pytest.mark.parametrize(("alpha", "k"), [(0.5, 3), (0.8, 5)])
def test_mean_tokens_per_round_matches_the_iid_formula(alpha: float, k: int) -> None:
    # E[N] = (1 − α^(k+1)) / (1 − α) (Leviathan et al. 2023, Eq. 1) over rounds whose k was
    # not cut by the request's end; binomial-scale tolerance of 4 standard errors
    trace = [(0.01 * i, 50, 400, UES[i % len(UES)]) for i in range(12)]
    spec = {"acceptance": {"kind": "iid", "alpha": alpha, "k_max": 8}}
    rounds = _run(FixedDraft(k), spec, trace=trace)[0].round_table()
    full = rounds[rounds["k"] == k]["tokens"].to_numpy(dtype=float)
    assert full.size > 500
    mean = float(expected_tokens_iid(alpha, k))
    assert abs(full.mean() - mean) < 4 * full.std() / math.sqrt(full.size)


def test_a_faster_uplink_shortens_the_uplink_time_on_matched_seeds() -> None:
    spec = {"payload": "ids_probs", "top_m": 16}
    slow = _run(FixedDraft(6), spec, seed=2, uplink_bps=1e6)[0].round_table()
    fast = _run(FixedDraft(6), spec, seed=2, uplink_bps=8e6)[0].round_table()
    assert fast["t_uplink_s"].mean() < 0.5 * slow["t_uplink_s"].mean()
    # payload: 8·60 + k·(16 + 16·(16 + 16)) bits, k·⌈log2 49152⌉ = 16 bits per id
    assert (slow["uplink_bits"] == 480 + slow["k"] * (16 + 16 * 32)).all()


@pytest.mark.parametrize("policy", [OnlineSD(), SpecDecPP(), FlexSpec()], ids=str)
def test_adaptive_policies_run_rounds_within_their_caps(policy: Any) -> None:
    path, _server, reqs = _run(policy, {"predictor": {"noise_logit_std": 0.5}})
    rounds = path.round_table()
    assert len(rounds)
    assert (rounds["k"] <= 8).all()
    assert all(r.n_generated == r.output_tokens for r in reqs.values())


def test_fused_mode_drafts_in_the_cloud_and_streams_tokens() -> None:
    path, server, reqs = _run(FixedDraft(4), {"mode": "fused"})
    rounds = path.round_table()
    table = path.table()
    assert (table["status"] == "finished").all()
    np.testing.assert_array_equal(table["received_tokens"], table["output_tokens"])
    assert (rounds["t_uplink_s"] == 0).all()
    assert (rounds["draft_energy_j"] == 0).all()
    assert server.n_verify_kept_tokens == int(rounds["tokens"].sum())
    assert all(r.n_generated == r.output_tokens for r in reqs.values())


def test_device_energy_is_the_draft_power_times_the_draft_time() -> None:
    path, _server, _reqs = _run(FixedDraft(3))
    rounds = path.round_table()
    np.testing.assert_allclose(rounds["draft_energy_j"], 4.0 * rounds["t_draft_s"].where(
        rounds["t_draft_s"] > 0, 0.0), rtol=1e-9)  # fmt: skip


def test_a_draft_longer_than_allowed_is_refused() -> None:
    class Greedy:
        def reset(self, *, seed: int | None = None) -> None:
            pass

        def act(self, obs: dict[str, Any]) -> int:
            return int(obs["k_max"]) + 1

    with pytest.raises(ValueError, match=r"draft action .* allowed: 0\.\.\d"):
        _run(Greedy())


def test_a_lost_draft_ends_the_request_and_frees_its_kv() -> None:
    # a drop-tail uplink buffer shared by the UEs drops some drafts; their requests end as
    # lost and the server frees the KV they held while parked
    path, server, _reqs = _run(FixedDraft(8), {"payload": "ids_probs", "top_m": 64},
                               uplink_bps=2e5, uplink_buffer_bytes=3000)  # fmt: skip
    table = path.table()
    lost = table["status"].str.startswith("lost uplink")
    assert lost.any()
    assert (table["status"][~lost] == "finished").any()
    assert server.kv.n_used == 0
    assert not server.parked


@pytest.mark.parametrize(
    "acceptance",
    [
        {"kind": "position", "cumulative": [0.762, 0.616, 0.513, 0.424, 0.364]},
        {"kind": "markov", "alpha_easy": 0.9, "alpha_hard": 0.2, "p_easy_to_hard": 0.1,
         "p_hard_to_easy": 0.3, "k_max": 6},
    ],
    ids=["position", "markov"],
)  # fmt: skip
def test_other_acceptance_models_drive_the_rounds(acceptance: dict[str, Any]) -> None:
    spec = SpecDecConfig.model_validate({"acceptance": acceptance})
    path, server, reqs = _run(FixedDraft(8), {"acceptance": acceptance})
    rounds = path.round_table()
    assert rounds["k"].max() == spec.k_max  # FixedDraft(8) is capped at the model's k_max
    assert (rounds["accepted"] <= rounds["k"]).all()
    assert server.n_verify_kept_tokens == int(rounds["tokens"].sum())
    assert all(r.n_generated == r.output_tokens for r in reqs.values())
