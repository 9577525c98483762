from __future__ import annotations

import numpy as np
import pytest

from edgetwin.sim.compute.cost_model import LLAMA3_8B, LinearCostModel, RooflineCostModel


def _a(*x: int) -> np.ndarray:
    return np.array(x, dtype=np.int64)


def test_linear_model_is_exact() -> None:
    m = LinearCostModel(a_s=1.0, b_s_per_token=0.1, c_s_per_seq=0.01, d_s_per_kv_token=0.001)
    pt, pc, dc = _a(10, 5), _a(0, 20), _a(7, 3, 1)
    n_tok = 15 + 3
    n_seq = 5
    n_kv = (10 + 5 + 20) + 11
    expected = 1.0 + 0.1 * n_tok + 0.01 * n_seq + 0.001 * n_kv
    assert m.iteration_time_s(pt, pc, dc) == pytest.approx(expected)
    assert sum(m.breakdown_s(pt, pc, dc).values()) == pytest.approx(expected)
    with pytest.raises(ValueError, match=">= 0"):
        LinearCostModel(a_s=-1.0)


ROOF = RooflineCostModel(
    LLAMA3_8B, peak_flops=312e12, mem_bandwidth_bytes_per_s=2.0e12, overhead_s=1e-3
)


def test_roofline_monotone_in_prefill_tokens_and_context() -> None:
    e = _a()
    t_tok = [ROOF.iteration_time_s(_a(n), _a(0), e) for n in (1, 16, 256, 1024, 4096, 16384)]
    assert np.all(np.diff(t_tok) > 0)
    t_ctx = [ROOF.iteration_time_s(_a(512), _a(c), e) for c in (0, 1024, 8192, 65536)]
    assert np.all(np.diff(t_ctx) > 0)


def test_roofline_monotone_in_decode_batch_and_context() -> None:
    e = _a()
    t_ctx = [
        ROOF.iteration_time_s(e, e, np.full(8, c, dtype=np.int64)) for c in (16, 1024, 8192, 131072)
    ]
    assert np.all(np.diff(t_ctx) > 0)
    t_b = [ROOF.iteration_time_s(e, e, np.full(b, 1024, dtype=np.int64)) for b in (1, 8, 64, 512)]
    assert np.all(np.diff(t_b) > 0)


def test_roofline_regimes() -> None:
    e = _a()
    # a single decode is memory-bound: ≈ weight bytes / bandwidth (~2 bytes x 8e9 params)
    t1 = ROOF.iteration_time_s(e, e, _a(1)) - ROOF.overhead_s
    assert 6e-3 < t1 < 10e-3
    # a long prefill is compute-bound: ≈ 2·params·tokens / peak (Kaplan et al. 2020)
    n = 8192
    tp = ROOF.iteration_time_s(_a(n), _a(0), e) - ROOF.overhead_s
    assert tp == pytest.approx(2 * 7.5e9 * n / 312e12, rel=0.3)
    br = ROOF.breakdown_s(_a(n), _a(0), e)
    assert sum(br.values()) == pytest.approx(ROOF.iteration_time_s(_a(n), _a(0), e))
    assert set(br) == {"qkv", "attention", "o_proj", "gate_up", "down", "lm_head", "overhead"}
    assert ROOF.iteration_time_s(e, e, e) == 0.0
