"""Serving scenarios with LoRA adapters: YAML, workload adapters, the server's tiers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgetwin.scenarios.serve import simulate
from edgetwin.scenarios.serving_schema import ServingScenarioConfig


def _config(**lora: Any) -> ServingScenarioConfig:
    return ServingScenarioConfig.model_validate(
        {
            "name": "lora",
            "seed": 2,
            "serving": {
                "model": "qwen2.5-7b",
                "hardware": "l40s",
                "lora": {"n_adapters": 30, "max_loras": 4, **lora},
            },
            "workload": {
                "arrival": {"process": "poisson", "rate_rps": 4.0, "n_requests": 200},
                "prompt_tokens": {"dist": "geometric", "mean": 200},
                "output_tokens": {"dist": "geometric", "mean": 40},
                "adapters": {"n_adapters": 30, "zipf_s": 1.0},
            },
        }
    )


def test_requests_carry_zipf_adapters_and_every_one_finishes_on_its_adapter() -> None:
    run = simulate(_config(max_cpu_loras=8))
    req = run.requests
    assert (req["status"] == "finished").all()
    counts = np.bincount(req["adapter"], minlength=30)
    assert counts.sum() == 200
    assert counts.max() >= 4 * np.median(counts)  # Zipf(1): a few adapters dominate
    assert run.summary["n_finished"] == 200


def test_more_gpu_slots_and_a_host_tier_cut_the_ttft() -> None:
    # Fewer misses and cheaper reloads: the mean TTFT falls as the tiers grow (same workload).
    slow = simulate(_config(max_loras=2)).requests["ttft_s"].mean()
    fast = simulate(_config(max_loras=8, max_cpu_loras=30)).requests["ttft_s"].mean()
    assert fast < slow


def test_the_workload_and_the_servers_must_name_the_same_library() -> None:
    raw = _config().model_dump()
    raw["workload"]["adapters"]["n_adapters"] = 12
    with pytest.raises(
        ValueError, match=r"n_adapters=12 differs from serving\.lora\.n_adapters=30"
    ):
        ServingScenarioConfig.model_validate(raw)
    raw["serving"]["lora"] = None
    with pytest.raises(ValueError, match=r"workload\.adapters needs serving\.lora"):
        ServingScenarioConfig.model_validate(raw)


def test_a_cache_policy_from_yaml_chooses_the_victims() -> None:
    # serving.lora.cache_policy: LFU keeps the Zipf-popular adapters resident through one-off
    # requests, so it loads fewer adapters than LRU on the same workload (matched seed).
    lru = simulate(_config(max_loras=3)).summary
    lfu = simulate(_config(max_loras=3, cache_policy="lfu")).summary
    assert lfu["lora_loads"] < lru["lora_loads"]
    with pytest.raises(ValueError, match=r"unknown cache policy 'nope'.*allowed: cache/lfu"):
        _config(cache_policy="nope")
