"""Attention of one layer: chunked causal prefill over a cache, and batched decode.

FLOPs count the two matmuls ``Q K^T`` and ``P V`` (``4 d_h`` FLOPs per query-key pair and head;
Dao et al. 2022, FlashAttention §3.1), over the causal pairs only; softmax is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.functional import scaled_dot_product_attention as sdpa

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn

PREFILL_TOKENS_FULL = (16, 32, 64, 128, 256, 512, 1024, 2048)
PREFILL_CTX_FULL = (0, 128, 256, 512, 1024, 2048)
PREFILL_TOKENS_QUICK = (8, 32)
PREFILL_CTX_QUICK = (0, 32)
DECODE_BATCH_FULL = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
DECODE_CTX_FULL = (128, 256, 512, 1024, 2048, 3072, 4096)
DECODE_QUICK = ((1, 32), (2, 64))
#: Cap on batch * context for decode grids (memory of the KV cache on a small host).
DECODE_MAX_KV_TOKENS = 65536


def causal_pairs(n_tokens: int, context_len: int) -> int:
    """Query-key pairs of a causal chunk: ``n c + n (n + 1) / 2`` (token i sees c + i + 1 keys)."""
    return n_tokens * context_len + n_tokens * (n_tokens + 1) // 2


# ----------------------------------------------------------------------------------------
# Prefill
# ----------------------------------------------------------------------------------------
def _prefill_grid(model: ModelSpec, quick: bool) -> list[Shape]:
    toks, ctxs = (
        (PREFILL_TOKENS_QUICK, PREFILL_CTX_QUICK)
        if quick
        else (PREFILL_TOKENS_FULL, PREFILL_CTX_FULL)
    )
    return [Shape(n_tokens=n, context_len=c) for n in toks for c in ctxs]


def _prefill_flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``4 H d_h P`` with P the causal query-key pairs (Dao et al. 2022, §3.1)."""
    return 4.0 * model.n_heads * model.head_dim * causal_pairs(shape.n_tokens, shape.context_len)


def _prefill_bytes(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``e (2 n H d_h + 2 (c + n) H_kv d_h)``: read Q, write O, read K and V once (IO-aware)."""
    n, c = shape.n_tokens, shape.context_len
    return float(elt_bytes * (2 * n * model.q_size + 2 * (c + n) * model.kv_size))


def _prefill_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    n, c = shape.n_tokens, shape.context_len
    q = randn((1, model.n_heads, n, model.head_dim), device, dtype)  # [1, H, n, d_h]
    k = randn((1, model.n_kv_heads, c + n, model.head_dim), device, dtype)  # [1, H_kv, c+n, d_h]
    v = randn((1, model.n_kv_heads, c + n, model.head_dim), device, dtype)
    gqa = model.n_kv_heads != model.n_heads
    if c == 0:

        def run() -> object:
            return sdpa(q, k, v, is_causal=True, enable_gqa=gqa)

        return run
    # SDPA's is_causal aligns top-left when n != c + n; a chunk needs bottom-right alignment.
    # [n, c + n]: query i sees keys j <= c + i
    mask = torch.ones((n, c + n), device=device, dtype=torch.bool).tril(diagonal=c)

    def run_masked() -> object:
        return sdpa(q, k, v, attn_mask=mask, enable_gqa=gqa)

    return run_masked


# ----------------------------------------------------------------------------------------
# Decode
# ----------------------------------------------------------------------------------------
def _decode_grid(model: ModelSpec, quick: bool) -> list[Shape]:
    if quick:
        return [Shape(n_tokens=b, batch_size=b, context_len=c) for b, c in DECODE_QUICK]
    return [
        Shape(n_tokens=b, batch_size=b, context_len=c)
        for b in DECODE_BATCH_FULL
        for c in DECODE_CTX_FULL
        if b * c <= DECODE_MAX_KV_TOKENS
    ]


def _decode_flops(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``4 B H d_h c``: one query per sequence against c keys (Dao et al. 2022, §3.1)."""
    return 4.0 * shape.batch_size * model.n_heads * model.head_dim * shape.context_len


def _decode_bytes(model: ModelSpec, shape: Shape, elt_bytes: int) -> float:
    """``e B (2 c H_kv d_h + 2 H d_h)``: the KV cache read once dominates (Pope et al. 2022)."""
    b, c = shape.batch_size, shape.context_len
    return float(elt_bytes * b * (2 * c * model.kv_size + 2 * model.q_size))


def _decode_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    b, c = shape.batch_size, shape.context_len
    q = randn((b, model.n_heads, 1, model.head_dim), device, dtype)  # [B, H, 1, d_h]
    # The KV cache of one layer: [2, B, H_kv, c, d_h]
    kv_cache = randn((2, b, model.n_kv_heads, c, model.head_dim), device, dtype)
    gqa = model.n_kv_heads != model.n_heads

    def run() -> object:
        return sdpa(q, kv_cache[0], kv_cache[1], enable_gqa=gqa)

    return run


SPECS = (
    OpSpec("attn_prefill", _prefill_grid, _prefill_flops, _prefill_bytes, _prefill_runner),
    OpSpec("attn_decode", _decode_grid, _decode_flops, _decode_bytes, _decode_runner),
)
