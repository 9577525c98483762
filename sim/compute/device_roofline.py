"""Published edge devices: a batch-1 decode roofline for hardware that cannot be run here.

The Jetson Orin Nano 8GB (original clocks) and the Orin Nano Super are known here only through
published decode rates: the 7-row table in ``public_profiles/jetson_ai_lab/`` (MLC, INT4, batch
size and prompt length not stated). A batch-1 decode step streams every weight it uses once, so
its time is bounded by memory bandwidth (Williams, Waterman, Patterson, "Roofline", CACM 2009)::

    t_token         = bytes_per_token / (η · B_peak)
    bytes_per_token = P_streamed · b_w / 8  +  c · kv_bytes_per_token

Here ``B_peak`` is the vendor's peak DRAM bandwidth and ``η`` one efficiency factor per device,
fitted on the table. ``b_w`` is bits per weight and ``c`` the number of KV tokens attended to.

Modelling choices:

* **Streamed parameters.** A decode step reads every decoder-layer weight and the whole LM head,
  but only one row of the input embedding. An untied model streams
  ``P_streamed = P_total − V·d``. A tied model reads its one matrix once per token, as the LM
  head, so ``P_streamed = P_total``. Norm weights and biases stay in ``P_total``: they are streamed
  and they are small.
* **Bits per weight.** The default is 4, the page's "INT4 quantization", and scale overhead is not
  modelled. MLC's ``q4f16_ft`` keeps one fp16 scale per output channel, which adds 16/K bits
  (< 0.01 bit for these models). Its group-32 fallback for the LM head, and ``q4f16_1``
  everywhere, add 0.5 bit. A uniform overhead is absorbed by ``η`` and changes no prediction.
  Only a difference between rows would matter, and the page does not say which variant each row
  used.
* **KV cache.** The cache is fp16, with 2·L·n_kv·d_h·2 bytes per token. The context defaults to
  ``c = 0``: the page states no prompt length. The linked ``jetson-containers`` script (one
  version) uses a short prompt file (``completion_16.json``) and 128 new tokens, so the context
  is of the order of 100 tokens. Each 100 tokens of context add 0.16-2.3 % to a row's bytes
  (2.3 %: SmolLM2-1.7B, whose KV heads are not grouped), so ``c = 0`` moves the fit by about 1 %.
* **Fit.** ``η`` is the least-squares fit in log space, ``log η = mean_i log r_i`` with
  ``r_i = tok/s_i · bytes_i / B_peak``, so it is the geometric mean of the per-row efficiencies.
  The model is multiplicative and its errors are relative, so this is the maximum-likelihood fit
  under log-normal errors. It has a closed form, is symmetric in over- and under-prediction, and
  recovers an exact factor exactly. The median ratio (``method="median"``) is offered for
  comparison; on this table it has the larger leave-one-out errors (see ``kernels/README.md``).
* **Prefill (not validated).** The table has no prefill rates. :class:`DeviceCostModel` times
  prefill on a compute roofline, ``max(bytes / (η·B_peak), FLOPs / (ε·F))``, where ``F`` is the
  dense fp16 tensor peak. The vendor gives sparse INT8 TOPS (40 for the Orin Nano 8GB, 67 for the
  Super). On Ampere, 2:4 sparsity doubles the INT8 rate and INT8 is twice fp16, so
  ``F = TOPS_int8_sparse / 4`` (10 and 16.75 TFLOP/s). MLC's ``q4f16`` GEMMs dequantize to fp16,
  which is why fp16 is the right peak. ``ε`` (``compute_efficiency``) defaults to 1, which makes
  prefill a **lower bound**: pass a measured MFU to use it as an estimate.

numpy only: this module is part of ``edgetwin.sim`` and must not import torch.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from edgetwin.sim.compute.cost_model import TransformerDims
from edgetwin.sim.types import IntArray

FitMethod = Literal["log_ls", "median"]

#: The shipped Jetson AI Lab table (copy of ``../shared/data/jetson_ai_lab``; see its README).
JETSON_AI_LAB_CSV: Final[Path] = (
    Path(__file__).resolve().parent
    / "public_profiles"
    / "jetson_ai_lab"
    / "orin_nano_super_llm_decode_tps.csv"
)


@dataclass(frozen=True, slots=True)
class EdgeDevice:
    """An edge accelerator known only from its datasheet.

    Attributes:
        name: Device id.
        mem_bandwidth_bytes_per_s: Vendor peak DRAM bandwidth (bytes/s).
        peak_int8_sparse_ops_per_s: Vendor AI performance: INT8 ops/s with 2:4 sparsity.
        note: Clocks / mode the figures refer to.
    """

    name: str
    mem_bandwidth_bytes_per_s: float
    peak_int8_sparse_ops_per_s: float
    note: str = ""

    def __post_init__(self) -> None:
        if not (self.mem_bandwidth_bytes_per_s > 0 and self.peak_int8_sparse_ops_per_s > 0):
            raise ValueError(f"EdgeDevice {self.name!r}: peaks must be > 0")

    @property
    def peak_fp16_dense_flops(self) -> float:
        """Dense fp16 tensor FLOP/s: sparse INT8 TOPS / 4 (Ampere: sparsity 2×, INT8 2× fp16)."""
        return self.peak_int8_sparse_ops_per_s / 4.0


#: Jetson Orin Nano 8GB at its original clocks (JetPack 6.0, 15 W): 68 GB/s, 40 sparse INT8 TOPS.
#: NVIDIA Jetson Orin Nano Series data sheet; NVIDIA Technical Blog, "NVIDIA Jetson Orin Nano
#: Developer Kit Gets a 'Super' Boost" (Dec 2024).
ORIN_NANO_8GB: Final = EdgeDevice(
    "jetson-orin-nano-8gb", 68e9, 40e12, "original clocks: GPU 625 MHz, LPDDR5 68 GB/s, 15 W"
)
#: Jetson Orin Nano Super (the same module at the clocks of JetPack 6.1 rev. 1 and later, 25 W):
#: 102 GB/s, 67 sparse INT8 TOPS. NVIDIA Technical Blog, "NVIDIA Jetson Orin Nano Developer Kit
#: Gets a 'Super' Boost" (Dec 2024), and the Jetson Orin Nano Super Developer Kit data sheet.
ORIN_NANO_SUPER: Final = EdgeDevice(
    "jetson-orin-nano-super", 102e9, 67e12, "Super clocks: GPU 1020 MHz, LPDDR5 102 GB/s, 25 W"
)
EDGE_DEVICES: Final[dict[str, EdgeDevice]] = {d.name: d for d in (ORIN_NANO_8GB, ORIN_NANO_SUPER)}

#: Table column of each device in the Jetson AI Lab CSV.
JETSON_AI_LAB_COLUMNS: Final[dict[str, str]] = {
    ORIN_NANO_8GB.name: "orin_nano_original_decode_tokens_per_s",
    ORIN_NANO_SUPER.name: "orin_nano_super_decode_tokens_per_s",
}


@dataclass(frozen=True, slots=True)
class EdgeModelSpec:
    """What a decode step streams: published parameter count plus the shapes that split it.

    Attributes:
        name: Model id.
        n_params: Published total parameter count (embeddings included).
        vocab: Vocabulary size V (``config.json``).
        hidden: Model width d.
        tied_embeddings: Input embedding and LM head share one matrix.
        layers: Decoder layers L.
        q_heads: Query heads n_h.
        kv_heads: Key/value heads n_kv.
        head_dim: Head width d_h.
    """

    name: str
    n_params: float
    vocab: int
    hidden: int
    tied_embeddings: bool
    layers: int
    q_heads: int
    kv_heads: int
    head_dim: int

    def __post_init__(self) -> None:
        if (
            min(self.vocab, self.hidden, self.layers, self.q_heads, self.kv_heads, self.head_dim)
            < 1
        ):
            raise ValueError(f"EdgeModelSpec {self.name!r}: dimensions must be >= 1")
        if not self.n_params > self.embedding_params:
            raise ValueError(f"EdgeModelSpec {self.name!r}: n_params must exceed V·d")

    @property
    def embedding_params(self) -> int:
        """V·d: one embedding matrix (= the LM head's size)."""
        return self.vocab * self.hidden

    @property
    def streamed_params(self) -> float:
        """Parameters read per decoded token: all but the input embedding (tied: all)."""
        return self.n_params if self.tied_embeddings else self.n_params - self.embedding_params

    def kv_bytes_per_token(self, kv_dtype_bytes: float = 2.0) -> float:
        """KV-cache bytes per token over all layers: 2·L·n_kv·d_h·bytes."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * kv_dtype_bytes

    @classmethod
    def from_dims(cls, name: str, dims: TransformerDims, tied_embeddings: bool) -> EdgeModelSpec:
        """Spec of a model known only by its dimensions (``cost_model.MODEL_DIMS``).

        Parameters are counted from the GEMMs plus one or two V·d matrices. Norms and biases are
        left out (< 0.1 % for these shapes).
        """
        q, kv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
        per_layer = (
            dims.hidden * (q + 2 * kv) + q * dims.hidden + 3 * dims.hidden * dims.intermediate
        )
        n_emb = (1 if tied_embeddings else 2) * dims.vocab * dims.hidden
        return cls(
            name,
            float(dims.layers * per_layer + n_emb),
            dims.vocab,
            dims.hidden,
            tied_embeddings,
            dims.layers,
            dims.heads,
            dims.kv_heads,
            dims.head_dim,
        )


#: The 7 models of the Jetson AI Lab table. ``n_params`` is the published total: the Hugging Face
#: model card / Hub size of meta-llama/Llama-3.1-8B (8.03 B), meta-llama/Llama-3.2-3B (3.21 B),
#: Qwen/Qwen2.5-7B (7.62 B; its card says 7.61 B, and the exact count from ``config.json`` is
#: 7.6156 B), google/gemma-2-2b (2.61 B), google/gemma-2-9b (9.24 B),
#: microsoft/Phi-3.5-mini-instruct (3.82 B) and HuggingFaceTB/SmolLM2-1.7B (1.71 B). Each count
#: matches the one computed from the model's ``config.json`` to 3 significant figures. The shapes
#: come from those ``config.json`` files.
EDGE_MODELS: Final[dict[str, EdgeModelSpec]] = {
    m.name: m
    for m in (
        EdgeModelSpec("llama-3.1-8b", 8.03e9, 128256, 4096, False, 32, 32, 8, 128),
        EdgeModelSpec("llama-3.2-3b", 3.21e9, 128256, 3072, True, 28, 24, 8, 128),
        EdgeModelSpec("qwen2.5-7b", 7.62e9, 152064, 3584, False, 28, 28, 4, 128),
        EdgeModelSpec("gemma-2-2b", 2.61e9, 256000, 2304, True, 26, 8, 4, 256),
        EdgeModelSpec("gemma-2-9b", 9.24e9, 256000, 3584, True, 42, 16, 8, 256),
        EdgeModelSpec("phi-3.5-mini", 3.82e9, 32064, 3072, False, 32, 32, 32, 96),
        EdgeModelSpec("smollm2-1.7b", 1.71e9, 49152, 2048, True, 24, 32, 32, 64),
    )
}

#: Jetson AI Lab table row name -> model id. The page's "SmolLM2" gives no size; it is assumed to
#: be the 1.7B, the largest SmolLM2. Its rate also points there: 41 tok/s at 68 GB/s is 0.52 of
#: peak for the 1.7B, but would be 0.11 for the 360M, far below every other row (0.41-0.77).
JETSON_AI_LAB_MODELS: Final[dict[str, str]] = {
    "Llama 3.1 8B": "llama-3.1-8b",
    "Llama 3.2 3B": "llama-3.2-3b",
    "Qwen2.5 7B": "qwen2.5-7b",
    "Gemma 2 2B": "gemma-2-2b",
    "Gemma 2 9B": "gemma-2-9b",
    "Phi 3.5 3B": "phi-3.5-mini",
    "SmolLM2": "smollm2-1.7b",
}


def bytes_per_token(
    spec: EdgeModelSpec,
    bits_per_weight: float = 4.0,
    context_tokens: int = 0,
    kv_dtype_bytes: float = 2.0,
) -> float:
    """Bytes one batch-1 decode step reads: ``P_streamed·b_w/8 + c·kv_bytes_per_token``."""
    if not bits_per_weight > 0 or context_tokens < 0 or not kv_dtype_bytes > 0:
        raise ValueError("bits_per_weight and kv_dtype_bytes must be > 0, context_tokens >= 0")
    weights = spec.streamed_params * bits_per_weight / 8.0
    return weights + context_tokens * spec.kv_bytes_per_token(kv_dtype_bytes)


@dataclass(frozen=True, slots=True)
class DecodeRow:
    """One measured batch-1 decode rate and the bytes per token the roofline assigns to it."""

    model: str
    bytes_per_token: float
    tokens_per_s: float


def load_jetson_ai_lab(
    device: EdgeDevice,
    *,
    path: Path | None = None,
    bits_per_weight: float = 4.0,
    context_tokens: int = 0,
) -> list[DecodeRow]:
    """Rows of the Jetson AI Lab table for ``device``, in file order, keyed by model id."""
    column = JETSON_AI_LAB_COLUMNS.get(device.name)
    if column is None:
        raise ValueError(f"no Jetson AI Lab column for device {device.name!r}")
    rows = []
    with open(path or JETSON_AI_LAB_CSV, newline="") as f:
        for rec in csv.DictReader(f):
            model_id = JETSON_AI_LAB_MODELS[rec["model"]]
            nbytes = bytes_per_token(EDGE_MODELS[model_id], bits_per_weight, context_tokens)
            rows.append(DecodeRow(model_id, nbytes, float(rec[column])))
    return rows


def predict_tokens_per_s(bytes_per_tok: float, device: EdgeDevice, efficiency: float) -> float:
    """Roofline decode rate: ``η · B_peak / bytes_per_token``."""
    return efficiency * device.mem_bandwidth_bytes_per_s / bytes_per_tok


def fit_efficiency(
    rows: Sequence[DecodeRow], device: EdgeDevice, method: FitMethod = "log_ls"
) -> float:
    """Bandwidth efficiency η fitted on ``rows`` (see the module docstring for the choice).

    Args:
        rows: Measured decode rates (at least one).
        device: The device they were measured on.
        method: ``"log_ls"`` (least squares on log tok/s = geometric mean of the per-row
            efficiencies, the default) or ``"median"`` (median per-row efficiency).
    """
    if not rows:
        raise ValueError("fit_efficiency needs at least one row")
    r = np.array([row.tokens_per_s * row.bytes_per_token for row in rows], dtype=np.float64)
    r /= device.mem_bandwidth_bytes_per_s
    if not np.all(r > 0):
        raise ValueError("tokens_per_s and bytes_per_token must be > 0")
    if method == "log_ls":
        return float(np.exp(np.mean(np.log(r))))
    if method == "median":
        return float(np.median(r))
    raise ValueError(f"method must be 'log_ls' or 'median', got {method!r}")


@dataclass(frozen=True, slots=True)
class LooResult:
    """Prediction of one held-out row from the efficiency fitted on the others.

    ``rel_error = (predicted − measured) / measured`` (> 0: the model is too fast).
    """

    model: str
    measured_tokens_per_s: float
    predicted_tokens_per_s: float
    rel_error: float
    efficiency: float


def leave_one_out(
    rows: Sequence[DecodeRow], device: EdgeDevice, method: FitMethod = "log_ls"
) -> list[LooResult]:
    """For each row: fit η on the other rows, predict the held-out row's tokens/s."""
    if len(rows) < 2:
        raise ValueError("leave_one_out needs at least two rows")
    out = []
    for i, held in enumerate(rows):
        eff = fit_efficiency([r for j, r in enumerate(rows) if j != i], device, method)
        pred = predict_tokens_per_s(held.bytes_per_token, device, eff)
        err = (pred - held.tokens_per_s) / held.tokens_per_s
        out.append(LooResult(held.model, held.tokens_per_s, pred, err, eff))
    return out


@dataclass(frozen=True, slots=True)
class DeviceCostModel:
    """On-device cost of a model on a published edge device (implements ``CostModel``).

    An iteration reads the weights once, plus the KV cache of every sequence, at ``η·B_peak``.
    It computes ``2·(P_streamed − V·d)`` FLOPs per new token, plus ``2·V·d`` per sequence for the
    LM head and the attention FLOPs of ``RooflineCostModel``, at ``ε·F_fp16_dense``. Its time is
    ``max(memory, compute)``. Batch-1 decode is the fitted, validated case. Prefill and batched
    decode are roofline extrapolations (see the module docstring).

    Attributes:
        device: The device.
        model: What runs on it.
        efficiency: Bandwidth efficiency η in (0, 1] (from :func:`fit_efficiency`).
        bits_per_weight: Weight storage bits (4 = INT4, as in the fit).
        kv_dtype_bytes: Bytes per KV element (2 = fp16).
        compute_efficiency: Fraction ε of the fp16 dense peak reached by GEMMs, in (0, 1]. The
            default 1 makes prefill a lower bound.
    """

    device: EdgeDevice
    model: EdgeModelSpec
    efficiency: float
    bits_per_weight: float = 4.0
    kv_dtype_bytes: float = 2.0
    compute_efficiency: float = 1.0

    def __post_init__(self) -> None:
        if not (0 < self.efficiency <= 1 and 0 < self.compute_efficiency <= 1):
            raise ValueError("efficiency and compute_efficiency must be in (0, 1]")
        if not (self.bits_per_weight > 0 and self.kv_dtype_bytes > 0):
            raise ValueError("bits_per_weight and kv_dtype_bytes must be > 0")

    def decode_time_s(self, context_tokens: int = 0) -> float:
        """Seconds per token of batch-1 decode over ``context_tokens`` KV tokens."""
        nbytes = bytes_per_token(
            self.model, self.bits_per_weight, context_tokens, self.kv_dtype_bytes
        )
        return nbytes / (self.efficiency * self.device.mem_bandwidth_bytes_per_s)

    def prefill_time_s(self, n_tokens: int, context_tokens: int = 0) -> float:
        """Seconds to prefill ``n_tokens`` after ``context_tokens`` cached ones (not validated)."""
        e = np.zeros(0, dtype=np.int64)
        pt = np.array([n_tokens], dtype=np.int64)
        return self.iteration_time_s(pt, np.array([context_tokens], dtype=np.int64), e)

    def breakdown_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> dict[str, float]:
        """``memory`` (bytes / η·B) and ``compute_excess`` (compute time beyond it, else 0)."""
        m = self.model
        pt = prefill_tokens.astype(np.float64)
        pc = prefill_context.astype(np.float64)
        dc = decode_context.astype(np.float64)
        n_seq = len(pt) + len(dc)
        if n_seq == 0:
            return {"memory": 0.0, "compute_excess": 0.0}
        n_tok = float(pt.sum()) + len(dc)
        kv_tokens = float(pc.sum() + pt.sum() + dc.sum())
        nbytes = m.streamed_params * self.bits_per_weight / 8.0
        nbytes += kv_tokens * m.kv_bytes_per_token(self.kv_dtype_bytes)
        t_mem = nbytes / (self.efficiency * self.device.mem_bandwidth_bytes_per_s)
        head = float(m.embedding_params)
        flops = 2.0 * (m.streamed_params - head) * n_tok + 2.0 * head * n_seq
        attended = float(np.dot(pt, pc + (pt + 1.0) / 2.0)) + float(dc.sum())
        flops += 4.0 * m.layers * m.q_heads * m.head_dim * attended
        t_comp = flops / (self.compute_efficiency * self.device.peak_fp16_dense_flops)
        return {"memory": t_mem, "compute_excess": max(0.0, t_comp - t_mem)}

    def iteration_time_s(
        self, prefill_tokens: IntArray, prefill_context: IntArray, decode_context: IntArray
    ) -> float:
        """Sum of :meth:`breakdown_s` (= ``max(memory, compute)``)."""
        return sum(self.breakdown_s(prefill_tokens, prefill_context, decode_context).values())


def jetson_cost_model(
    device: str | EdgeDevice,
    model: str | EdgeModelSpec,
    *,
    method: FitMethod = "log_ls",
    compute_efficiency: float = 1.0,
) -> DeviceCostModel:
    """Device cost model with η fitted on all rows of the shipped Jetson AI Lab table.

    Args:
        device: ``"jetson-orin-nano-8gb"``, ``"jetson-orin-nano-super"`` or an
            :class:`EdgeDevice` that has a table column.
        model: A key of :data:`EDGE_MODELS` or any :class:`EdgeModelSpec`. A model far outside
            the table's 1.7-9.2 B range (e.g. SmolLM-135M) is an extrapolation.
        method: Fit method (:func:`fit_efficiency`).
        compute_efficiency: ε for prefill (default 1: a lower bound).
    """
    dev = EDGE_DEVICES[device] if isinstance(device, str) else device
    spec = EDGE_MODELS[model] if isinstance(model, str) else model
    eff = fit_efficiency(load_jetson_ai_lab(dev), dev, method)
    return DeviceCostModel(dev, spec, eff, compute_efficiency=compute_efficiency)


__all__ = [
    "EDGE_DEVICES",
    "EDGE_MODELS",
    "JETSON_AI_LAB_CSV",
    "ORIN_NANO_8GB",
    "ORIN_NANO_SUPER",
    "DecodeRow",
    "DeviceCostModel",
    "EdgeDevice",
    "EdgeModelSpec",
    "LooResult",
    "bytes_per_token",
    "fit_efficiency",
    "jetson_cost_model",
    "leave_one_out",
    "load_jetson_ai_lab",
    "predict_tokens_per_s",
]
