"""Multi-LoRA shrink (``x A``, d -> r) and expand (``h B``, r -> d) with per-request adapters.

Batched like Punica's SGMV / S-LoRA (Chen et al. 2023; Sheng et al. 2023): the adapters of the
batch are gathered from a pool by request index, then one ``torch.bmm`` applies them. The target
is a ``d x d`` projection of one layer (e.g. ``q_proj``); the ``n_tokens`` tokens are split
evenly over the ``batch_size`` requests, each with its own adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn

RANKS_FULL = (4, 8, 16, 32, 64)
BATCH_FULL = (1, 2, 4, 8, 16)
TOKENS_FULL = (16, 32, 64, 128, 256, 512)
QUICK = ((16, 2, 8), (64, 4, 16))  # (n_tokens, batch_size, rank)
#: Adapters resident in the pool the batch gathers from.
POOL_SIZE = 32


def _grid(model: ModelSpec, quick: bool) -> list[Shape]:
    if quick:
        return [Shape(n_tokens=n, batch_size=b, rank=r) for n, b, r in QUICK]
    return [
        Shape(n_tokens=n, batch_size=b, rank=r)
        for r in RANKS_FULL
        for b in BATCH_FULL
        for n in TOKENS_FULL
        if n % b == 0
    ]


def _flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``2 n d r`` for either direction (a GEMM of n x d by d x r; Hu et al. 2021, LoRA)."""
    return 2.0 * shape.n_tokens * model.hidden_size * shape.rank


def _bytes(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``e (n d + n r + 3 B d r)``: activations in/out; gather (read+write), read of B adapters."""
    d, r = model.hidden_size, shape.rank
    return float(elt_bytes * (shape.n_tokens * (d + r) + 3 * shape.batch_size * d * r))


def _make(op: str) -> OpSpec:
    shrink = op == "lora_shrink"

    def make_runner(
        model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
    ) -> Callable[[], object]:
        b, r, d = shape.batch_size, shape.rank, model.hidden_size
        if shape.n_tokens % b:
            raise ValueError(
                f"{op}: n_tokens ({shape.n_tokens}) must be a multiple of batch_size ({b})"
            )
        t = shape.n_tokens // b
        d_in, d_out = (d, r) if shrink else (r, d)
        pool = randn((POOL_SIZE, d_in, d_out), device, dtype)  # [P, d_in, d_out] adapters
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(0, POOL_SIZE, (b,), generator=gen).to(device)  # [B] adapter per request
        x = randn((b, t, d_in), device, dtype)  # [B, n/B, d_in]

        def run() -> object:
            return torch.bmm(x, pool.index_select(0, idx))  # [B, n/B, d_out]

        return run

    return OpSpec(op, _grid, _flops, _bytes, make_runner)


SPECS = (_make("lora_shrink"), _make("lora_expand"))
