"""Trends of the best fixed draft length on matched seeds (issue 11, §5).

Each check runs ``draft/fixed:k`` for several ``k`` on the same seed for every level of one
factor and takes the ``k`` with the most tokens per second of round time (all devices' tokens
over all their rounds' time). Where many rounds are needed the radio is ideal (the wired WAN
only, no background users: seconds per check); the uplink-channel check runs on the NR radio.

Measured levels and best ``k`` (α = 0.8, Jetson Orin Nano Super drafting SmolLM2-1.7B unless
stated) are in the README; the checks assert the direction, and a strict change between the
extreme levels so that a flat curve would fail too.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from edgetwin.scenarios import build
from edgetwin.scenarios.load import load_scenario, validate_scenario

BASE = load_scenario("specdec_jetson")
KS = (0, 2, 4, 6, 8)
QUIET = {"kind": "poisson", "packet_rate_hz": 0.001, "packet_bits": 100}  # no background load


def _variant(ideal: bool = True, n_llm: int = 6, **over: Any) -> dict[str, Any]:
    """A short, small ``specdec_jetson`` (α = 0.8) with ``over`` merged into its sections."""
    raw = BASE.model_dump(mode="json", exclude_none=True)
    raw["duration_s"] = 3.0
    raw["topology"] = {**raw["topology"], "ues_per_cell": max(10, n_llm)}
    raw["workload"] = {
        **raw["workload"],
        "llm_ues_per_cell": n_llm,
        "sessions": {"turns_mean": 2, "think_time_mean_s": 0.2, "session_gap_mean_s": 0.1,
                     "new_prompt_tokens_mean": 40, "output_tokens_mean": 80},
    }  # fmt: skip
    raw["speculative"] = {
        **raw["speculative"],
        "acceptance": {"kind": "iid", "alpha": 0.8, "k_max": 8},
    }
    if ideal:
        raw["network"] = {**raw["network"], "radio": "ideal"}
        raw["traffic"] = QUIET
        raw["uplink"] = {**raw["uplink"], "traffic": QUIET}
    for key, value in over.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def _rates(raw: dict[str, Any], ks: tuple[int, ...] = KS, seed: int = 0) -> np.ndarray:
    """Tokens per second of round time for each fixed ``k`` (matched seed)."""
    config = validate_scenario(raw)
    out = []
    for k in ks:
        sim = build(config, {"draft": f"fixed:k={k}"}, seed=seed)
        sim.run()
        rounds = sim.results().tables["spec_rounds"]
        assert len(rounds) > 20
        out.append(rounds["tokens"].sum() / (rounds["end_s"] - rounds["start_s"]).sum())
    return np.asarray(out)


def _best_k(raw: dict[str, Any], ks: tuple[int, ...] = KS) -> int:
    return ks[int(np.argmax(_rates(raw, ks)))]


def _assert_trend(best: list[int], direction: str) -> None:
    pairs = list(itertools.pairwise(best))
    if direction == "down":
        assert all(b <= a for a, b in pairs), best
        assert best[-1] < best[0], best
    else:
        assert all(b >= a for a, b in pairs), best
        assert best[-1] > best[0], best


def test_best_k_rises_with_the_round_trip_time():
    best = [
        _best_k(_variant(network={"wan": {"latency_s": lat, "bandwidth_bps": 1e9}}))
        for lat in (0.002, 0.030, 0.150)
    ]
    _assert_trend(best, "up")


def test_best_k_falls_with_the_device_cost():
    dev = BASE.nodes.device.model_dump(mode="json") if BASE.nodes and BASE.nodes.device else {}
    cloud = BASE.nodes.cloud.model_dump(mode="json") if BASE.nodes and BASE.nodes.cloud else {}
    best = []
    for hardware, model in (
        ("jetson-orin-nano-super", "smollm2-1.7b"),  # ~14.5 ms per drafted token
        ("jetson-orin-nano-8gb", "smollm2-1.7b"),  # ~21.5 ms
        ("cpu", "smollm-135m"),  # ~62 ms (the measured phone-CPU profile)
    ):
        nodes = {"device": {**dev, "hardware": hardware, "model": model}, "cloud": cloud}
        best.append(_best_k(_variant(nodes=nodes)))
    _assert_trend(best, "down")


def test_best_k_falls_with_the_cloud_batch():
    # Fused (draft and target in the cloud, no radio) on one L40S: with few devices the round is
    # memory-bound and a long draft is nearly free; with 192 devices the verification of
    # 192·(k + 1) tokens is compute-bound and every drafted token costs target time.
    dev = BASE.nodes.device.model_dump(mode="json") if BASE.nodes and BASE.nodes.device else {}
    best = []
    for n in (4, 64, 192):
        raw = _variant(
            n_llm=n,
            duration_s=2.0,
            speculative={"mode": "fused", "draft_model": "smollm-360m"},
            nodes={"device": dev, "cloud": {"model": "llama-3.1-8b", "hardware": "l40s"}},
        )
        best.append(_best_k(raw))
    _assert_trend(best, "down")


def test_best_k_falls_with_a_worse_uplink_channel_on_the_nr_radio():
    # The real NR uplink with background users; ids + top-256 sparse probabilities (lossless
    # rejection sampling) make the per-token payload large enough for the channel to matter.
    # A higher gNB noise figure lowers every UE's PUSCH SINR at the same transmit power.
    best = [
        _best_k(
            _variant(
                ideal=False,
                uplink={"gnb_noise_figure_db": nf},
                speculative={"payload": "ids_probs", "top_m": 256},
            )
        )
        for nf in (5.0, 12.0, 18.0)
    ]
    _assert_trend(best, "down")


@pytest.mark.parametrize("k", [2])
def test_rates_are_matched_across_policies_on_the_same_seed(k):
    raw = _variant()
    a = _rates(raw, (k,))
    b = _rates(raw, (k,))
    assert a[0] == b[0]


def test_a_tighter_energy_budget_lowers_flexspecs_k():
    k_mean = []
    for budget in (None, 0.4, 0.3, 0.1):  # J per delivered token; ~0.36 J per drafted token
        raw = _variant(speculative={"energy_budget_j_per_token": budget})
        sim = build(validate_scenario(raw), {"draft": "flexspec"}, seed=0)
        sim.run()
        k_mean.append(sim.results().summary["spec_k_mean"])
    assert all(b <= a for a, b in itertools.pairwise(k_mean)), k_mean
    assert k_mean[2] < k_mean[0], k_mean
    assert k_mean[-1] == 0.0, k_mean
