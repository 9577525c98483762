"""Declared hardware: presets with cited vendor numbers, declared blocks, and their use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from edgetwin.scenarios.serve import build_cost_model, default_kv_blocks, run_serving
from edgetwin.scenarios.serving_schema import validate_serving
from edgetwin.sim.compute.cost_model import MODEL_DIMS
from edgetwin.sim.compute.hardware import HARDWARE_PRESETS, HardwareSpec, resolve_hardware

#: The GPUs of the public profiles (issue 8): every one is a preset.
PUBLIC_GPUS = ("a100", "h100", "h200", "l40s", "rtx4090", "rtx-pro-6000", "a6000", "rtx3090")

MY_GPU = {
    "name": "my-gpu",
    "memory_bytes": 32e9,
    "mem_bandwidth_bytes_per_s": 1.5e12,
    "peak_flops": {"bf16": 200e12},
    "source": "a test",
}


def test_every_public_gpu_is_a_cited_preset() -> None:
    assert set(PUBLIC_GPUS) <= set(HARDWARE_PRESETS)
    for p in HARDWARE_PRESETS.values():
        assert "datasheet" in p.source or "whitepaper" in p.source or "announcement" in p.source
        assert p.power_w is not None
    # datasheet figures (NVIDIA H100 / H200 / L40S datasheets): dense bf16 and bandwidth
    assert HARDWARE_PRESETS["h100"].dense_flops == 989e12
    assert HARDWARE_PRESETS["h200"].mem_bandwidth_bytes_per_s == 4.8e12
    assert HARDWARE_PRESETS["h200"].memory_bytes == 141e9
    assert HARDWARE_PRESETS["l40s"].mem_bandwidth_bytes_per_s == 864e9


def test_a_declared_gpu_sizes_the_kv_cache_from_its_memory() -> None:
    # (0.9 · memory − weights) / block bytes, with the memory it declares
    spec = HardwareSpec.model_validate(MY_GPU)
    dims = MODEL_DIMS["llama-3.1-8b"]
    big = default_kv_blocks("llama-3.1-8b", spec, 16)
    small = default_kv_blocks("llama-3.1-8b", spec.model_copy(update={"memory_bytes": 24e9}), 16)
    # 8 GB less memory -> 0.9 · 8e9 bytes fewer KV bytes
    block_bytes = 16 * dims.kv_bytes_per_token()
    assert big - small == pytest.approx(0.9 * 8e9 / block_bytes, abs=1)


def test_the_roofline_uses_the_declared_numbers() -> None:
    spec = HardwareSpec.model_validate(MY_GPU)
    faster = spec.model_copy(update={"mem_bandwidth_bytes_per_s": 3e12})
    decode = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.full(1, 1000, np.int64))
    t_slow = build_cost_model("llama-3.1-8b", spec, None)[0].iteration_time_s(*decode)
    t_fast = build_cost_model("llama-3.1-8b", faster, None)[0].iteration_time_s(*decode)
    # batch-1 decode streams the weights: twice the bandwidth, about half the time
    assert t_fast == pytest.approx(t_slow / 2, rel=0.02)


def test_a_scenario_declares_its_gpu_and_the_summary_records_it(tmp_path) -> None:
    trace = tmp_path / "trace.csv"
    pd.DataFrame(
        {"arrival_s": [0.0, 0.5], "prompt_tokens": [100, 200], "output_tokens": [5, 5]}
    ).to_csv(trace, index=False)
    cfg = validate_serving(
        {
            "name": "declared",
            "serving": {"model": "llama-3.1-8b", "hardware": MY_GPU},
            "workload": {"trace": str(trace)},
        }
    )
    _, summary = run_serving(cfg)
    assert summary["hardware"] == "my-gpu"
    assert summary["hardware_spec"]["mem_bandwidth_bytes_per_s"] == 1.5e12
    assert summary["cost_model"]["peak_flops"] == 200e12


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"memory_bytes": -1}, "memory_bytes"),
        ({"peak_flops": {"fp32": 1e12}}, "'bf16' or 'fp16'"),
        ({"peak_flops": {"bf16": 0.0}}, "(0, 1e17]"),
        ({"peak_flops": {"fp4": 1e15}}, "peak_flops"),
        ({"name": "My GPU"}, "name"),
        ({"bandwidth": 1e12}, "bandwidth"),
    ],
)
def test_bad_hardware_blocks_name_the_field(change: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("(", r"\(").replace("]", r"\]")):
        HardwareSpec.model_validate({**MY_GPU, **change})
    with pytest.raises(ValueError, match="hardware"):
        resolve_hardware({**MY_GPU, **change})


def test_an_unknown_id_without_profiles_names_the_presets() -> None:
    with pytest.raises(ValueError, match="presets: a100, a6000, h100, h200, l40s"):
        build_cost_model("llama-3.1-8b", "b200", None)
    with pytest.raises(ValueError, match="hardware: block"):
        default_kv_blocks("llama-3.1-8b", "b200", 16)
