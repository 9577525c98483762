"""LoRA adapters: exact sizes from the base model's dimensions, and what loading one costs.

A LoRA adapter on a target projection ``W [d_out, d_in]`` adds ``B A`` with ``A [r, d_in]`` and
``B [d_out, r]`` (Hu et al., ICLR 2022, §4.1): ``r (d_in + d_out)`` parameters per target per
layer. The target widths follow from the model (grouped-query attention: k and v project to
``n_kv · d_h``). Loading an adapter into GPU memory costs its file read from the host's storage
(measured: the ``adapter_load`` operator of ``kernels/``, a safetensors load) plus its copy to the
device at the declared host-link bandwidth plus a fixed overhead — S-LoRA's and vLLM's
multi-LoRA servers load adapters this way, one at a time per server.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, model_validator

from edgetwin.sim.compute.cost_model import TransformerDims
from edgetwin.sim.configbase import StrictConfig

__all__ = ["TARGETS", "AdapterSpec", "adapter_params", "load_time_s"]

Target = Literal["q", "k", "v", "o", "gate", "up", "down"]
TARGETS: Final[tuple[str, ...]] = ("q", "k", "v", "o", "gate", "up", "down")
_DTYPE_BYTES: Final[dict[str, float]] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


class AdapterSpec(StrictConfig):
    """One LoRA adapter over a base model.

    Attributes:
        rank: LoRA rank r.
        targets: Projections it adapts, e.g. ``["q", "k", "v", "o"]``.
        dtype: Weight dtype (``fp32``, ``bf16``, ``fp16``, ``fp8``).
    """

    rank: int = Field(16, ge=1, le=4096)
    targets: tuple[Target, ...] = ("q", "k", "v", "o")
    dtype: Literal["fp32", "bf16", "fp16", "fp8"] = "bf16"

    @model_validator(mode="after")
    def _distinct_targets(self) -> AdapterSpec:
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(
                f"targets must be distinct and at least one of {', '.join(TARGETS)}; "
                f"got {list(self.targets)}"
            )
        return self

    def n_bytes(self, dims: TransformerDims) -> float:
        """Bytes of the adapter's weights on a model of ``dims``."""
        return adapter_params(self, dims) * _DTYPE_BYTES[self.dtype]


def _widths(dims: TransformerDims, target: str) -> tuple[int, int]:
    """``(d_in, d_out)`` of a target projection."""
    q = dims.heads * dims.head_dim
    kv = dims.kv_heads * dims.head_dim
    return {
        "q": (dims.hidden, q),
        "k": (dims.hidden, kv),
        "v": (dims.hidden, kv),
        "o": (q, dims.hidden),
        "gate": (dims.hidden, dims.intermediate),
        "up": (dims.hidden, dims.intermediate),
        "down": (dims.intermediate, dims.hidden),
    }[target]


def adapter_params(spec: AdapterSpec, dims: TransformerDims) -> int:
    """Parameters ``L Σ_targets r (d_in + d_out)`` (Hu et al. 2022, §4.1)."""
    per_layer = sum(spec.rank * sum(_widths(dims, t)) for t in spec.targets)
    return dims.layers * per_layer


def load_time_s(
    n_bytes: float,
    *,
    read_s: float,
    host_link_bytes_per_s: float,
    overhead_s: float = 0.0,
) -> float:
    """Seconds to bring an adapter of ``n_bytes`` from host storage into device memory.

    Args:
        n_bytes: Adapter size, bytes.
        read_s: Its file read into host memory (the ``adapter_load`` profile at ``n_bytes``).
        host_link_bytes_per_s: Host-to-device bandwidth (PCIe; 0 = unified memory, no copy).
        overhead_s: Fixed cost per load (allocation, registration in the serving engine).
    """
    if n_bytes < 0 or read_s < 0 or overhead_s < 0 or host_link_bytes_per_s < 0:
        raise ValueError("load_time_s: sizes, times and bandwidth must be >= 0")
    copy_s = n_bytes / host_link_bytes_per_s if host_link_bytes_per_s > 0 else 0.0
    return read_s + copy_s + overhead_s
