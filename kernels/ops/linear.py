"""GEMMs of one decoder layer (QKV, O, gate+up, down) and the LM head, run as ``nn.Linear``.

A GEMM ``[M, K] @ [K, N]`` costs ``2 M K N`` FLOPs and moves at least ``(M K + K N + M N)``
elements (read activations and weights once, write the output once).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn

# fmt: off
TOKENS_FULL = (
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
)
# fmt: on
TOKENS_QUICK = (1, 8, 64)
LM_HEAD_FULL = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
LM_HEAD_QUICK = (1, 4)


def gemm_dims(model: ModelSpec, op: str) -> tuple[int, int]:
    """Return ``(K, N)`` of the weight of ``op`` (input and output widths).

    Args:
        model: Model dimensions.
        op: One of ``linear_qkv``, ``linear_o``, ``linear_gate_up``, ``linear_down``,
            ``lm_head``.
    """
    d = model.hidden_size
    dims = {
        "linear_qkv": (d, model.q_size + 2 * model.kv_size),
        "linear_o": (model.q_size, d),
        "linear_gate_up": (d, 2 * model.intermediate_size),
        "linear_down": (model.intermediate_size, d),
        "lm_head": (d, model.vocab_size),
    }
    return dims[op]


def _rows(op: str, shape: Shape) -> int:
    # The LM head runs on the last token of each sequence only.
    return shape.batch_size if op == "lm_head" else shape.n_tokens


def _make(op: str) -> OpSpec:
    def grid(model: ModelSpec, quick: bool) -> list[Shape]:
        if op == "lm_head":
            return [
                Shape(n_tokens=b, batch_size=b) for b in (LM_HEAD_QUICK if quick else LM_HEAD_FULL)
            ]
        return [Shape(n_tokens=n) for n in (TOKENS_QUICK if quick else TOKENS_FULL)]

    def flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
        """GEMM FLOPs ``2 M K N`` (one multiply-add = 2 FLOPs; Kaplan et al. 2020, §2.1)."""
        k, n = gemm_dims(model, op)
        return 2.0 * _rows(op, shape) * k * n

    def bytes_moved(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
        """GEMM traffic ``e (M K + K N + M N)`` (roofline model; Williams et al. 2009)."""
        k, n = gemm_dims(model, op)
        m = _rows(op, shape)
        return float(elt_bytes * (m * k + k * n + m * n))

    def make_runner(
        model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
    ) -> Callable[[], object]:
        k, n = gemm_dims(model, op)
        m = _rows(op, shape)
        x = randn((m, k), device, dtype)  # [M, K] activations
        # [N, K]: the layout of nn.Linear (y = x Wᵀ), as HF transformers and vLLM store weights;
        # oneDNN picks different kernels for x @ W[K, N] (up to 1.7x apart at 1-4 rows on CPU)
        w = randn((n, k), device, dtype)

        def run() -> object:
            return torch.nn.functional.linear(x, w)

        return run

    return OpSpec(op, grid, flops, bytes_moved, make_runner)


SPECS = tuple(
    _make(op) for op in ("linear_qkv", "linear_o", "linear_gate_up", "linear_down", "lm_head")
)
