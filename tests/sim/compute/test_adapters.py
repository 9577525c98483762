"""LoRA adapter sizes (Hu et al. 2022) and load time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgetwin.sim.compute.adapters import AdapterSpec, adapter_params, load_time_s
from edgetwin.sim.compute.cost_model import MODEL_DIMS


def test_qwen25_7b_rank16_qkvo_is_10_09m_params_and_20_2_mb() -> None:
    # issue 10: Qwen2.5-7B (d 3584, 28 layers, 28 heads, 4 KV heads, d_h 128), r = 16 on q,k,v,o:
    # per layer 16·(3584+3584) + 2·16·(3584+512) + 16·(3584+3584) = 360,448; × 28 = 10,092,544
    spec = AdapterSpec(rank=16, targets=("q", "k", "v", "o"), dtype="bf16")
    dims = MODEL_DIMS["qwen2.5-7b"]
    assert adapter_params(spec, dims) == 10_092_544
    assert spec.n_bytes(dims) == pytest.approx(20.2e6, rel=1e-3)


def test_size_is_linear_in_rank_and_adds_over_targets() -> None:
    dims = MODEL_DIMS["llama-3.1-8b"]
    qv = AdapterSpec(rank=8, targets=("q", "v"))
    q, v = AdapterSpec(rank=8, targets=("q",)), AdapterSpec(rank=8, targets=("v",))
    assert adapter_params(qv, dims) == adapter_params(q, dims) + adapter_params(v, dims)
    assert adapter_params(AdapterSpec(rank=32, targets=("q", "v")), dims) == 4 * adapter_params(
        qv, dims
    )
    # fp32 is twice bf16
    assert AdapterSpec(rank=8, dtype="fp32").n_bytes(dims) == 2 * AdapterSpec(rank=8).n_bytes(dims)


def test_load_time_adds_read_copy_and_overhead() -> None:
    # 20.2 MB over PCIe Gen4 x16 (32 GB/s per direction): 0.63 ms copy
    t = load_time_s(20.2e6, read_s=0.004, host_link_bytes_per_s=32e9, overhead_s=0.001)
    assert t == pytest.approx(0.004 + 20.2e6 / 32e9 + 0.001)
    assert load_time_s(20.2e6, read_s=0.004, host_link_bytes_per_s=0) == 0.004  # unified memory
    with pytest.raises(ValueError, match=">= 0"):
        load_time_s(-1, read_s=0, host_link_bytes_per_s=1e9)


@pytest.mark.parametrize(
    "bad",
    [{"rank": 0}, {"targets": ("q", "q")}, {"targets": ()}, {"targets": ("x",)}, {"dtype": "int4"}],
)
def test_bad_adapter_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AdapterSpec.model_validate(bad)
