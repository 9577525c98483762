"""The elementwise operators: what each runner computes, their traffic, and how they compose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgetwin.kernels.models import get_model
from edgetwin.kernels.ops import OP_SPECS, Shape
from edgetwin.kernels.ops.elementwise import RMS_EPS
from edgetwin.sim.compute.table_cost import (
    ELEMENTWISE_CALLS,
    LAYER_GEMMS,
    OpTable,
    TableCostModel,
)

M135 = get_model("smollm-135m")
CPU = torch.device("cpu")


def test_traffic_hand_computed() -> None:
    n, d, i = 10, 576, 1536  # SmolLM-135M: hidden 576, intermediate 1536, q 576, k 192
    s = Shape(n_tokens=n)
    assert OP_SPECS["rmsnorm"].bytes_moved(M135, s, 4) == 4 * (2 * n * d + d)
    assert OP_SPECS["rope"].bytes_moved(M135, s, 4) == 4 * (2 * n * (576 + 192) + 2 * n * 64)
    assert OP_SPECS["silu_mul"].bytes_moved(M135, s, 4) == 4 * 3 * n * i
    assert OP_SPECS["residual_add"].bytes_moved(M135, s, 4) == 4 * 3 * n * d
    assert OP_SPECS["embedding"].bytes_moved(M135, s, 4) == 2 * 4 * n * d + 8 * n
    assert OP_SPECS["embedding"].flops(M135, s, 4) == 0.0
    # the embedding's cold pool is sized by its whole table (113 MB), not the rows it reads
    assert OP_SPECS["embedding"].footprint_bytes(M135, s, 4) == 4 * 49152 * d
    assert OP_SPECS["rmsnorm"].footprint_bytes(M135, s, 4) == OP_SPECS["rmsnorm"].bytes_moved(
        M135, s, 4
    )
    b = Shape(n_tokens=3, batch_size=3)
    assert OP_SPECS["sampler"].bytes_moved(M135, b, 4) == 2 * 4 * 3 * 49152


def _captured(fn) -> dict[str, torch.Tensor]:
    """The tensors a runner closes over, by variable name."""
    cells = zip(fn.__code__.co_freevars, fn.__closure__, strict=True)
    return {n: c.cell_contents for n, c in cells if isinstance(c.cell_contents, torch.Tensor)}


def test_rmsnorm_and_silu_match_torch_reference(tiny_model, tmp_path: Path) -> None:
    run = OP_SPECS["rmsnorm"].make_runner(
        tiny_model, Shape(n_tokens=5), CPU, torch.float32, tmp_path
    )
    x, w = _captured(run)["x"], _captured(run)["w"]
    ref = torch.nn.functional.rms_norm(x, (x.shape[-1],), w, eps=RMS_EPS)
    torch.testing.assert_close(run(), ref)
    run = OP_SPECS["silu_mul"].make_runner(
        tiny_model, Shape(n_tokens=5), CPU, torch.float32, tmp_path
    )
    g, u = _captured(run)["gate"], _captured(run)["up"]
    torch.testing.assert_close(run(), g * torch.sigmoid(g) * u)


def test_rope_is_a_rotation_of_each_pair(tiny_model, tmp_path: Path) -> None:
    """With cos θ and sin θ tables, RoPE keeps each (x_j, x_{j+d/2}) pair's norm (Su et al.)."""
    run = OP_SPECS["rope"].make_runner(tiny_model, Shape(n_tokens=4), CPU, torch.float32, tmp_path)
    t = _captured(run)
    q, cos, sin = t["q"], t["cos"], t["sin"]
    theta = torch.rand_like(cos) * 6.0
    cos.copy_(torch.cos(theta))
    sin.copy_(torch.sin(theta))
    h = cos.shape[-1] // 2
    sin[:, h:] = sin[:, :h]  # one angle per pair, as the RoPE tables are built
    cos[:, h:] = cos[:, :h]
    q_rot, _ = run()
    norm = q[..., :h] ** 2 + q[..., h:] ** 2
    torch.testing.assert_close(q_rot[..., :h] ** 2 + q_rot[..., h:] ** 2, norm)


def test_sampler_picks_the_largest_logit(tiny_model, tmp_path: Path) -> None:
    run = OP_SPECS["sampler"].make_runner(
        tiny_model, Shape(n_tokens=3, batch_size=3), CPU, torch.float32, tmp_path
    )
    logits = _captured(run)["logits"]
    assert torch.equal(run(), logits.argmax(dim=-1))


def _flat(value: float) -> OpTable:
    return OpTable((np.array([1.0, 4096.0]),), np.array([value, value]))


def test_elementwise_terms_compose_per_layer_and_per_pass() -> None:
    L = 30
    tables = {op: _flat(1e-3) for op in (*LAYER_GEMMS, "lm_head")}
    tables["attn_prefill"] = OpTable(
        (np.array([1.0, 64.0]), np.array([0.0, 64.0])), np.zeros((2, 2))
    )
    tables["attn_decode"] = OpTable((np.array([1.0, 8.0]), np.array([1.0, 64.0])), np.zeros((2, 2)))
    base = TableCostModel(tables, n_layers=L)
    unit = {
        "rmsnorm": 1e-6,
        "rope": 2e-6,
        "silu_mul": 3e-6,
        "residual_add": 4e-6,
        "embedding": 5e-6,
    }
    full = TableCostModel(
        {**tables, **{op: _flat(v) for op, v in unit.items()}, "sampler": _flat(7e-6)}, n_layers=L
    )
    e = np.array([], dtype=np.int64)
    dc = np.array([10, 20])
    b0, b1 = base.breakdown_s(e, e, dc), full.breakdown_s(e, e, dc)
    assert b0["other"] == 0.0
    assert b0["sampler"] == 0.0
    # a Llama layer: 2 norms, RoPE, SwiGLU, 2 residual adds; per pass: embedding + final norm
    want = L * (2 * 1e-6 + 2e-6 + 3e-6 + 2 * 4e-6) + 1e-6 + 5e-6
    assert b1["other"] == pytest.approx(want)
    assert b1["sampler"] == pytest.approx(7e-6)
    assert set(ELEMENTWISE_CALLS) == set(unit)
    assert full.iteration_time_s(e, e, dc) - base.iteration_time_s(e, e, dc) == pytest.approx(
        want + 7e-6
    )
    assert sum(full.breakdown_s(e, e, e).values()) == 0.0  # an empty batch costs nothing
