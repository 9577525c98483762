"""Per-group asymmetric int8/int4/int2 quantization of one layer's KV cache (KIVI-style).

Groups of ``GROUP_SIZE`` consecutive channels share a scale and a zero point (min/max); codes
narrower than 8 bits are packed into ``uint8`` (Liu et al. 2024, KIVI; Hooper et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn

GROUP_SIZE = 64
BITS = (8, 4, 2)
CTX_FULL = (256, 512, 1024, 2048, 4096, 8192, 16384)
CTX_QUICK = (64, 256)
#: Element-wise FLOPs per value: quantize (min/max, subtract, scale, round, clamp) and dequantize.
QUANT_FLOPS_PER_ELT = 5.0
DEQUANT_FLOPS_PER_ELT = 2.0


def quantize(
    x: torch.Tensor, bits: int, group_size: int = GROUP_SIZE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize ``x`` per group of ``group_size`` values to ``bits`` bits, packed in bytes.

    Args:
        x: Values, any shape with ``numel`` divisible by ``group_size * 8 / bits``.
        bits: 8, 4 or 2.
        group_size: Values per (scale, zero) pair.

    Returns:
        ``(packed, scale, zero)``: ``packed`` uint8 of shape ``[numel * bits / 8]``;
        ``scale`` and ``zero`` of shape ``[numel / group_size, 1]`` in ``x.dtype``.
    """
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")
    g = x.reshape(-1, group_size)  # [G, group]
    lo = g.amin(dim=1, keepdim=True)
    hi = g.amax(dim=1, keepdim=True)
    levels = (1 << bits) - 1
    scale = ((hi - lo) / levels).clamp_min(1e-8)
    q = ((g - lo) / scale).round_().clamp_(0, levels).to(torch.uint8).reshape(-1)  # [N]
    per_byte = 8 // bits
    if per_byte > 1:
        q = q.reshape(-1, per_byte)  # [N / per_byte, per_byte]
        shifts = torch.arange(per_byte, device=x.device, dtype=torch.uint8) * bits
        q = (q << shifts).sum(dim=1, dtype=torch.uint8)
    return q, scale, lo


def dequantize(
    packed: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """Inverse of :func:`quantize`; returns values of shape ``[numel]`` in ``scale.dtype``."""
    per_byte = 8 // bits
    if per_byte > 1:
        shifts = torch.arange(per_byte, device=packed.device, dtype=torch.uint8) * bits
        mask = (1 << bits) - 1
        codes = (packed.unsqueeze(1) >> shifts) & mask  # [N / per_byte, per_byte]
    else:
        codes = packed
    g = codes.reshape(scale.shape[0], -1).to(scale.dtype)  # [G, group]
    return (g * scale + zero).reshape(-1)


def _grid(model: ModelSpec, quick: bool) -> list[Shape]:
    return [Shape(context_len=c, bits=b) for b in BITS for c in (CTX_QUICK if quick else CTX_FULL)]


def _numel(model: ModelSpec, shape: Shape) -> int:
    # K and V of one layer: 2 * c * H_kv * d_h values.
    return 2 * shape.context_len * model.kv_size


def _packed_bytes(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    n = _numel(model, shape)
    return n * shape.bits / 8 + 2 * (n / GROUP_SIZE) * elt_bytes


def _make(op: str) -> OpSpec:
    quant = op == "kv_quantize"

    def flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
        """Element-wise count: ~5 FLOPs/value to quantize, 2 to dequantize (KIVI, Liu 2024)."""
        per = QUANT_FLOPS_PER_ELT if quant else DEQUANT_FLOPS_PER_ELT
        return per * _numel(model, shape)

    def bytes_moved(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
        """``e N + N b / 8 + 2 e N / g``: full-precision side, packed codes, scales and zeros."""
        return elt_bytes * _numel(model, shape) + _packed_bytes(model, shape, elt_bytes)

    def make_runner(
        model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
    ) -> Callable[[], object]:
        kv = randn((2, shape.context_len, model.kv_size), device, dtype)  # [2, c, H_kv d_h]
        if quant:
            return lambda: quantize(kv, shape.bits)
        packed, scale, zero = quantize(kv, shape.bits)
        return lambda: dequantize(packed, scale, zero, shape.bits)

    return OpSpec(op, _grid, flops, bytes_moved, make_runner)


SPECS = (_make("kv_quantize"), _make("kv_dequantize"))
