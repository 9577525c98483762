from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgetwin.kernels.models import get_model
from edgetwin.kernels.ops import OP_SPECS, Shape, adapter_io, kv_quant
from edgetwin.kernels.ops.attention import causal_pairs
from edgetwin.kernels.ops.linear import gemm_dims
from edgetwin.sim.compute.profiles import OPS

M135 = get_model("smollm-135m")


def test_specs_cover_schema_ops():
    assert set(OP_SPECS) == set(OPS) - {"iteration", "elementwise"}


def test_linear_flops_hand_computed():
    # QKV of SmolLM-135M: K = 576, N = 576 + 2 * 192 = 960; 2 * 10 * 576 * 960.
    assert gemm_dims(M135, "linear_qkv") == (576, 960)
    assert OP_SPECS["linear_qkv"].flops(M135, Shape(n_tokens=10), 4) == 11_059_200.0
    # gate_up: K = 576, N = 3072; bytes = 4 * (1*576 + 576*3072 + 1*3072)
    assert OP_SPECS["linear_gate_up"].bytes_moved(M135, Shape(n_tokens=1), 4) == 4 * (
        576 + 576 * 3072 + 3072
    )
    # LM head uses batch_size rows: 2 * 3 * 576 * 49152
    assert OP_SPECS["lm_head"].flops(M135, Shape(n_tokens=3, batch_size=3), 2) == 169_869_312.0


def test_attention_flops_hand_computed():
    # 4 tokens over 10 cached: pairs = 40 + 10 = 50; 4 * 9 heads * 64 * 50
    assert causal_pairs(4, 10) == 50
    assert OP_SPECS["attn_prefill"].flops(M135, Shape(n_tokens=4, context_len=10), 4) == 115_200.0
    # decode: 4 * B * H * d_h * c = 4 * 2 * 9 * 64 * 100
    shape = Shape(n_tokens=2, batch_size=2, context_len=100)
    assert OP_SPECS["attn_decode"].flops(M135, shape, 2) == 460_800.0
    # decode bytes: 2 * 2 * (2 * 100 * 192 + 2 * 576)
    assert OP_SPECS["attn_decode"].bytes_moved(M135, shape, 2) == 2 * 2 * (2 * 100 * 192 + 1152)


def test_lora_flops_hand_computed():
    shape = Shape(n_tokens=8, batch_size=2, rank=16)
    assert OP_SPECS["lora_shrink"].flops(M135, shape, 4) == 2 * 8 * 576 * 16


def test_adapter_bytes_hand_computed():
    # 30 layers * r=8 * (2*576 + 576 + 192) * 2 bytes
    assert adapter_io.adapter_n_bytes(M135, 8, 2) == 30 * 8 * 1920 * 2


@pytest.mark.parametrize("op", sorted(OP_SPECS))
def test_runner_runs_on_quick_grid(op, tiny_model, tmp_path: Path):
    spec = OP_SPECS[op]
    shapes = spec.grid(tiny_model, True)
    assert shapes
    with torch.inference_mode():
        fn = spec.make_runner(tiny_model, shapes[0], torch.device("cpu"), torch.float32, tmp_path)
        fn()
    assert spec.flops(tiny_model, shapes[0], 4) >= 0
    assert spec.bytes_moved(tiny_model, shapes[0], 4) > 0


def test_prefill_chunk_mask_matches_full_causal(tiny_model, tmp_path: Path):
    # A chunk over cached context equals the tail of full causal attention.
    torch.manual_seed(0)
    h, kvh, dh, c, n = 4, 2, 16, 6, 3
    q = torch.randn(1, h, c + n, dh)
    k = torch.randn(1, kvh, c + n, dh)
    v = torch.randn(1, kvh, c + n, dh)
    full = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True, enable_gqa=True
    )
    mask = torch.ones((n, c + n), dtype=torch.bool).tril(diagonal=c)
    chunk = torch.nn.functional.scaled_dot_product_attention(
        q[:, :, c:], k, v, attn_mask=mask, enable_gqa=True
    )
    torch.testing.assert_close(chunk, full[:, :, c:])


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_kv_quant_roundtrip(bits):
    x = torch.randn(2, 32, 64)
    packed, scale, zero = kv_quant.quantize(x, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == x.numel() * bits // 8
    y = kv_quant.dequantize(packed, scale, zero, bits).reshape(x.shape)
    step = scale.max().item()
    assert (y - x).abs().max().item() <= 0.5 * step + 1e-5
