"""A whole decoder layer, and a one-layer model pass, as a framework runs them.

Operators ``decoder_layer`` (one layer) and ``decoder_pass`` (embedding, one layer, final
RMSNorm, LM head on the last position of each sequence, sampler: the smallest whole model).

The other operators are timed one at a time; the time of a layer is more than their sum by what
the framework adds around them (``sim/compute/framework_overhead.py`` fits that difference).
Two frameworks:

* ``transformers``: Hugging Face ``LlamaDecoderLayer`` (SDPA attention) with a ``DynamicCache``
  holding the layer's KV cache, called as ``LlamaModel`` calls it (rotary ``cos``/``sin``
  computed once per pass, outside the layer). Its cache appends by concatenation, copying the
  whole cache every step; q, k, v and gate, up are separate projections.
* ``torch``: the same layer written with the profiled operators (fused QKV and gate+up
  ``F.linear``, RoPE, SDPA with GQA, SwiGLU), writing the new K/V **in place** into a
  preallocated cache, as a paged serving engine does (vLLM, Kwon et al. 2023).

Shapes (:class:`~edgetwin.kernels.ops.base.Shape`): a decode step of ``batch_size`` sequences
with ``context_len`` cached tokens each (``n_tokens == batch_size``), or one prefill chunk of
``n_tokens`` tokens over ``context_len`` cached tokens (``batch_size == 1``). After each timed
call the cache is cut back to ``context_len`` tokens, so every call sees the same state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

import torch
from torch.nn import functional as F  # noqa: N812 (the PyTorch convention)

from edgetwin.kernels import hf
from edgetwin.kernels.models import ModelSpec
from edgetwin.kernels.ops.base import OpSpec, Shape, randn
from edgetwin.kernels.ops.elementwise import RMS_EPS, _rotate_half
from edgetwin.kernels.ops.linear import gemm_dims

Framework = Literal["transformers", "torch"]
FRAMEWORKS: Final[tuple[Framework, ...]] = ("transformers", "torch")
NAME: Final[str] = "decoder_layer"
PASS_NAME: Final[str] = "decoder_pass"
#: Temperature of the sampler step (as ``ops/elementwise.py``'s ``sampler``).
TEMPERATURE: Final[float] = 0.8

DECODE_BATCH_FULL: Final[tuple[int, ...]] = (1, 2, 4, 8, 16)
DECODE_CTX_FULL: Final[tuple[int, ...]] = (128, 512, 1024, 2048)
#: (chunk tokens, cached context) of the prefill rows.
PREFILL_FULL: Final[tuple[tuple[int, int], ...]] = (
    (16, 0),
    (64, 0),
    (256, 0),
    (1024, 0),
    (256, 1024),
)
DECODE_QUICK: Final[tuple[tuple[int, int], ...]] = ((1, 128), (4, 1024), (16, 512))
PREFILL_QUICK: Final[tuple[tuple[int, int], ...]] = ((64, 0), (256, 0))
LAYER_GEMMS: Final[tuple[str, ...]] = ("linear_qkv", "linear_o", "linear_gate_up", "linear_down")


def _grid(model: ModelSpec, quick: bool) -> list[Shape]:
    decode = (
        DECODE_QUICK if quick else tuple((b, c) for b in DECODE_BATCH_FULL for c in DECODE_CTX_FULL)
    )
    prefill = PREFILL_QUICK if quick else PREFILL_FULL
    return [Shape(n_tokens=b, batch_size=b, context_len=c) for b, c in decode] + [
        Shape(n_tokens=n, batch_size=1, context_len=c) for n, c in prefill
    ]


def _is_decode(shape: Shape) -> bool:
    return shape.n_tokens == shape.batch_size


def _weight_elements(model: ModelSpec) -> int:
    """Weights of one layer: the four GEMMs and two RMSNorm vectors."""
    return sum(k * n for k, n in (gemm_dims(model, op) for op in LAYER_GEMMS)) + (
        2 * model.hidden_size
    )


def _attended_keys(shape: Shape) -> float:
    """Query-key pairs: decode ``B (c + 1)``; a causal chunk ``n (c + (n + 1) / 2)``."""
    if _is_decode(shape):
        return float(shape.batch_size * (shape.context_len + 1))
    n = shape.n_tokens
    return n * (shape.context_len + (n + 1) / 2)


def _flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Layer FLOPs: GEMMs ``2 N W`` plus attention ``4 H d_h`` per query-key pair.

    Kaplan et al. 2020, §2.1 (GEMMs); Dao et al. 2022, §3.1 (attention). The elementwise work
    is negligible next to them.
    """
    return 2.0 * shape.n_tokens * _weight_elements(model) + (
        4.0 * model.n_heads * model.head_dim * _attended_keys(shape)
    )


def _kv_after(shape: Shape) -> int:
    """KV tokens cached after the call (all sequences)."""
    if _is_decode(shape):
        return shape.batch_size * (shape.context_len + 1)
    return shape.context_len + shape.n_tokens


def _bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """Weights once plus the KV cache read once (roofline; Pope et al. 2022)."""
    return float(elt * (_weight_elements(model) + 2 * model.kv_size * _kv_after(shape)))


def _pass_flops(model: ModelSpec, shape: Shape, elt: int) -> float:
    """One layer plus the LM head ``2 S d V`` over the ``S`` sequences' last positions."""
    return _flops(model, shape, elt) + 2.0 * shape.batch_size * model.hidden_size * (
        model.vocab_size
    )


def _vocab_weights(model: ModelSpec) -> int:
    """Embedding and LM head elements (one matrix when tied)."""
    return (1 if model.tie_embeddings else 2) * model.vocab_size * model.hidden_size


def _pass_bytes(model: ModelSpec, shape: Shape, elt: int) -> float:
    """The layer's traffic plus the LM head's weights (the embedding reads a few rows)."""
    return _bytes(model, shape, elt) + float(elt * model.vocab_size * model.hidden_size)


def _pass_footprint(model: ModelSpec, shape: Shape, elt: int) -> float:
    """The layer's operands plus the embedding and LM head matrices."""
    return _bytes(model, shape, elt) + float(elt * _vocab_weights(model))


def _sample(logits: torch.Tensor) -> torch.Tensor:
    """One token per sequence from ``[S, V]`` logits: temperature softmax, argmax."""
    return torch.argmax(torch.softmax(logits / TEMPERATURE, dim=-1), dim=-1)


# ----------------------------------------------------------------------------------- torch
def _torch_pass_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype
) -> Callable[[], object]:
    layer = _torch_runner(model, shape, device, dtype)
    b = shape.batch_size
    n = 1 if _is_decode(shape) else shape.n_tokens
    d, v = model.hidden_size, model.vocab_size
    embedding = randn((v, d), device, dtype)  # [V, d]
    head = embedding if model.tie_embeddings else randn((v, d), device, dtype)  # [V, d]
    final_norm = randn((d,), device, dtype)  # [d]
    ids = torch.randint(0, v, (b, n), device=device)  # [B, n]

    def run() -> object:
        hs = layer(F.embedding(ids, embedding))[:, -1]  # [B, d]: the last positions only
        hs = final_norm * (hs * torch.rsqrt(hs.pow(2).mean(-1, keepdim=True) + RMS_EPS))
        return _sample(F.linear(hs, head))

    return run


def _torch_runner(
    model: ModelSpec,
    shape: Shape,
    device: torch.device,
    dtype: torch.dtype,
) -> Callable[..., torch.Tensor]:
    d, dh, h, hkv = model.hidden_size, model.head_dim, model.n_heads, model.n_kv_heads
    w = {op: randn(gemm_dims(model, op)[::-1], device, dtype) for op in LAYER_GEMMS}  # [N, K]
    norm1, norm2 = randn((d,), device, dtype), randn((d,), device, dtype)  # [d]
    decode = _is_decode(shape)
    b = shape.batch_size
    n = 1 if decode else shape.n_tokens  # new tokens per sequence
    c = shape.context_len
    x = randn((b, n, d), device, dtype)  # [B, n, d]
    cos, sin = randn((n, dh), device, dtype), randn((n, dh), device, dtype)  # [n, d_h]
    k_cache = randn((b, hkv, c + n, dh), device, dtype)  # [B, H_kv, c + n, d_h]
    v_cache = randn((b, hkv, c + n, dh), device, dtype)
    # a chunk over cached tokens: query i sees keys j <= c + i (bottom-right causal)
    mask = None if decode or c == 0 else torch.ones((n, c + n), dtype=torch.bool).tril(c)
    mask = mask.to(device) if mask is not None else None
    q_size, kv = model.q_size, model.kv_size

    def rms(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + RMS_EPS))

    def run(x: torch.Tensor = x) -> torch.Tensor:
        hs = rms(x, norm1)
        q, k, v = F.linear(hs, w["linear_qkv"]).split((q_size, kv, kv), dim=-1)
        q = q.view(b, n, h, dh).transpose(1, 2)  # [B, H, n, d_h]
        k = k.view(b, n, hkv, dh).transpose(1, 2)  # [B, H_kv, n, d_h]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        k_cache[:, :, c : c + n] = k  # in place, as a paged KV cache
        v_cache[:, :, c : c + n] = v.view(b, n, hkv, dh).transpose(1, 2)
        att = F.scaled_dot_product_attention(
            q, k_cache, v_cache, attn_mask=mask, is_causal=not decode and c == 0, enable_gqa=True
        )
        hs = x + F.linear(att.transpose(1, 2).reshape(b, n, q_size), w["linear_o"])
        gate, up = F.linear(rms(hs, norm2), w["linear_gate_up"]).chunk(2, dim=-1)
        out: torch.Tensor = hs + F.linear(F.silu(gate) * up, w["linear_down"])
        return out

    return run


# ---------------------------------------------------------------------------- transformers
def _one_layer_cache(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any, int, int, int]:
    """A one-layer config of ``model`` and a ``DynamicCache`` holding the shape's cached tokens.

    Returns ``(config, cache, batch, new tokens per sequence, cached tokens)``.
    """
    b = shape.batch_size
    n = 1 if _is_decode(shape) else shape.n_tokens
    c = shape.context_len
    config = hf.llama_config(dataclasses.replace(model, n_layers=1), max_context=c + n)
    cache = hf.new_cache(config)
    if c:  # the cached tokens' K/V (values do not matter)
        kv_shape = (b, model.n_kv_heads, c, model.head_dim)
        cache.update(randn(kv_shape, device, dtype), randn(kv_shape, device, dtype), 0)
    return config, cache, b, n, c


def _transformers_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype
) -> Callable[[], object]:
    classes = hf.classes()
    decode = _is_decode(shape)
    config, cache, b, n, c = _one_layer_cache(model, shape, device, dtype)
    layer = classes.layer_cls(config, layer_idx=0).to(device=device, dtype=dtype).eval()
    x = randn((b, n, model.hidden_size), device, dtype)  # [B, n, d]
    position_ids = torch.arange(c, c + n, device=device).expand(b, n)  # [B, n]
    rotary = classes.rotary_cls(config=config).to(device)
    cos, sin = rotary(x, position_ids)  # once per pass in LlamaModel, not per layer
    mask = None  # decode, and a chunk from an empty cache: SDPA's own causal masking
    if not decode and c:
        mask = torch.ones((n, c + n), dtype=torch.bool, device=device).tril(c)[None, None]
    kwargs = {
        "attention_mask": mask,
        "position_ids": position_ids,
        hf.cache_kwarg(layer.forward): cache,
        "use_cache": True,
        "position_embeddings": (cos, sin),
    }

    def run() -> object:
        out = layer(x, **kwargs)
        cache.crop(-n)  # back to the cached tokens: every call sees the same state
        return out

    return run


def _transformers_pass_runner(
    model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype
) -> Callable[[], object]:
    config, cache, b, n, _ = _one_layer_cache(model, shape, device, dtype)
    net = hf.classes().model_cls(config).to(device=device, dtype=dtype).eval()
    ids = torch.randint(0, model.vocab_size, (b, n), device=device)  # [B, n]
    kwargs = {"input_ids": ids, "use_cache": True, hf.cache_kwarg(net.forward): cache}
    kwargs |= hf.last_logits_kwarg(net.forward)

    def run() -> object:
        out = net(**kwargs)
        cache.crop(-n)
        return _sample(out.logits[:, -1, :])

    return run


_RUNNERS: Final[dict[tuple[str, Framework], Callable[..., Callable[..., object]]]] = {
    (NAME, "torch"): _torch_runner,
    (NAME, "transformers"): _transformers_runner,
    (PASS_NAME, "torch"): _torch_pass_runner,
    (PASS_NAME, "transformers"): _transformers_pass_runner,
}


def spec(framework: Framework, name: str = NAME) -> OpSpec:
    """The ``decoder_layer`` (or ``decoder_pass``) operator timed under ``framework``.

    Raises:
        ValueError: Unknown framework or operator.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if name not in (NAME, PASS_NAME):
        raise ValueError(f"operator must be {NAME} or {PASS_NAME}, got {name!r}")
    build = _RUNNERS[(name, framework)]

    def make_runner(
        model: ModelSpec, shape: Shape, device: torch.device, dtype: torch.dtype, workdir: Path
    ) -> Callable[[], object]:
        return build(model, shape, device, dtype)

    if name == NAME:
        return OpSpec(NAME, _grid, _flops, _bytes, make_runner)
    return OpSpec(PASS_NAME, _grid, _pass_flops, _pass_bytes, make_runner, _pass_footprint)


def framework_specs(framework: Framework) -> dict[str, OpSpec]:
    """The operators whose runner depends on the framework, by name."""
    return {name: spec(framework, name) for name in (NAME, PASS_NAME)}


def resolve_framework(framework: str) -> Framework:
    """``auto`` -> ``transformers`` when it is installed, else ``torch``; others checked.

    Raises:
        ValueError: Not ``auto``, ``transformers`` or ``torch``.
        TransformersMissingError: ``transformers`` asked for and not installed.
    """
    if framework == "auto":
        return "transformers" if hf.available() else "torch"
    if framework not in FRAMEWORKS:
        raise ValueError(
            f"framework must be one of auto, {', '.join(FRAMEWORKS)}, got {framework!r}"
        )
    if framework == "transformers":
        hf.classes()  # one line naming the install command when it is missing
    return framework  # type: ignore[return-value]


#: The default specs in ``OP_SPECS`` (``profile(framework=...)`` swaps in the chosen ones).
SPECS = tuple(framework_specs("torch").values())
