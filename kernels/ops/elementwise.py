"""The non-GEMM operators of a Llama forward: norms, RoPE, SwiGLU, residuals, embedding, sampler.

Each is timed one call at a time, as the model runs it (Hugging Face ``LlamaDecoderLayer``):
per layer two RMSNorms, RoPE on q and k, one SiLU(gate)·up and two residual adds; per pass one
embedding lookup and a final RMSNorm; per iteration one sampler call over the sequences' logits.
They are memory-bound, so ``bytes_moved`` (read inputs once, write outputs once) is the
quantity that predicts them; their FLOPs are counted for the record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn
from edgetwin.kernels.ops.linear import LM_HEAD_FULL, LM_HEAD_QUICK, TOKENS_FULL, TOKENS_QUICK

#: RMSNorm epsilon of the Llama / SmolLM configs (``rms_norm_eps``).
RMS_EPS = 1e-5


def _tokens_grid(model: ModelSpec, quick: bool) -> list[Shape]:
    return [Shape(n_tokens=n) for n in (TOKENS_QUICK if quick else TOKENS_FULL)]


def _batch_grid(model: ModelSpec, quick: bool) -> list[Shape]:
    return [Shape(n_tokens=b, batch_size=b) for b in (LM_HEAD_QUICK if quick else LM_HEAD_FULL)]


# ----------------------------------------------------------------------------------------
# RMSNorm: y = x / sqrt(mean(x²) + eps) · w over d (Zhang & Sennrich 2019)
# ----------------------------------------------------------------------------------------
def _rmsnorm_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """RMSNorm FLOPs ``4 N d`` (square, sum, scale, weight; Zhang & Sennrich 2019, eq. 4)."""
    return 4.0 * shape.n_tokens * model.hidden_size


def _rmsnorm_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """RMSNorm traffic ``e (2 N d + d)``: read x and w, write y (roofline)."""
    d = model.hidden_size
    return float(elt * (2 * shape.n_tokens * d + d))


def _rmsnorm_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    x = randn((shape.n_tokens, model.hidden_size), device, dtype)  # [N, d]
    w = randn((model.hidden_size,), device, dtype)  # [d]

    def run() -> object:
        var = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(var + RMS_EPS))

    return run


# ----------------------------------------------------------------------------------------
# RoPE on q and k (Su et al. 2021, "RoFormer", eq. 34: x·cos + rotate_half(x)·sin)
# ----------------------------------------------------------------------------------------
def _rope_width(model: ModelSpec) -> int:
    return model.q_size + model.kv_size  # q and k elements per token


def _rope_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """RoPE FLOPs ``3 N (q + k)``: two multiplies and an add per element (Su et al. 2021)."""
    return 3.0 * shape.n_tokens * _rope_width(model)


def _rope_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """RoPE traffic ``e (2 N (q + k) + 2 N d_h)``: read and write q, k; read cos, sin."""
    n = shape.n_tokens
    return float(elt * (2 * n * _rope_width(model) + 2 * n * model.head_dim))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def _rope_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    n, dh = shape.n_tokens, model.head_dim
    q = randn((model.n_heads, n, dh), device, dtype)  # [H, N, d_h]
    k = randn((model.n_kv_heads, n, dh), device, dtype)  # [H_kv, N, d_h]
    cos = randn((n, dh), device, dtype)  # [N, d_h]
    sin = randn((n, dh), device, dtype)  # [N, d_h]

    def run() -> object:
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin

    return run


# ----------------------------------------------------------------------------------------
# SwiGLU activation: silu(gate) · up (Shazeer 2020, "GLU Variants Improve Transformer")
# ----------------------------------------------------------------------------------------
def _silu_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """SiLU(g)·u FLOPs ``5 N I``: sigmoid (~3), two multiplies per element (Shazeer 2020)."""
    return 5.0 * shape.n_tokens * model.intermediate_size


def _silu_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """SwiGLU traffic ``e (2 N I + N I)``: read gate and up, write the product."""
    return float(elt * 3 * shape.n_tokens * model.intermediate_size)


def _silu_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    gate_up = randn((shape.n_tokens, 2 * model.intermediate_size), device, dtype)  # [N, 2I]
    gate, up = gate_up.chunk(2, dim=-1)

    def run() -> object:
        return torch.nn.functional.silu(gate) * up

    return run


# ----------------------------------------------------------------------------------------
# Residual add: x + y over d
# ----------------------------------------------------------------------------------------
def _residual_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Residual add FLOPs ``N d``."""
    return float(shape.n_tokens * model.hidden_size)


def _residual_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Residual add traffic ``3 e N d``: read two, write one."""
    return float(elt * 3 * shape.n_tokens * model.hidden_size)


def _residual_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    x = randn((shape.n_tokens, model.hidden_size), device, dtype)  # [N, d]
    y = randn((shape.n_tokens, model.hidden_size), device, dtype)  # [N, d]

    def run() -> object:
        return x + y

    return run


# ----------------------------------------------------------------------------------------
# Embedding lookup: one row of the [V, d] table per token
# ----------------------------------------------------------------------------------------
def _embedding_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """An embedding lookup is a gather: no FLOPs."""
    return 0.0


def _embedding_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Embedding traffic ``2 e N d + 8 N``: read N rows, write them, read int64 ids."""
    return float(2 * elt * shape.n_tokens * model.hidden_size + 8 * shape.n_tokens)


def _embedding_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    table = randn((model.vocab_size, model.hidden_size), device, dtype)  # [V, d]
    ids = torch.randint(0, model.vocab_size, (shape.n_tokens,), device=device)  # [N]

    def run() -> object:
        return torch.nn.functional.embedding(ids, table)

    return run


# ----------------------------------------------------------------------------------------
# Sampler: temperature, softmax and the pick of one token per sequence over the vocabulary
# ----------------------------------------------------------------------------------------
def _sampler_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Sampler FLOPs ``5 B V``: scale, max, exp, sum and normalize per logit."""
    return 5.0 * shape.batch_size * model.vocab_size


def _sampler_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Sampler traffic ``2 e B V``: read the logits, write the probabilities."""
    return float(2 * elt * shape.batch_size * model.vocab_size)


def _sampler_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
) -> Callable[[], object]:
    logits = randn((shape.batch_size, model.vocab_size), device, dtype)  # [B, V]

    def run() -> object:
        probs = torch.softmax(logits / 0.8, dim=-1)  # a temperature, as a serving engine applies
        return torch.argmax(probs, dim=-1)

    return run


SPECS = (
    OpSpec("rmsnorm", _tokens_grid, _rmsnorm_flops, _rmsnorm_bytes, _rmsnorm_runner),
    OpSpec("rope", _tokens_grid, _rope_flops, _rope_bytes, _rope_runner),
    OpSpec("silu_mul", _tokens_grid, _silu_flops, _silu_bytes, _silu_runner),
    OpSpec("residual_add", _tokens_grid, _residual_flops, _residual_bytes, _residual_runner),
    OpSpec(
        "embedding",
        _tokens_grid,
        _embedding_flops,
        _embedding_bytes,
        _embedding_runner,
        footprint=lambda m, s, e: float(e * m.vocab_size * m.hidden_size),  # the whole table
    ),
    OpSpec("sampler", _batch_grid, _sampler_flops, _sampler_bytes, _sampler_runner),
)
