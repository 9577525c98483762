"""Iteration cost models: the time one batched forward pass of an LLM takes.

One iteration (vLLM-style continuous batching) runs a batch made of

* ``n_prefill`` prefill chunks: chunk i computes ``prefill_tokens[i]`` new tokens of a sequence
  that already has ``prefill_context[i]`` tokens in its KV cache (0 for a fresh prompt);
* ``n_decode`` decode sequences: each computes one new token attending to
  ``decode_context[j]`` KV tokens (its cached tokens plus the new one).

Every model implements :class:`CostModel` on those three integer arrays; arrays rather than a
batch object keep the server's per-iteration call cheap and let table models vectorize.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from edgetwin.sim.types import IntArray


class CostModel(Protocol):
    """Time of one iteration of a batch (see the module docstring for the batch layout)."""

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """Seconds taken by one iteration.

        Args:
            prefill_tokens: New tokens of each prefill chunk, shape [n_prefill], >= 1.
            prefill_context: KV tokens already cached before each chunk, shape [n_prefill].
            decode_context: KV tokens each decode sequence attends to, shape [n_decode], >= 1.
        """
        ...

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """Per-operator seconds of the same iteration; they sum to ``iteration_time_s``."""
        ...


@dataclass(frozen=True, slots=True)
class LinearCostModel:
    """Affine cost, for tests and queueing validation.

    ``t = a_s + b_s_per_token·N_tok + c_s_per_seq·N_seq + d_s_per_kv_token·N_kv`` with
    ``N_tok = Σ prefill_tokens + n_decode`` (new tokens), ``N_seq = n_prefill + n_decode`` and
    ``N_kv = Σ (prefill_context + prefill_tokens) + Σ decode_context`` (KV tokens read).

    Attributes:
        a_s: Fixed time per iteration (s).
        b_s_per_token: Time per new token (s).
        c_s_per_seq: Time per sequence in the batch (s).
        d_s_per_kv_token: Time per KV token attended to (s).
    """

    a_s: float
    b_s_per_token: float = 0.0
    c_s_per_seq: float = 0.0
    d_s_per_kv_token: float = 0.0

    def __post_init__(self) -> None:
        if min(self.a_s, self.b_s_per_token, self.c_s_per_seq, self.d_s_per_kv_token) < 0:
            raise ValueError("LinearCostModel coefficients must be >= 0")

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """Terms of the affine cost: ``fixed``, ``tokens``, ``seqs``, ``kv``."""
        n_dec = len(decode_context)
        n_tok = int(prefill_tokens.sum()) + n_dec
        n_kv = int(prefill_context.sum()) + int(prefill_tokens.sum()) + int(decode_context.sum())
        return {
            "fixed": self.a_s,
            "tokens": self.b_s_per_token * n_tok,
            "seqs": self.c_s_per_seq * (len(prefill_tokens) + n_dec),
            "kv": self.d_s_per_kv_token * n_kv,
        }

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """Sum of :meth:`breakdown_s`."""
        return sum(self.breakdown_s(prefill_tokens, prefill_context, decode_context).values())


@dataclass(frozen=True, slots=True)
class TransformerDims:
    """Dimensions of a decoder-only transformer with grouped-query attention and a gated MLP.

    Attributes:
        hidden: Model width d.
        layers: Decoder layers L.
        heads: Query heads n_h.
        kv_heads: Key/value heads n_kv (GQA; = heads for MHA).
        head_dim: Width of one head d_h.
        intermediate: MLP width d_ff (gate, up: d→d_ff; down: d_ff→d).
        vocab: Vocabulary size V (LM head d→V).
        dtype_bytes: Bytes per weight / activation / KV element (2 for bf16).
    """

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    dtype_bytes: float = 2.0

    def __post_init__(self) -> None:
        if (
            min(
                self.hidden,
                self.layers,
                self.heads,
                self.kv_heads,
                self.head_dim,
                self.intermediate,
                self.vocab,
            )
            < 1
            or not self.dtype_bytes > 0
        ):
            raise ValueError(f"TransformerDims fields must be >= 1, got {self}")

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token over all layers: 2·L·n_kv·d_h·bytes."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    def gemm_kn(self, op: str) -> tuple[int, int]:
        """``(K, N)`` of the weight of a GEMM operator (``linear_*`` or ``lm_head``)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {
            "linear_qkv": (self.hidden, q + 2 * kv),
            "linear_o": (q, self.hidden),
            "linear_gate_up": (self.hidden, 2 * self.intermediate),
            "linear_down": (self.intermediate, self.hidden),
            "lm_head": (self.hidden, self.vocab),
        }[op]


#: Hugging Face ``config.json`` dimensions by model id: the numpy-side twin of
#: ``kernels/models.py`` (edgetwin.sim must not import the torch-side package;
#: ``tests/kernels/test_models.py`` checks that the two agree).
MODEL_DIMS: Final[dict[str, TransformerDims]] = {
    "smollm-135m": TransformerDims(576, 30, 9, 3, 64, 1536, 49152),
    "smollm-360m": TransformerDims(960, 32, 15, 5, 64, 2560, 49152),
    "smollm-1.7b": TransformerDims(2048, 24, 32, 32, 64, 8192, 49152),
    "llama-2-7b": TransformerDims(4096, 32, 32, 32, 128, 11008, 32000),
    "llama-3-8b": TransformerDims(4096, 32, 32, 8, 128, 14336, 128256),
    "llama-3.1-8b": TransformerDims(4096, 32, 32, 8, 128, 14336, 128256),
    "qwen2.5-7b": TransformerDims(3584, 28, 28, 4, 128, 18944, 152064),
}
#: Llama-3-8B (Meta, 2024 model card / config.json).
LLAMA3_8B = MODEL_DIMS["llama-3-8b"]


@dataclass(frozen=True, slots=True)
class RooflineCostModel:
    """Per-operator roofline: each operator takes ``max(FLOPs / peak_flops, bytes / bandwidth)``.

    Reference: Williams, Waterman, Patterson, "Roofline", CACM 2009 (attainable performance is
    bounded by peak compute and by memory bandwidth × arithmetic intensity).
    A GEMM of T tokens through a d_in×d_out weight costs 2·T·d_in·d_out FLOPs (so a forward
    pass is ≈ 2·params·tokens FLOPs, Kaplan et al. 2020) and moves its weights once plus its
    input and output activations: (d_in·d_out + T·(d_in + d_out))·bytes.

    Operators per layer (times L): ``qkv`` (d → (n_h + 2·n_kv)·d_h), ``o_proj`` (n_h·d_h → d),
    ``gate_up`` (d → 2·d_ff), ``down`` (d_ff → d), and attention:

    * prefill chunk of c tokens over p cached ones (causal): FLOPs = 4·n_h·d_h·c·(p + (c+1)/2)
      (QKᵀ and PV), bytes = (2·n_kv·d_h·(p + c) + 2·n_h·d_h·c)·bytes (KV read, Q in, O out);
    * decode over l KV tokens: FLOPs = 4·n_h·d_h·l, bytes = (2·n_kv·d_h·l + 2·n_h·d_h)·bytes.

    Attention of all sequences is one fused kernel per layer (FlashAttention/paged-attention
    style): its FLOPs and bytes are summed before the roofline max. ``lm_head`` (d → V) runs
    once per sequence (its last token). ``overhead_s`` is a fixed per-iteration cost (launch,
    scheduling, sampling). Norms, RoPE and residual adds are ignored (memory-bound and small).

    Args:
        dims: Model dimensions.
        peak_flops: Attainable dense FLOP/s of the device (e.g. ~312e12 for A100 bf16).
        mem_bandwidth_bytes_per_s: Attainable memory bandwidth (e.g. ~2.0e12 for A100-80GB).
        overhead_s: Fixed time per iteration.
    """

    dims: TransformerDims
    peak_flops: float
    mem_bandwidth_bytes_per_s: float
    overhead_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.peak_flops > 0 and self.mem_bandwidth_bytes_per_s > 0):
            raise ValueError("peak_flops and mem_bandwidth_bytes_per_s must be > 0")
        if self.overhead_s < 0:
            raise ValueError("overhead_s must be >= 0")

    def _gemm_s(self, n_tokens: float, d_in: int, d_out: int) -> float:
        if n_tokens <= 0:
            return 0.0
        flops = 2.0 * n_tokens * d_in * d_out
        nbytes = (d_in * d_out + n_tokens * (d_in + d_out)) * self.dims.dtype_bytes
        return max(flops / self.peak_flops, nbytes / self.mem_bandwidth_bytes_per_s)

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """Seconds per operator: ``qkv, attention, o_proj, gate_up, down, lm_head, overhead``."""
        m = self.dims
        pt = prefill_tokens.astype(np.float64)
        pc = prefill_context.astype(np.float64)
        dc = decode_context.astype(np.float64)
        n_seq = len(pt) + len(dc)
        n_tok = float(pt.sum()) + len(dc)
        q_dim = m.heads * m.head_dim
        kv_dim = m.kv_heads * m.head_dim
        # attention over the whole batch (one fused kernel per layer)
        attn_flops = 4.0 * q_dim * (float(np.dot(pt, pc + (pt + 1.0) / 2.0)) + float(dc.sum()))
        attn_elems = 2.0 * kv_dim * (float(pc.sum() + pt.sum()) + float(dc.sum())) + (
            2.0 * q_dim * n_tok
        )
        attn_s = 0.0
        if n_seq:
            attn_s = max(
                attn_flops / self.peak_flops,
                attn_elems * m.dtype_bytes / self.mem_bandwidth_bytes_per_s,
            )
        L = m.layers
        return {
            "qkv": L * self._gemm_s(n_tok, m.hidden, q_dim + 2 * kv_dim),
            "attention": L * attn_s,
            "o_proj": L * self._gemm_s(n_tok, q_dim, m.hidden),
            "gate_up": L * self._gemm_s(n_tok, m.hidden, 2 * m.intermediate),
            "down": L * self._gemm_s(n_tok, m.intermediate, m.hidden),
            "lm_head": self._gemm_s(float(n_seq), m.hidden, m.vocab),
            "overhead": self.overhead_s if n_seq else 0.0,
        }

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """Sum of :meth:`breakdown_s`."""
        return sum(self.breakdown_s(prefill_tokens, prefill_context, decode_context).values())


class ExponentialServiceCostModel:
    """Random iteration time ~ Exp(mean ``mean_s``), for M/M/1 validation only.

    Not a model of any hardware: it turns a replica with ``max_num_seqs = 1`` serving
    1-token prompts with 1-token outputs (one iteration per request) into an M/M/1 queue, whose
    mean wait is W_q = ρ/(μ − λ) (Kleinrock, Queueing Systems Vol. 1, 1975, §3.2). Each call of
    :meth:`iteration_time_s` draws exactly one variate from ``rng`` (the server calls it once
    per iteration); :meth:`breakdown_s` draws too, so do not call both for one iteration.

    Args:
        mean_s: Mean iteration time 1/μ (s), > 0.
        rng: Numpy generator the draws come from (e.g. ``sim.streams.get("service")``).
    """

    __slots__ = ("mean_s", "rng")

    def __init__(self, mean_s: float, rng: np.random.Generator) -> None:
        if not mean_s > 0:
            raise ValueError(f"mean_s must be > 0, got {mean_s}")
        self.mean_s = float(mean_s)
        self.rng = rng

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """One Exp(mean_s) draw, independent of the batch."""
        return float(self.rng.exponential(self.mean_s))

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """``{"iteration": <one fresh draw>}``."""
        return {"iteration": self.iteration_time_s(prefill_tokens, prefill_context, decode_context)}
